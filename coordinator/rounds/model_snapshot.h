#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/manifest/signed_manifest.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// An immutable model that nodes download: its tensors, its signed manifest,
// and the SHA-256 and size of its tensor-codec encoding (what goes on the
// wire, hashed once here). Shared read-only between the round and in-flight
// downloads, so a download never blocks the round.
struct ModelSnapshot {
  uint64_t version = 0;
  tensor::NamedTensors tensors;
  manifest::SignedManifest manifest;
  std::string wire_sha256;
  uint64_t wire_bytes = 0;
};

// Hashes the wire encoding of `tensors` (one streaming pass, no copy).
struct WireDigest {
  std::string sha256_hex;
  uint64_t bytes = 0;
};
WireDigest DigestWireEncoding(const tensor::NamedTensors& tensors);

}  // namespace fedcustoms::coordinator
