#pragma once

#include <ATen/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::tensor {

// The fedcustoms tensor wire format ("FCT1"), used for global models sent to
// nodes and for updates sent to the coordinator. All integers little-endian.
//
//   offset  size        field
//   0       4           magic "FCT1"
//   4       4           u32 tensor count (<= 100000)
//   then per tensor, in canonical order (names unique and strictly ascending,
//   byte-wise):
//           4           u32 name length (1..256)
//           n           name, UTF-8
//           1           u8 dtype code (DtypeCode below)
//           1           u8 ndim (0..8; 0 is a scalar)
//           8 x ndim    i64 dims (>= 0)
//           8           u64 byte length (== numel x itemsize)
//           b           raw element bytes, C-contiguous, little-endian; bool
//                       elements are single bytes 0 or 1
//   nothing may follow the last tensor.
//
// Deterministic: the same set of tensors (same names, dtypes, shapes and
// values, in any input order) always encodes to the same bytes, so a SHA-256
// of the encoding identifies a model.
inline constexpr char kCodecMagic[4] = {'F', 'C', 'T', '1'};
inline constexpr uint32_t kMaxTensorCount = 100000;
inline constexpr uint32_t kMaxNameBytes = 256;
inline constexpr uint32_t kMaxDims = 8;

// Dtype codes on the wire. Values are part of the format: never renumber.
enum class DtypeCode : uint8_t {
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
  kInt64 = 5,
  kInt32 = 6,
  kInt16 = 7,
  kInt8 = 8,
  kUInt8 = 9,
  kBool = 10,
};

// Code of a dtype, or nullopt when the format does not carry it (complex,
// quantized, ...).
std::optional<DtypeCode> ToDtypeCode(at::ScalarType dtype);
// Dtype of a wire code, or nullopt for an unknown code.
std::optional<at::ScalarType> FromDtypeCode(uint8_t code);

// Streams the encoding of a set of tensors without building it in memory: the
// only copy is into the caller's buffer, and a non-contiguous tensor is made
// contiguous when its turn comes (one such temporary at a time), so memory
// stays about 1x the model.
//
// Keeps a reference to `tensors`, which must outlive the encoder and must not
// be modified while it is used. Not thread-safe.
class TensorEncoder {
 public:
  // Validates the tensors (defined, CPU, strided, supported dtype, ndim <= 8,
  // name 1..256 bytes of UTF-8, names unique, count <= 100000). On failure
  // status() says why, TotalBytes() is 0 and Read() returns 0.
  explicit TensorEncoder(const NamedTensors& tensors);

  TensorEncoder(const TensorEncoder&) = delete;
  TensorEncoder& operator=(const TensorEncoder&) = delete;

  // OK, or why the tensors cannot be encoded.
  const absl::Status& status() const { return status_; }

  // Exact size of the whole encoding in bytes.
  uint64_t TotalBytes() const { return total_bytes_; }

  // Copies the next at most `max` bytes of the encoding into `dst` and returns
  // how many; returns less than `max` only at the end, and 0 once everything
  // was read.
  size_t Read(char* dst, size_t max);

  // Bytes returned by Read() so far.
  uint64_t BytesRead() const { return position_; }

  // Starts over from the first byte (e.g. to retry an upload).
  void Rewind();

 private:
  // Prepares the header and data of the tensor at order_[next_].
  void BeginNextTensor();

  // Constant after construction.
  const NamedTensors& tensors_;
  std::vector<size_t> order_;  // indices into tensors_, canonical order
  absl::Status status_;
  uint64_t total_bytes_ = 0;

  // Read cursor: the pending header bytes, then the pending data bytes.
  uint64_t position_ = 0;
  size_t next_ = 0;
  std::string header_;
  size_t header_pos_ = 0;
  at::Tensor data_;  // contiguous version of the current tensor
  const char* data_ptr_ = nullptr;
  uint64_t data_size_ = 0;
  uint64_t data_pos_ = 0;
};

// Reads an encoding from a stream one tensor at a time, treating the input as
// hostile: every field is checked before it is used and before memory is
// allocated for it. Each error is InvalidArgument with a specific message,
// e.g. "bad magic \"FCT2\" (expected \"FCT1\")", "tensor count 100001 exceeds
// 100000", "tensor 0: name length 300 exceeds 256 bytes", "tensor 0: name is
// not valid UTF-8", "tensor 2 \"a\": names must be unique and ascending
// (after \"b\")", "tensor \"w\": unknown dtype code 42", "tensor \"w\": ndim 9
// exceeds 8", "tensor \"w\": dimension 1 is negative (-3)", "tensor \"w\":
// element count overflows", "tensor \"w\": byte length 10 does not match 3
// float32 elements (12 bytes)", "truncated stream: ...", "trailing bytes after
// the last tensor".
//
// `in` must outlive the decoder; it should be opened in binary mode. When the
// stream is seekable, a declared byte length is checked against the bytes
// that remain before anything is allocated; otherwise against
// Limits::max_tensor_bytes. Not thread-safe.
class TensorDecoder {
 public:
  struct Limits {
    uint32_t max_tensors = kMaxTensorCount;
    // Largest single tensor accepted from a non-seekable stream.
    uint64_t max_tensor_bytes = uint64_t{4} << 30;
  };

  explicit TensorDecoder(std::istream& in) : TensorDecoder(in, Limits{}) {}
  TensorDecoder(std::istream& in, Limits limits);

  TensorDecoder(const TensorDecoder&) = delete;
  TensorDecoder& operator=(const TensorDecoder&) = delete;

  // The next tensor (owning, contiguous, CPU); nullopt after the last one,
  // once the stream was checked to hold nothing more. After an error every
  // further call returns the same error.
  absl::StatusOr<std::optional<std::pair<std::string, at::Tensor>>> Next();

  // Streaming alternative to Next() for tensors too large to materialize at
  // once: the next tensor's name, dtype and shape, checked exactly as Next()
  // checks them, with its data left in the stream for ReadData(); nullopt
  // after the last one. The previous tensor's data must have been read
  // completely. Do not mix with Next() on one decoder.
  struct TensorHeader {
    std::string name;
    at::ScalarType dtype = at::kFloat;
    std::vector<int64_t> shape;
    uint64_t data_bytes = 0;
  };
  absl::StatusOr<std::optional<TensorHeader>> NextHeader();
  // Reads the next `size` bytes of the current tensor's data; `size` must not
  // exceed what is left of it. Bool values are not checked here (Next() does).
  absl::Status ReadData(char* dst, uint64_t size);

  // Number of tensors announced by the header (0 before the first Next()).
  uint32_t TensorCount() const { return count_; }
  // Bytes consumed from the stream so far.
  uint64_t BytesConsumed() const { return consumed_; }

 private:
  absl::Status ReadHeader();
  absl::StatusOr<TensorHeader> ReadTensorHeader();
  // Reads exactly `size` bytes or fails with "truncated stream: <what>".
  absl::Status ReadExact(char* dst, uint64_t size, absl::string_view what);
  // Bytes left in a seekable stream, or nullopt.
  std::optional<uint64_t> Remaining() const;

  std::istream& in_;
  const Limits limits_;
  std::optional<uint64_t> stream_end_;  // absolute end offset when seekable
  uint64_t start_offset_ = 0;

  bool header_read_ = false;
  bool done_ = false;
  absl::Status error_;
  uint32_t count_ = 0;
  uint32_t decoded_ = 0;
  uint64_t consumed_ = 0;
  std::string previous_name_;
  // Data bytes of the current tensor not yet read, and how to name them.
  uint64_t data_left_ = 0;
  std::string data_what_;
};

// The whole encoding in one string, for small payloads and tests.
absl::StatusOr<std::string> EncodeToString(const NamedTensors& tensors);

// Decodes a whole encoding held in memory (no copy of `bytes` is made).
absl::StatusOr<NamedTensors> DecodeFromString(std::string_view bytes);

// Decodes a whole tensor-codec file (a downloaded model); errors start with
// the path.
absl::StatusOr<NamedTensors> DecodeFile(const std::string& path);

}  // namespace fedcustoms::tensor
