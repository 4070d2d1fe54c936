#include "bench/transfer/raw_tls_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::bench {
namespace {

using crypto::SslCtxPtr;

SslCtxPtr MakeContext(bool server, const std::string& pki_dir) {
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  const std::string cert = pki_dir + (server ? "/coordinator.pem" : "/EE.pem");
  const std::string key = pki_dir + (server ? "/coordinator.key" : "/EE.key");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), (pki_dir + "/ca.pem").c_str(), nullptr) != 1) {
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

}  // namespace

double RawTlsLoopbackMBps(const std::string& pki_dir, uint64_t bytes) {
  SslCtxPtr server_ctx = MakeContext(true, pki_dir);
  SslCtxPtr client_ctx = MakeContext(false, pki_dir);
  if (!server_ctx || !client_ctx) return -1;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (listener >= 0) ::close(listener);
    return -1;
  }
  std::thread sender([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    SSL* ssl = SSL_new(server_ctx.get());
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::vector<char> block(1 << 20, 'x');
      for (uint64_t sent = 0; sent < bytes;) {
        const int n = SSL_write(ssl, block.data(),
                                static_cast<int>(std::min<uint64_t>(block.size(), bytes - sent)));
        if (n <= 0) break;
        sent += static_cast<uint64_t>(n);
      }
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(fd);
  });
  double mbps = -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    SSL* ssl = SSL_new(client_ctx.get());
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      std::vector<char> block(1 << 20);
      uint64_t received = 0;
      const auto start = std::chrono::steady_clock::now();
      while (received < bytes) {
        const int n = SSL_read(ssl, block.data(), static_cast<int>(block.size()));
        if (n <= 0) break;
        received += static_cast<uint64_t>(n);
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (received == bytes) mbps = static_cast<double>(bytes) / 1e6 / seconds;
    }
    SSL_free(ssl);
  }
  if (fd >= 0) ::close(fd);
  ::close(listener);
  sender.join();
  ERR_clear_error();
  return mbps;
}

}  // namespace fedcustoms::bench
