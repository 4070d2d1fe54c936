#include "common/xray/idx_reader.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/xray/xray_image_reader.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::xray {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr uint64_t kMaxFileBytes = uint64_t{4} << 30;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

// The whole (decompressed) content of `path`. zlib reads plain files as they
// are, so one path serves .gz and raw IDX files.
absl::StatusOr<std::string> ReadMaybeGzipped(const std::string& path) {
  errno = 0;
  GzPtr file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int err = errno;
    const std::string message =
        absl::StrCat(path, ": cannot open: ", err != 0 ? std::strerror(err) : "out of memory");
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  std::string out;
  std::vector<char> chunk(1 << 20);
  while (true) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* why = gzerror(file.get(), &code);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": corrupt or truncated gzip stream: ", why));
    }
    if (n == 0) break;
    out.append(chunk.data(), static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxFileBytes >> 30, " GiB once decompressed"));
    }
  }
  // A gzip stream cut short ends reading quietly with Z_BUF_ERROR set.
  int code = Z_OK;
  const char* why = gzerror(file.get(), &code);
  if (code != Z_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": corrupt or truncated gzip stream: ", why));
  }
  return out;
}

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Checks the header of an IDX file with `dims` dimensions; fills `shape` and
// returns the offset of the data.
absl::StatusOr<size_t> ParseHeader(const std::string& path, const std::string& bytes,
                                   uint32_t magic, const char* what, int dims,
                                   std::vector<uint64_t>* shape) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() < header) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated: ", bytes.size(),
                                                   " bytes, shorter than the ", header,
                                                   "-byte IDX header"));
  }
  const uint32_t found = BigEndian32(bytes, 0);
  if (found != magic) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad magic number 0x", absl::Hex(found, absl::kZeroPad8),
                     "; expected 0x", absl::Hex(magic, absl::kZeroPad8), " (IDX ", what,
                     ": unsigned bytes, ", dims, dims == 1 ? " dimension)" : " dimensions)"));
  }
  uint64_t values = 1;
  shape->clear();
  for (int d = 0; d < dims; ++d) {
    const uint32_t n = BigEndian32(bytes, 4 + 4 * static_cast<size_t>(d));
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": dimension ", d, " is 0"));
    }
    shape->push_back(n);
    values *= n;  // <= 4 GiB x 2^32: no overflow
    if (values > kMaxFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": header says more than ", kMaxFileBytes >> 30, " GiB of data"));
    }
  }
  if (bytes.size() - header != values) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, bytes.size() - header < values ? ": truncated: " : ": too long: ", "the header says ",
        values, " bytes of data, the file has ", bytes.size() - header));
  }
  return header;
}

}  // namespace

absl::StatusOr<XrayDataset> LoadIdxDataset(const std::string& images_path,
                                           const std::string& labels_path,
                                           const v1::XrayModelConfig& config) {
  if (absl::Status s = CheckXrayModelConfig(config); !s.ok()) return s;
  if (config.input_channels() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_path, ": IDX images have one channel, but xray_model.input_channels is ",
        config.input_channels()));
  }
  absl::StatusOr<std::string> images = ReadMaybeGzipped(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::string> labels = ReadMaybeGzipped(labels_path);
  if (!labels.ok()) return labels.status();

  std::vector<uint64_t> image_shape, label_shape;
  absl::StatusOr<size_t> image_offset =
      ParseHeader(images_path, *images, kImagesMagic, "images", 3, &image_shape);
  if (!image_offset.ok()) return image_offset.status();
  absl::StatusOr<size_t> label_offset =
      ParseHeader(labels_path, *labels, kLabelsMagic, "labels", 1, &label_shape);
  if (!label_offset.ok()) return label_offset.status();
  const uint64_t n = image_shape[0];
  if (label_shape[0] != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_path, " has ", n, " images but ", labels_path, " has ", label_shape[0], " labels"));
  }
  if (image_shape[1] > 65535 || image_shape[2] > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, ": images of ", image_shape[2], "x",
                                                   image_shape[1], " are too large"));
  }
  const int height = static_cast<int>(image_shape[1]);
  const int width = static_cast<int>(image_shape[2]);
  const int size = static_cast<int>(config.image_size());

  XrayDataset dataset;
  dataset.channels = 1;
  dataset.height = size;
  dataset.width = size;
  dataset.labels.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const auto label = static_cast<unsigned char>((*labels)[*label_offset + i]);
    if (label >= static_cast<unsigned>(config.classes_size())) {
      return absl::InvalidArgumentError(absl::StrCat(labels_path, ": item ", i, ": label ", label,
                                                     " is >= the ", config.classes_size(),
                                                     " classes of xray_model.classes"));
    }
    dataset.labels.push_back(label);
  }
  dataset.pixels.resize(n * size * size);
  dataset.boxes.assign(n, std::nullopt);
  dataset.sources.reserve(n);
  const size_t plane = static_cast<size_t>(height) * width;
  std::vector<uint16_t> wide(plane);
  const auto* bytes = reinterpret_cast<const unsigned char*>(images->data() + *image_offset);
  for (uint64_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < plane; ++k) wide[k] = static_cast<uint16_t>(bytes[i * plane + k] * 257);
    ResizePlane(wide.data(), height, width, size,
                dataset.pixels.data() + i * static_cast<size_t>(size) * size);
    dataset.sources.push_back(absl::StrCat(images_path, "#", i));
  }
  return dataset;
}

}  // namespace fedcustoms::xray
