#include "tests/soak/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedcustoms::soak {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Closes `fd` so that the peer sees a reset, not an orderly end.
void CloseWithReset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// Writes all of `data`; false when the peer is gone.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(int target_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr = Loopback(0);
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 256) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    return absl::InternalError(absl::StrCat("fault proxy cannot listen: ", error));
  }
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::unique_ptr<FaultProxy> proxy(
      new FaultProxy(fd, ntohs(addr.sin_port), target_port, stop[0], stop[1]));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

FaultProxy::FaultProxy(int listen_fd, int port, int target_port, int stop_read, int stop_write)
    : listen_fd_(listen_fd),
      port_(port),
      target_port_(target_port),
      stop_read_(stop_read),
      stop_write_(stop_write) {}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  (void)!::write(stop_write_, "x", 1);
  acceptor_.join();
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mu_);
    all = all_;
  }
  for (const auto& c : all) {
    (void)!::write(c->wake[1], "x", 1);
    if (c->copier.joinable()) c->copier.join();
    ::close(c->wake[0]);
    ::close(c->wake[1]);
  }
  ::close(listen_fd_);
  ::close(stop_read_);
  ::close(stop_write_);
}

void FaultProxy::AcceptLoop() {
  uint64_t next_id = 0;
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_read_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in target = Loopback(target_port_);
    if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
      // The coordinator is down: the node sees its connection refused as a reset.
      if (server >= 0) ::close(server);
      CloseWithReset(client);
      continue;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_shared<Connection>();
    c->client = client;
    c->server = server;
    if (::pipe2(c->wake, O_CLOEXEC) != 0) {
      ::close(server);
      CloseWithReset(client);
      continue;
    }
    ++accepted_;
    const uint64_t id = next_id++;
    std::lock_guard lock(mu_);
    ReapFinished();
    live_[id] = c;
    all_.push_back(c);
    c->copier = std::thread([this, c, id] { Copy(c, id); });
  }
}

void FaultProxy::Copy(const std::shared_ptr<Connection>& c, uint64_t id) {
  std::vector<char> buffer(1 << 16);
  bool reset = false;
  while (true) {
    pollfd fds[3] = {{c->client, POLLIN, 0}, {c->server, POLLIN, 0}, {c->wake[0], POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) {
      reset = c->reset.load();
      break;
    }
    bool open = true;
    for (int i = 0; i < 2 && open; ++i) {
      if (fds[i].revents == 0) continue;
      const int from = i == 0 ? c->client : c->server;
      const int to = i == 0 ? c->server : c->client;
      const ssize_t n = ::recv(from, buffer.data(), buffer.size(), 0);
      open = n > 0 && WriteAll(to, buffer.data(), static_cast<size_t>(n));
    }
    if (!open) break;
  }
  {
    std::lock_guard lock(mu_);
    live_.erase(id);
  }
  if (reset) {
    CloseWithReset(c->client);
    CloseWithReset(c->server);
  } else {
    ::close(c->client);
    ::close(c->server);
  }
  c->done = true;
}

void FaultProxy::ReapFinished() {
  std::erase_if(all_, [](const std::shared_ptr<Connection>& c) {
    if (!c->done) return false;
    c->copier.join();  // at its very end: it no longer needs mu_
    ::close(c->wake[0]);
    ::close(c->wake[1]);
    return true;
  });
}

int FaultProxy::ResetRandom(int count, std::mt19937_64& rng) {
  std::vector<std::shared_ptr<Connection>> chosen;
  {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<Connection>> live;
    for (const auto& [id, c] : live_) live.push_back(c);
    std::shuffle(live.begin(), live.end(), rng);
    for (int i = 0; i < count && i < static_cast<int>(live.size()); ++i) chosen.push_back(live[i]);
  }
  for (const auto& c : chosen) {
    c->reset = true;
    (void)!::write(c->wake[1], "x", 1);
  }
  resets_ += chosen.size();
  return static_cast<int>(chosen.size());
}

}  // namespace fedcustoms::soak
