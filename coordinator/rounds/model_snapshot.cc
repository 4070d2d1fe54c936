#include "coordinator/rounds/model_snapshot.h"

#include <vector>

#include "common/crypto/sha256.h"
#include "common/tensor/tensor_codec.h"

namespace fedcustoms::coordinator {

WireDigest DigestWireEncoding(const tensor::NamedTensors& tensors) {
  tensor::TensorEncoder encoder(tensors);
  crypto::Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  WireDigest digest;
  while (size_t n = encoder.Read(buffer.data(), buffer.size())) {
    hasher.Update(buffer.data(), n);
    digest.bytes += n;
  }
  digest.sha256_hex = crypto::ToHex(hasher.Final());
  return digest;
}

}  // namespace fedcustoms::coordinator
