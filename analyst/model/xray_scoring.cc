#include "analyst/model/xray_scoring.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyst/explain/grad_cam.h"
#include "analyst/model/csv_field.h"
#include "analyst/model/model_puller.h"
#include "analyst/model/pulled_model.h"
#include "common/io/atomic_file.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/training/xray_trainer.h"
#include "common/xray/xray_labels_csv.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::analyst {
namespace {

// Images per forward (and per Grad-CAM backward) pass.
constexpr size_t kXrayBatch = 64;

bool PeakInBox(const GradCam& cam, const xray::Box& box) {
  if (cam.peak_x < 0) return false;
  const float x = cam.peak_x + 0.5f, y = cam.peak_y + 0.5f;
  return x >= box.x_min && x < box.x_max && y >= box.y_min && y < box.y_max;
}

}  // namespace

absl::StatusOr<XrayScoreSummary> ScoreXrayFile(const XrayScoreOptions& options) {
  // The kind first: a declaration model would fail on its missing schema.
  auto manifest = VerifyPulledModel(options.model_dir, options.public_key);
  if (!manifest.ok()) return manifest.status();
  if (manifest->architecture != task::ArchitectureName(v1::TASK_XRAY)) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.model_dir, " holds ", manifest->task, " v", manifest->version,
                     ", not an X-ray model (a declaration model scores declarations)"));
  }
  auto model = LoadPulledModel(options.model_dir, options.public_key, {});
  if (!model.ok()) return model.status();
  const v1::XrayModelConfig config = xray::WithXrayDefaults(model->spec.xray);
  if (absl::Status s = models::CheckXrayCnnConfig(config); !s.ok()) return s;
  models::XrayCnn cnn(config, 1);
  if (absl::Status s = tensor::LoadState(*cnn, model->state); !s.ok()) return s;
  auto data = xray::LoadXrayLabelsCsv(options.data_csv, config);
  if (!data.ok()) return data.status();
  if (!options.gradcam_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.gradcam_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat(options.gradcam_dir, ": cannot create: ", ec.message()));
    }
  }

  XrayScoreSummary summary;
  summary.images = data->size();
  summary.model = absl::StrCat(model->manifest.task, " v", model->manifest.version);
  const int classes = config.classes_size();
  std::string out = "image";
  for (const std::string& c : config.classes()) absl::StrAppend(&out, ",p_", c);
  out += ",threat_probability,predicted_class";
  if (!options.gradcam_dir.empty()) out += ",heatmap,gradcam_class,peak_x,peak_y";
  out += '\n';
  size_t peaks_in_box = 0;
  double box_share = 0;
  const int size = static_cast<int>(config.image_size());
  try {
    for (size_t start = 0; start < data->size(); start += kXrayBatch) {
      const size_t n = std::min(kXrayBatch, data->size() - start);
      const std::span<const uint16_t> pixels(data->item(start), n * data->item_values());
      const torch::Tensor images = training::UnitImages(training::Uint16Images(
          pixels, static_cast<int64_t>(n), data->channels, data->height, data->width));
      torch::Tensor probabilities;
      {
        torch::NoGradGuard no_grad;
        cnn->eval();
        probabilities = torch::softmax(cnn->forward(images), 1).contiguous();
      }
      const float* p = probabilities.data_ptr<float>();
      std::vector<int> explained(n);
      for (size_t i = 0; i < n; ++i) {
        const float* row = p + i * classes;
        explained[i] = static_cast<int>(std::max_element(row + 1, row + classes) - row);
      }
      std::vector<GradCam> cams;
      if (!options.gradcam_dir.empty()) cams = ComputeGradCam(cnn, images, explained);
      // Heatmap quality is judged on the labelled threat class: the heatmap
      // already made when that is the class explained, another pass for the
      // images whose most probable threat is a different one.
      std::vector<size_t> boxed, other;
      std::vector<int> other_classes;
      for (size_t i = 0; i < n; ++i) {
        if (!data->labeled || !data->boxes[start + i] || data->labels[start + i] == 0) continue;
        boxed.push_back(i);
        if (data->labels[start + i] != explained[i]) {
          other.push_back(i);
          other_classes.push_back(data->labels[start + i]);
        }
      }
      if (!boxed.empty() && !options.gradcam_dir.empty()) {
        std::vector<GradCam> truth = cams;
        if (!other.empty()) {
          std::vector<int64_t> index(other.begin(), other.end());
          std::vector<GradCam> extra =
              ComputeGradCam(cnn, images.index_select(0, torch::tensor(index)), other_classes);
          for (size_t k = 0; k < other.size(); ++k) truth[other[k]] = std::move(extra[k]);
        }
        for (size_t i : boxed) {
          const xray::Box& box = *data->boxes[start + i];
          if (PeakInBox(truth[i], box)) ++peaks_in_box;
          box_share += (box.x_max - box.x_min) * (box.y_max - box.y_min) / (size * size);
        }
        summary.boxed_images += boxed.size();
      }
      for (size_t i = 0; i < n; ++i) {
        const size_t item = start + i;
        const float* row = p + i * classes;
        out += CsvField(data->sources[item]);
        double threat = 0;
        for (int c = 0; c < classes; ++c) {
          absl::StrAppend(&out, ",", absl::StrFormat("%.6g", row[c]));
          if (c > 0) threat += row[c];
        }
        const int predicted = static_cast<int>(std::max_element(row, row + classes) - row);
        if (predicted > 0) ++summary.predicted_threats;
        absl::StrAppend(&out, ",", absl::StrFormat("%.6g", threat), ",",
                        CsvField(config.classes(predicted)));
        if (!cams.empty()) {
          const std::string name = absl::StrFormat(
              "%06d_%s.png", item + 1, std::filesystem::path(data->sources[item]).stem().string());
          if (absl::Status s =
                  WriteGradCamOverlay(data->item(item), cams[i], options.gradcam_dir + "/" + name);
              !s.ok()) {
            return s;
          }
          absl::StrAppend(&out, ",", CsvField(name), ",", CsvField(config.classes(explained[i])),
                          ",", cams[i].peak_x < 0 ? "" : absl::StrCat(cams[i].peak_x), ",",
                          cams[i].peak_y < 0 ? "" : absl::StrCat(cams[i].peak_y));
        }
        out += '\n';
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("X-ray scoring failed in LibTorch: ", e.what_without_backtrace()));
  }
  if (summary.boxed_images > 0) {
    summary.peak_in_box_rate = static_cast<double>(peaks_in_box) / summary.boxed_images;
    summary.box_area_share = box_share / summary.boxed_images;
  }
  if (absl::Status s = io::WriteFileAtomically(options.out_csv, out); !s.ok()) return s;
  return summary;
}

}  // namespace fedcustoms::analyst
