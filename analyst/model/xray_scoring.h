#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace fedcustoms::analyst {

// `fedcustoms score --task xray`.
struct XrayScoreOptions {
  // A directory written by `fedcustoms pull` holding an X-ray model.
  std::string model_dir;
  // The coordinator's Ed25519 public key (PEM) that signed the manifest.
  std::string public_key;
  // A labels CSV (common/xray/xray_labels_csv.h): "path" alone for images to
  // score, or with labels and boxes (then the summary measures the heatmaps).
  std::string data_csv;
  std::string out_csv;
  // When set: one Grad-CAM overlay PNG per image in this directory (created).
  std::string gradcam_dir;
};

struct XrayScoreSummary {
  size_t images = 0;
  std::string model;  // e.g. "xray v5"
  // Images whose most probable class is a threat.
  size_t predicted_threats = 0;
  // Over images with a threat box (labels CSV with boxes), Grad-CAM of the
  // labelled class: how often its peak falls inside the box, against the
  // mean share of the image the boxes cover (the rate of a random peak).
  size_t boxed_images = 0;
  double peak_in_box_rate = 0;
  double box_area_share = 0;
};

// Verifies and loads the model (LoadPulledModel), reads the images, and
// writes out_csv atomically:
//   image                 the path as in the labels CSV's folder resolution
//   p_<class>             one column per class, softmax probabilities
//   threat_probability    1 - P(first class) computed as the sum of the others
//   predicted_class       the most probable class
// and with gradcam_dir: heatmap (file name in gradcam_dir), gradcam_class (the
// most probable threat class, the one explained), peak_x, peak_y. The
// overlays are "<row, 6 digits>_<image file stem>.png". Errors name the file
// and the field; the CSV is not written on error.
absl::StatusOr<XrayScoreSummary> ScoreXrayFile(const XrayScoreOptions& options);

}  // namespace fedcustoms::analyst
