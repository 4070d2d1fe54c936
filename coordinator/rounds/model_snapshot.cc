#include "coordinator/rounds/model_snapshot.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/tensor/tensor_codec.h"

namespace fedcustoms::coordinator {
namespace {

constexpr size_t kBufferBytes = size_t{4} << 20;

}  // namespace

absl::StatusOr<WireDigest> WriteWireFile(const tensor::NamedTensors& tensors,
                                         const std::string& path) {
  tensor::TensorEncoder encoder(tensors);
  if (!encoder.status().ok()) return encoder.status();
  io::AtomicFileWriter file;
  if (absl::Status s = file.Open(path); !s.ok()) return s;
  crypto::Sha256 hasher;
  std::vector<char> buffer(kBufferBytes);
  WireDigest digest;
  while (size_t n = encoder.Read(buffer.data(), buffer.size())) {
    hasher.Update(buffer.data(), n);
    if (absl::Status s = file.Write(std::string_view(buffer.data(), n)); !s.ok()) return s;
    digest.bytes += n;
  }
  if (!encoder.status().ok()) return encoder.status();
  if (absl::Status s = file.Commit(); !s.ok()) return s;
  digest.sha256_hex = crypto::ToHex(hasher.Final());
  return digest;
}

}  // namespace fedcustoms::coordinator
