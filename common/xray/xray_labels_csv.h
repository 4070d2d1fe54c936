#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/xray/xray_dataset.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::xray {

// Loads the images listed in the labels CSV at `csv_path` (see
// v1::XrayDataConfig.labels_csv), each resized to config.image_size.
//
// `config` must have its defaults applied (WithXrayDefaults()); it is checked
// with CheckXrayModelConfig() first. The header is one of
//   path,label                                      input_channels 1
//   path,label,x_min,y_min,x_max,y_max
//   path_high,path_low,label                        input_channels 2
//   path_high,path_low,label,x_min,y_min,x_max,y_max
//   path                                            images to score (no labels:
//   path_high,path_low                              XrayDataset::labeled false)
// (names exact, in this order; a UTF-8 BOM is dropped). A dual-energy header
// with input_channels 1, or the reverse, is an error.
//
// Rows: fields are comma-separated, trimmed of spaces and tabs, and may be
// double-quoted ("" for a quote; no line breaks inside). Blank lines are
// skipped; CRLF is accepted.
//   path       relative to the CSV's folder, or absolute; read with
//              ReadXrayImage() / ReadDualEnergyXray()
//   label      a name from config.classes (exact, case-sensitive)
//   box        all four coordinates or none (all empty): decimal numbers in
//              pixel-edge coordinates of the file's image, 0 <= x_min < x_max
//              <= width, same for y; scaled to the resized image.
//
// Errors read "<csv_path>:<line>: <what>", e.g.
//   "l.csv:1: header must be \"path,label\" or ... , found \"file,class\""
//   "l.csv:7: expected 6 fields, found 5"
//   "l.csv:9: label \"gun\" is not a class (clear, firearm, knife, drugs)"
//   "l.csv:4: x_min: \"1O\" is not a number"
//   "l.csv:4: box (0, 0, 300, 20) is outside the 200x150 image"
//   "l.csv:3: /data/x/img3.png: cannot open: No such file or directory"
// keeping an image error's code (NotFound for a missing image); else
// InvalidArgument, or NotFound when the CSV cannot be opened. An empty file or
// a header without rows is an error. The whole dataset is held in memory.
absl::StatusOr<XrayDataset> LoadXrayLabelsCsv(const std::string& csv_path,
                                              const v1::XrayModelConfig& config);

}  // namespace fedcustoms::xray
