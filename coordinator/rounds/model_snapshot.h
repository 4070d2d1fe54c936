#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/manifest/signed_manifest.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// An immutable model that nodes download: its signed manifest and the file
// holding its tensor-codec encoding (what goes on the wire), with that
// encoding's SHA-256 and size computed once when the file was written. The
// tensors themselves are not kept in memory: downloads stream the file and
// aggregation reads it slice by slice. Shared read-only between the round and
// in-flight downloads, so a download never blocks the round.
struct ModelSnapshot {
  uint64_t version = 0;
  manifest::SignedManifest manifest;
  std::string wire_path;
  std::string wire_sha256;  // hex
  uint64_t wire_bytes = 0;
};

// SHA-256 (hex) and size of a wire encoding.
struct WireDigest {
  std::string sha256_hex;
  uint64_t bytes = 0;
};

// Writes the wire encoding of `tensors` to `path` atomically (temp file, fsync,
// rename), hashing it on the way: one streaming pass, no copy of the model.
absl::StatusOr<WireDigest> WriteWireFile(const tensor::NamedTensors& tensors,
                                         const std::string& path);

}  // namespace fedcustoms::coordinator
