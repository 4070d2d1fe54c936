#include "common/xray/xray_labels_csv.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/atomic_file.h"
#include "common/xray/xray_image_reader.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::xray {
namespace {

namespace fs = std::filesystem;

// The whole file is read into memory, so its size is capped before reading
// (a labels CSV of a million images is well under 100 MiB).
constexpr uint64_t kMaxCsvBytes = uint64_t{256} << 20;
// Each line is split into one string per comma, so its length is capped
// before splitting.
constexpr size_t kMaxLineBytes = size_t{64} << 10;

constexpr size_t kBoxColumns = 4;
constexpr const char* kBoxNames[kBoxColumns] = {"x_min", "y_min", "x_max", "y_max"};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A value quoted for an error message: at most 60 bytes, escaped.
std::string Shown(std::string_view v) {
  constexpr size_t kMax = 60;
  const absl::string_view shown(v.data(), std::min(v.size(), kMax));
  return absl::StrCat("\"", absl::CHexEscape(shown), v.size() > kMax ? "\"..." : "\"");
}

// Splits one line into trimmed fields; returns "" or what is wrong.
std::string SplitFields(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  size_t i = 0;
  while (true) {
    std::string field;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) {
          return absl::StrCat("field ", fields->size() + 1, ": unterminated quote");
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i < line.size() && line[i] != ',') {
        return absl::StrCat("field ", fields->size() + 1,
                            ": unexpected character after a closing quote");
      }
    } else {
      const size_t end = std::min(line.find(',', i), line.size());
      field.assign(Trim(line.substr(i, end - i)));
      i = end;
    }
    fields->push_back(std::move(field));
    if (i >= line.size()) return "";
    ++i;  // the comma
  }
}

class LabelsCsvLoader {
 public:
  LabelsCsvLoader(const std::string& path, const v1::XrayModelConfig& config)
      : path_(path), config_(config), folder_(fs::path(path).parent_path()) {}

  absl::StatusOr<XrayDataset> Load() {
    if (absl::Status s = CheckXrayModelConfig(config_); !s.ok()) return s;
    // When the size cannot be read, ReadFile() reports why (missing, not a
    // regular file...). The check after reading covers a file that grew.
    std::error_code size_error;
    const std::uintmax_t file_bytes = fs::file_size(path_, size_error);
    if (!size_error && file_bytes > kMaxCsvBytes) return TooLarge(file_bytes);
    absl::StatusOr<std::string> text = io::ReadFile(path_);
    if (!text.ok()) return text.status();
    if (text->size() > kMaxCsvBytes) return TooLarge(text->size());
    std::string_view rest = *text;
    if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);

    const int size = static_cast<int>(config_.image_size());
    dataset_.channels = static_cast<int>(config_.input_channels());
    dataset_.height = size;
    dataset_.width = size;

    std::vector<std::string> fields;
    size_t line_number = 0;
    bool have_header = false;
    while (!rest.empty()) {
      const size_t end = std::min(rest.find('\n'), rest.size());
      std::string_view line = rest.substr(0, end);
      rest.remove_prefix(std::min(end + 1, rest.size()));
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > kMaxLineBytes) {
        return Fail(line_number, absl::StrCat("line longer than ", kMaxLineBytes, " bytes"));
      }
      if (Trim(line).empty()) continue;
      if (std::string problem = SplitFields(line, &fields); !problem.empty()) {
        return Fail(line_number, problem);
      }
      absl::Status s = have_header ? AddRow(fields, line_number) : ReadHeader(fields, line_number);
      if (!s.ok()) return s;
      have_header = true;
    }
    if (!have_header) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": empty file; expected a header such as \"path,label\""));
    }
    if (dataset_.size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": no data rows after the header"));
    }
    return std::move(dataset_);
  }

 private:
  absl::Status Fail(size_t line, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": ", what));
  }

  absl::Status TooLarge(std::uintmax_t bytes) const {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", bytes, " bytes, larger than the labels CSV limit of ",
                     kMaxCsvBytes, " bytes (", kMaxCsvBytes >> 20, " MiB)"));
  }

  absl::Status ReadHeader(const std::vector<std::string>& header, size_t line) {
    const bool dual = !header.empty() && header[0] == "path_high";
    // Images to score only: the paths without a label column.
    has_label_ = header.size() != (dual ? 2u : 1u);
    std::vector<std::string> expected =
        dual ? std::vector<std::string>{"path_high", "path_low", "label"}
             : std::vector<std::string>{"path", "label"};
    if (!has_label_) expected.pop_back();
    const size_t base = expected.size();
    if (has_label_ && header.size() == base + kBoxColumns) {
      for (const char* name : kBoxNames) expected.push_back(name);
    }
    if (header != expected) {
      const char* allowed =
          config_.input_channels() == 2
              ? "\"path_high,path_low,label\" or \"path_high,path_low,label,x_min,y_min,x_max,"
                "y_max\" (or \"path_high,path_low\" for images to score)"
              : "\"path,label\" or \"path,label,x_min,y_min,x_max,y_max\" (or \"path\" for "
                "images to score)";
      return Fail(line, absl::StrCat("header must be ", allowed, ", found ",
                                     Shown(absl::StrJoin(header, ","))));
    }
    if (dual != (config_.input_channels() == 2)) {
      return Fail(line, dual ? "dual-energy header (path_high,path_low) but "
                               "xray_model.input_channels is 1"
                             : "single-energy header (path) but xray_model.input_channels is 2 "
                               "(expected path_high,path_low,...)");
    }
    dual_ = dual;
    has_box_ = has_label_ && header.size() == base + kBoxColumns;
    columns_ = header.size();
    dataset_.labeled = has_label_;
    return absl::OkStatus();
  }

  absl::Status AddRow(const std::vector<std::string>& fields, size_t line) {
    if (fields.size() != columns_) {
      return Fail(line, absl::StrCat("expected ", columns_, " fields, found ", fields.size()));
    }
    const size_t label_column = dual_ ? 2 : 1;
    for (size_t i = 0; i < label_column; ++i) {
      if (fields[i].empty()) return Fail(line, "empty image path");
    }
    const std::string& label = has_label_ ? fields[label_column] : config_.classes(0);
    int32_t label_index = -1;
    for (int i = 0; i < config_.classes_size(); ++i) {
      if (config_.classes(i) == label) label_index = i;
    }
    if (label_index < 0) {
      return Fail(line, absl::StrCat("label ", Shown(label), " is not a class (",
                                     absl::StrJoin(config_.classes(), ", "), ")"));
    }

    std::optional<Box> box;
    double coords[kBoxColumns];
    if (has_box_) {
      size_t given = 0;
      for (size_t k = 0; k < kBoxColumns; ++k) {
        if (!fields[label_column + 1 + k].empty()) ++given;
      }
      if (given != 0 && given != kBoxColumns) {
        return Fail(line, "box: give all four coordinates (x_min, y_min, x_max, y_max) or none");
      }
      if (given == kBoxColumns) {
        for (size_t k = 0; k < kBoxColumns; ++k) {
          const std::string& v = fields[label_column + 1 + k];
          const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), coords[k]);
          if (ec != std::errc() || end != v.data() + v.size() || !std::isfinite(coords[k])) {
            return Fail(line, absl::StrCat(kBoxNames[k], ": ", Shown(v), " is not a number"));
          }
          if (coords[k] < 0) {
            return Fail(line, absl::StrCat(kBoxNames[k], ": ", v, " is negative"));
          }
        }
        if (coords[0] >= coords[2] || coords[1] >= coords[3]) {
          return Fail(line, absl::StrCat("box (", coords[0], ", ", coords[1], ", ", coords[2], ", ",
                                         coords[3],
                                         ") is empty: x_min must be below x_max and y_min "
                                         "below y_max"));
        }
        box.emplace();
      }
    }

    const std::string high = Resolve(fields[0]);
    const int size = static_cast<int>(config_.image_size());
    absl::StatusOr<XrayImage> image =
        dual_ ? ReadDualEnergyXray(high, Resolve(fields[1]), size) : ReadXrayImage(high, size);
    if (!image.ok()) {
      return absl::Status(image.status().code(),
                          absl::StrCat(path_, ":", line, ": ", image.status().message()));
    }
    if (box) {
      if (coords[2] > image->source_width || coords[3] > image->source_height) {
        return Fail(line, absl::StrCat("box (", coords[0], ", ", coords[1], ", ", coords[2], ", ",
                                       coords[3], ") is outside the ", image->source_width, "x",
                                       image->source_height, " image ", high));
      }
      const double sx = static_cast<double>(size) / image->source_width;
      const double sy = static_cast<double>(size) / image->source_height;
      *box = Box{static_cast<float>(coords[0] * sx), static_cast<float>(coords[1] * sy),
                 static_cast<float>(coords[2] * sx), static_cast<float>(coords[3] * sy)};
    }
    dataset_.pixels.insert(dataset_.pixels.end(), image->pixels.begin(), image->pixels.end());
    dataset_.labels.push_back(label_index);
    dataset_.boxes.push_back(box);
    dataset_.sources.push_back(high);
    return absl::OkStatus();
  }

  std::string Resolve(const std::string& field) const {
    const fs::path p(field);
    if (p.is_absolute() || folder_.empty()) return p.string();
    return (folder_ / p).string();
  }

  // Constant after construction
  const std::string& path_;
  const v1::XrayModelConfig& config_;
  const fs::path folder_;

  // Set by ReadHeader()
  bool dual_ = false;
  bool has_box_ = false;
  bool has_label_ = true;
  size_t columns_ = 0;

  XrayDataset dataset_;
};

}  // namespace

absl::StatusOr<XrayDataset> LoadXrayLabelsCsv(const std::string& csv_path,
                                              const v1::XrayModelConfig& config) {
  return LabelsCsvLoader(csv_path, config).Load();
}

}  // namespace fedcustoms::xray
