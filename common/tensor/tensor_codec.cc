#include "common/tensor/tensor_codec.h"

#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <streambuf>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/tensor/tensor_spec.h"

namespace fedcustoms::tensor {
namespace {

// Element bytes go on the wire as they lie in memory.
static_assert(std::endian::native == std::endian::little,
              "the tensor codec assumes a little-endian host");

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Names in messages are escaped: they come from the peer.
std::string Quoted(absl::string_view name) {
  return absl::StrCat("\"", absl::CHexEscape(name), "\"");
}

// A read-only, seekable stream buffer over memory the caller keeps alive.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());  // never written through: get area only
    setg(p, p, p + bytes.size());
  }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                   std::ios_base::openmode which) override {
    if (!(which & std::ios_base::in)) return pos_type(off_type(-1));
    char* base = dir == std::ios_base::beg ? eback() : dir == std::ios_base::cur ? gptr() : egptr();
    const off_type target = (base - eback()) + off;
    if (target < 0 || target > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + target, egptr());
    return pos_type(target);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    return seekoff(off_type(pos), std::ios_base::beg, which);
  }
};

}  // namespace

std::optional<DtypeCode> ToDtypeCode(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return DtypeCode::kFloat32;
    case at::kDouble:
      return DtypeCode::kFloat64;
    case at::kHalf:
      return DtypeCode::kFloat16;
    case at::kBFloat16:
      return DtypeCode::kBFloat16;
    case at::kLong:
      return DtypeCode::kInt64;
    case at::kInt:
      return DtypeCode::kInt32;
    case at::kShort:
      return DtypeCode::kInt16;
    case at::kChar:
      return DtypeCode::kInt8;
    case at::kByte:
      return DtypeCode::kUInt8;
    case at::kBool:
      return DtypeCode::kBool;
    default:
      return std::nullopt;
  }
}

std::optional<at::ScalarType> FromDtypeCode(uint8_t code) {
  switch (static_cast<DtypeCode>(code)) {
    case DtypeCode::kFloat32:
      return at::kFloat;
    case DtypeCode::kFloat64:
      return at::kDouble;
    case DtypeCode::kFloat16:
      return at::kHalf;
    case DtypeCode::kBFloat16:
      return at::kBFloat16;
    case DtypeCode::kInt64:
      return at::kLong;
    case DtypeCode::kInt32:
      return at::kInt;
    case DtypeCode::kInt16:
      return at::kShort;
    case DtypeCode::kInt8:
      return at::kChar;
    case DtypeCode::kUInt8:
      return at::kByte;
    case DtypeCode::kBool:
      return at::kBool;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------

TensorEncoder::TensorEncoder(const NamedTensors& tensors) : tensors_(tensors) {
  auto fail = [&](std::string message) {
    status_ = absl::InvalidArgumentError(std::move(message));
  };
  if (tensors.size() > kMaxTensorCount) {
    fail(absl::StrCat("tensor count ", tensors.size(), " exceeds ", kMaxTensorCount));
  }
  uint64_t total = sizeof(kCodecMagic) + sizeof(uint32_t);
  for (size_t i = 0; i < tensors.size() && status_.ok(); ++i) {
    const auto& [name, t] = tensors[i];
    if (name.empty()) {
      fail(absl::StrCat("tensor ", i, ": empty name"));
    } else if (name.size() > kMaxNameBytes) {
      fail(absl::StrCat("tensor ", i, ": name length ", name.size(), " exceeds ", kMaxNameBytes,
                        " bytes"));
    } else if (!IsValidUtf8(name)) {
      fail(absl::StrCat("tensor ", i, ": name is not valid UTF-8"));
    } else if (!t.defined()) {
      fail(absl::StrCat("tensor ", Quoted(name), " is undefined"));
    } else if (!t.device().is_cpu()) {
      fail(absl::StrCat("tensor ", Quoted(name), " is on ", t.device().str(), ", not the CPU"));
    } else if (t.layout() != at::kStrided) {
      fail(absl::StrCat("tensor ", Quoted(name), " is not a dense tensor"));
    } else if (!ToDtypeCode(t.scalar_type())) {
      fail(absl::StrCat("tensor ", Quoted(name), ": dtype ", DtypeName(t.scalar_type()),
                        " is not supported"));
    } else if (t.dim() > static_cast<int64_t>(kMaxDims)) {
      fail(absl::StrCat("tensor ", Quoted(name), ": ndim ", t.dim(), " exceeds ", kMaxDims));
    }
    if (status_.ok()) {
      total += sizeof(uint32_t) + name.size() + 2 + sizeof(int64_t) * t.dim() + sizeof(uint64_t) +
               t.nbytes();
    }
  }
  if (status_.ok()) {
    order_.resize(tensors.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(),
              [&](size_t a, size_t b) { return tensors[a].first < tensors[b].first; });
    for (size_t i = 1; i < order_.size(); ++i) {
      if (tensors[order_[i - 1]].first == tensors[order_[i]].first) {
        fail(absl::StrCat("duplicate tensor name ", Quoted(tensors[order_[i]].first)));
        break;
      }
    }
  }
  if (status_.ok()) {
    total_bytes_ = total;
  } else {
    order_.clear();
  }
  Rewind();
}

void TensorEncoder::Rewind() {
  position_ = 0;
  next_ = 0;
  header_.clear();
  header_pos_ = 0;
  data_ = at::Tensor();
  data_ptr_ = nullptr;
  data_size_ = 0;
  data_pos_ = 0;
  if (status_.ok()) {
    header_.append(kCodecMagic, sizeof(kCodecMagic));
    Put<uint32_t>(header_, static_cast<uint32_t>(order_.size()));
  }
}

void TensorEncoder::BeginNextTensor() {
  const auto& [name, t] = tensors_[order_[next_++]];
  header_.clear();
  header_pos_ = 0;
  Put<uint32_t>(header_, static_cast<uint32_t>(name.size()));
  header_.append(name);
  Put<uint8_t>(header_, static_cast<uint8_t>(*ToDtypeCode(t.scalar_type())));
  Put<uint8_t>(header_, static_cast<uint8_t>(t.dim()));
  for (int64_t d : t.sizes()) Put<int64_t>(header_, d);
  // A copy is made here only for a non-contiguous tensor, and only for as long
  // as its bytes are being read.
  data_ = t.detach().resolve_conj().resolve_neg().contiguous();
  data_ptr_ = static_cast<const char*>(data_.data_ptr());
  data_size_ = data_.nbytes();
  data_pos_ = 0;
  Put<uint64_t>(header_, data_size_);
}

size_t TensorEncoder::Read(char* dst, size_t max) {
  size_t written = 0;
  while (written < max) {
    if (header_pos_ < header_.size()) {
      const size_t n = std::min(max - written, header_.size() - header_pos_);
      std::memcpy(dst + written, header_.data() + header_pos_, n);
      header_pos_ += n;
      written += n;
      continue;
    }
    if (data_pos_ < data_size_) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(max - written, data_size_ - data_pos_));
      std::memcpy(dst + written, data_ptr_ + data_pos_, n);
      data_pos_ += n;
      written += n;
      continue;
    }
    data_ = at::Tensor();
    data_ptr_ = nullptr;
    data_size_ = data_pos_ = 0;
    if (next_ >= order_.size()) break;
    BeginNextTensor();
  }
  position_ += written;
  return written;
}

// ---------------------------------------------------------------------------

TensorDecoder::TensorDecoder(std::istream& in, Limits limits) : in_(in), limits_(limits) {
  const std::streampos start = in_.tellg();
  if (start == std::streampos(-1)) {
    in_.clear(in_.rdstate() & ~std::ios::failbit);
    return;
  }
  in_.seekg(0, std::ios::end);
  const std::streampos end = in_.tellg();
  in_.clear();
  in_.seekg(start);
  if (end != std::streampos(-1) && end >= start && in_) {
    start_offset_ = static_cast<uint64_t>(start);
    stream_end_ = static_cast<uint64_t>(end);
  }
  in_.clear();
}

std::optional<uint64_t> TensorDecoder::Remaining() const {
  if (!stream_end_) return std::nullopt;
  const uint64_t at = start_offset_ + consumed_;
  return *stream_end_ > at ? *stream_end_ - at : 0;
}

absl::Status TensorDecoder::ReadExact(char* dst, uint64_t size, absl::string_view what) {
  uint64_t got = 0;
  while (got < size) {
    const auto want = static_cast<std::streamsize>(
        std::min<uint64_t>(size - got, std::numeric_limits<std::streamsize>::max()));
    in_.read(dst + got, want);
    const auto n = static_cast<uint64_t>(in_.gcount());
    got += n;
    if (n == 0) break;
  }
  consumed_ += got;
  if (got != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated stream: ", what, " needs ", size, " bytes, only ", got, " left"));
  }
  return absl::OkStatus();
}

absl::Status TensorDecoder::ReadHeader() {
  char magic[sizeof(kCodecMagic)];
  if (absl::Status s = ReadExact(magic, sizeof(magic), "magic"); !s.ok()) return s;
  if (std::memcmp(magic, kCodecMagic, sizeof(magic)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad magic ", Quoted(absl::string_view(magic, sizeof(magic))), " (expected \"FCT1\")"));
  }
  uint32_t count = 0;
  if (absl::Status s = ReadExact(reinterpret_cast<char*>(&count), sizeof(count), "tensor count");
      !s.ok()) {
    return s;
  }
  if (count > limits_.max_tensors) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor count ", count, " exceeds ", limits_.max_tensors));
  }
  count_ = count;
  return absl::OkStatus();
}

absl::StatusOr<TensorDecoder::TensorHeader> TensorDecoder::ReadTensorHeader() {
  const uint32_t index = decoded_;
  auto error = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };

  uint32_t name_length = 0;
  if (absl::Status s = ReadExact(reinterpret_cast<char*>(&name_length), sizeof(name_length),
                                 absl::StrCat("tensor ", index, " name length"));
      !s.ok()) {
    return s;
  }
  if (name_length == 0) return error("tensor ", index, ": empty name");
  if (name_length > kMaxNameBytes) {
    return error("tensor ", index, ": name length ", name_length, " exceeds ", kMaxNameBytes,
                 " bytes");
  }
  std::string name(name_length, '\0');
  if (absl::Status s = ReadExact(name.data(), name_length, absl::StrCat("tensor ", index, " name"));
      !s.ok()) {
    return s;
  }
  if (!IsValidUtf8(name)) return error("tensor ", index, ": name is not valid UTF-8");
  const std::string quoted = Quoted(name);
  if (index > 0 && !(previous_name_ < name)) {
    return error("tensor ", index, " ", quoted, ": names must be unique and ascending (after ",
                 Quoted(previous_name_), ")");
  }

  uint8_t code_and_ndim[2];
  if (absl::Status s = ReadExact(reinterpret_cast<char*>(code_and_ndim), 2,
                                 absl::StrCat("tensor ", quoted, " dtype and ndim"));
      !s.ok()) {
    return s;
  }
  const std::optional<at::ScalarType> dtype = FromDtypeCode(code_and_ndim[0]);
  if (!dtype) return error("tensor ", quoted, ": unknown dtype code ", code_and_ndim[0]);
  const uint32_t ndim = code_and_ndim[1];
  if (ndim > kMaxDims) return error("tensor ", quoted, ": ndim ", ndim, " exceeds ", kMaxDims);

  std::vector<int64_t> dims(ndim);
  if (absl::Status s = ReadExact(reinterpret_cast<char*>(dims.data()), sizeof(int64_t) * ndim,
                                 absl::StrCat("tensor ", quoted, " dims"));
      !s.ok()) {
    return s;
  }
  const auto item_size = static_cast<int64_t>(c10::elementSize(*dtype));
  int64_t numel = 1;
  for (uint32_t k = 0; k < ndim; ++k) {
    if (dims[k] < 0) {
      return error("tensor ", quoted, ": dimension ", k, " is negative (", dims[k], ")");
    }
    if (__builtin_mul_overflow(numel, dims[k], &numel)) {
      return error("tensor ", quoted, ": element count overflows");
    }
  }
  int64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, item_size, &expected_bytes)) {
    return error("tensor ", quoted, ": element count overflows");
  }

  uint64_t byte_length = 0;
  if (absl::Status s = ReadExact(reinterpret_cast<char*>(&byte_length), sizeof(byte_length),
                                 absl::StrCat("tensor ", quoted, " byte length"));
      !s.ok()) {
    return s;
  }
  if (byte_length != static_cast<uint64_t>(expected_bytes)) {
    return error("tensor ", quoted, ": byte length ", byte_length, " does not match ", numel, " ",
                 DtypeName(*dtype), " elements (", expected_bytes, " bytes)");
  }
  const std::string data_what = absl::StrCat("tensor ", quoted, " data");
  // Refuse before allocating what the stream cannot hold.
  if (std::optional<uint64_t> remaining = Remaining()) {
    if (byte_length > *remaining) {
      return error("truncated stream: ", data_what, " needs ", byte_length, " bytes, only ",
                   *remaining, " left");
    }
  } else if (byte_length > limits_.max_tensor_bytes) {
    return error("tensor ", quoted, ": ", byte_length, " bytes exceed the limit of ",
                 limits_.max_tensor_bytes);
  }

  previous_name_ = name;
  data_left_ = byte_length;
  data_what_ = data_what;
  return TensorHeader{std::move(name), *dtype, std::move(dims), byte_length};
}

absl::StatusOr<std::optional<TensorDecoder::TensorHeader>> TensorDecoder::NextHeader() {
  if (!error_.ok()) return error_;
  if (data_left_ != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("NextHeader() with ", data_left_, " bytes of ", data_what_, " unread"));
  }
  if (done_) return std::nullopt;
  if (!header_read_) {
    error_ = ReadHeader();
    if (!error_.ok()) return error_;
    header_read_ = true;
  }
  if (decoded_ == count_) {
    if (in_.peek() != std::char_traits<char>::eof()) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat("trailing bytes after the last tensor (at byte ", consumed_, ")"));
      return error_;
    }
    done_ = true;
    return std::nullopt;
  }
  absl::StatusOr<TensorHeader> header = ReadTensorHeader();
  if (!header.ok()) {
    error_ = header.status();
    return error_;
  }
  ++decoded_;
  return std::optional<TensorHeader>(*std::move(header));
}

absl::Status TensorDecoder::ReadData(char* dst, uint64_t size) {
  if (!error_.ok()) return error_;
  if (size > data_left_) {
    return absl::FailedPreconditionError(absl::StrCat("ReadData(", size, ") with only ", data_left_,
                                                      " bytes of ", data_what_, " left"));
  }
  error_ = ReadExact(dst, size, data_what_);
  if (!error_.ok()) return error_;
  data_left_ -= size;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::pair<std::string, at::Tensor>>> TensorDecoder::Next() {
  absl::StatusOr<std::optional<TensorHeader>> header = NextHeader();
  if (!header.ok()) return header.status();
  if (!header->has_value()) return std::nullopt;
  TensorHeader& h = **header;
  at::Tensor tensor = at::empty(h.shape, at::TensorOptions().dtype(h.dtype));
  if (absl::Status s = ReadData(static_cast<char*>(tensor.data_ptr()), h.data_bytes); !s.ok()) {
    return s;
  }
  if (h.dtype == at::kBool) {
    const auto* bytes = static_cast<const uint8_t*>(tensor.data_ptr());
    for (int64_t k = 0; k < tensor.numel(); ++k) {
      if (bytes[k] > 1) {
        error_ = absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(h.name),
                                                         ": bool element ", k, " has byte value ",
                                                         static_cast<int>(bytes[k])));
        return error_;
      }
    }
  }
  return std::optional<std::pair<std::string, at::Tensor>>(
      std::make_pair(std::move(h.name), std::move(tensor)));
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::string> EncodeToString(const NamedTensors& tensors) {
  TensorEncoder encoder(tensors);
  if (!encoder.status().ok()) return encoder.status();
  std::string out(encoder.TotalBytes(), '\0');
  const size_t n = encoder.Read(out.data(), out.size());
  char extra;
  if (n != out.size() || encoder.Read(&extra, 1) != 0) {
    return absl::InternalError(
        absl::StrCat("encoder produced ", n, " bytes, announced ", out.size()));
  }
  return out;
}

namespace {

absl::StatusOr<NamedTensors> DecodeAll(std::istream& in) {
  TensorDecoder decoder(in);
  NamedTensors tensors;
  while (true) {
    auto next = decoder.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return tensors;
    tensors.push_back(*std::move(*next));
  }
}

}  // namespace

absl::StatusOr<NamedTensors> DecodeFromString(std::string_view bytes) {
  ViewBuf buffer(bytes);
  std::istream in(&buffer);
  return DecodeAll(in);
}

absl::StatusOr<NamedTensors> DecodeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  auto tensors = DecodeAll(in);
  if (!tensors.ok()) {
    return absl::Status(tensors.status().code(),
                        absl::StrCat(path, ": ", tensors.status().message()));
  }
  return tensors;
}

}  // namespace fedcustoms::tensor
