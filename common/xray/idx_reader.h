#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/xray/xray_dataset.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::xray {

// Loads an IDX image file (unsigned bytes, [N, H, W], magic 0x00000803) and
// its IDX label file (unsigned bytes, [N], magic 0x00000801), as MNIST and
// Fashion-MNIST ship them. Either file may be gzip-compressed (told by its
// content, not its name; Debian's dataset-fashion-mnist ships *.gz).
//
// `config` must have its defaults applied; it is checked with
// CheckXrayModelConfig(), and input_channels must be 1 (IDX images have one
// channel). Pixels are scaled by 257 to 16 bits and resized to
// image_size x image_size (cv::INTER_AREA) when H or W differ. Labels are class
// indexes and must be < the number of classes. Items have no boxes; their
// source is "<images_path>#<index>".
//
// Errors name the file: NotFound when it cannot be opened; InvalidArgument for
// a bad magic number, an empty dimension, the two files' counts differing, a
// label out of range ("l.idx: item 17: label 12 is >= the 4 classes of
// xray_model.classes"), a file shorter or longer than its header says
// ("truncated"), a corrupt gzip stream, or input_channels 2. Decompressed
// files above 4 GiB are refused.
absl::StatusOr<XrayDataset> LoadIdxDataset(const std::string& images_path,
                                           const std::string& labels_path,
                                           const v1::XrayModelConfig& config);

}  // namespace fedcustoms::xray
