// Grad-CAM on synthetic cargo X-rays: a CNN trained on images with inserted
// threats looks at the threat. `fedcustoms score --task xray --gradcam` end to
// end on a signed model directory.
#include "analyst/explain/grad_cam.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "analyst/model/xray_scoring.h"
#include "common/io/atomic_file.h"
#include "common/tensor/named_tensors.h"
#include "common/training/xray_trainer.h"
#include "common/xray/xray_labels_csv.h"
#include "common/xray/xray_model_config.h"
#include "common/xray/xray_synth.h"
#include "tests/support/pulled_model_dir.h"

namespace fedcustoms::analyst {
namespace {

using ::testing::HasSubstr;

class GradCamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(2);
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           absl::StrCat("fedcustoms-gradcam-", ::getpid()));
    xray::XraySynthOptions synth;
    synth.admins = {"EE", "FI"};
    synth.images = 700;
    synth.size = 64;
    synth.positive_rate = 0.5;
    synth.seed = 5;
    synth.out_dir = *dir_;
    ASSERT_TRUE(xray::SynthesizeXrays(synth).ok());
    spec_ = new task::ModelSpec;
    spec_->kind = v1::TASK_XRAY;
    spec_->xray = xray::WithXrayDefaults({});
    // Train on EE's images; FI's are the unseen test set.
    auto train = xray::LoadXrayLabelsCsv(*dir_ + "/EE/labels.csv", spec_->xray);
    ASSERT_TRUE(train.ok()) << train.status();
    models::XrayCnn model(spec_->xray, 1);
    v1::TrainingConfig config;
    config.set_local_epochs(6);
    config.set_batch_size(32);
    config.set_learning_rate(0.002);
    config.set_seed(9);
    const auto images = training::Uint16Images(train->pixels, static_cast<int64_t>(train->size()),
                                               1, train->height, train->width);
    std::vector<int64_t> labels(train->labels.begin(), train->labels.end());
    auto trained = training::TrainXrayModel(model, images, torch::tensor(labels), config,
                                            /*augment=*/true);
    ASSERT_TRUE(trained.ok()) << trained.status();
    public_key_ = new std::string;
    ASSERT_TRUE(testing::WritePulledModelDir(*dir_ + "/model", *spec_, tensor::StateOf(*model), 3,
                                             public_key_)
                    .ok());
  }

  static void TearDownTestSuite() { std::filesystem::remove_all(*dir_); }

  inline static std::string* dir_ = nullptr;
  inline static std::string* public_key_ = nullptr;
  inline static task::ModelSpec* spec_ = nullptr;
};

// The heatmap's peak falls inside the inserted threat's box far more often
// than a peak placed at random would (the boxes' mean share of the image).
TEST_F(GradCamTest, HeatmapPeaksFallInsideTheThreatFarMoreOftenThanChance) {
  XrayScoreOptions options;
  options.model_dir = *dir_ + "/model";
  options.public_key = *public_key_;
  options.data_csv = *dir_ + "/FI/labels.csv";
  options.out_csv = *dir_ + "/scores.csv";
  options.gradcam_dir = *dir_ + "/heatmaps";
  auto summary = ScoreXrayFile(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->images, 700u);
  EXPECT_EQ(summary->boxed_images, 350u);
  EXPECT_GT(summary->box_area_share, 0.0);
  std::cout << "peak in box " << summary->peak_in_box_rate << " vs chance "
            << summary->box_area_share << "\n";
  EXPECT_GT(summary->peak_in_box_rate, 3 * summary->box_area_share);
  EXPECT_GT(summary->peak_in_box_rate, 0.4);

  // One readable colour PNG per image, named in the CSV.
  std::ifstream in(options.out_csv);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header,
            "image,p_clear,p_firearm,p_knife,p_drugs,threat_probability,predicted_class,heatmap,"
            "gradcam_class,peak_x,peak_y");
  std::string line;
  size_t rows = 0;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    ASSERT_EQ(f.size(), 11u);
    double sum = 0;
    for (int c = 1; c <= 4; ++c) sum += std::stod(f[c]);
    EXPECT_NEAR(sum, 1, 1e-4);
    EXPECT_NE(f[8], "clear");
    if (rows++ % 100 == 0) {
      const cv::Mat png = cv::imread(options.gradcam_dir + "/" + f[7], cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(png.empty()) << f[7];
      EXPECT_EQ(png.channels(), 3);
      EXPECT_EQ(png.rows, 64);
    }
  }
  EXPECT_EQ(rows, 700u);
}

TEST_F(GradCamTest, HeatmapIsNormalizedAndPeaksWhereItsMaximumIs) {
  auto data = xray::LoadXrayLabelsCsv(*dir_ + "/FI/labels.csv", spec_->xray);
  ASSERT_TRUE(data.ok());
  models::XrayCnn model(spec_->xray, 1);
  const auto images = training::UnitImages(training::Uint16Images(
      std::span<const uint16_t>(data->pixels).subspan(0, 4 * data->item_values()), 4, 1, 64, 64));
  const std::vector<int> classes = {1, 2, 3, 1};
  const std::vector<GradCam> cams = ComputeGradCam(model, images, classes);
  ASSERT_EQ(cams.size(), 4u);
  for (size_t i = 0; i < cams.size(); ++i) {
    EXPECT_EQ(cams[i].target_class, classes[i]);
    ASSERT_EQ(cams[i].heatmap.size(), 64u * 64u);
    if (cams[i].peak_x < 0) {
      // No location raised the class: an all-zero map, no peak.
      for (float v : cams[i].heatmap) EXPECT_EQ(v, 0);
      continue;
    }
    const float peak = cams[i].heatmap[cams[i].peak_y * 64 + cams[i].peak_x];
    EXPECT_EQ(peak, 1.0f);
    for (float v : cams[i].heatmap) {
      EXPECT_GE(v, 0);
      EXPECT_LE(v, peak);
    }
  }
  const std::vector<int> bad = {4, 0, 0, 0};
  EXPECT_THROW(ComputeGradCam(model, images, bad), c10::Error);
}

TEST_F(GradCamTest, ImagesWithoutLabelsAreScoredAndADeclarationModelIsRefused) {
  std::string list = "path\n";
  for (int i = 0; i < 5; ++i)
    list += absl::StrCat(*dir_, "/FI/images/", absl::StrFormat("%06d", i), ".png\n");
  ASSERT_TRUE(io::WriteFileAtomically(*dir_ + "/to_score.csv", list).ok());
  XrayScoreOptions options;
  options.model_dir = *dir_ + "/model";
  options.public_key = *public_key_;
  options.data_csv = *dir_ + "/to_score.csv";
  options.out_csv = *dir_ + "/unlabelled_scores.csv";
  auto summary = ScoreXrayFile(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->images, 5u);
  EXPECT_EQ(summary->boxed_images, 0u);

  task::ModelSpec risk;
  risk.kind = v1::TASK_RISK;
  options.model_dir = *dir_ + "/risk-model";
  v1::ColumnSpec* c = risk.schema.add_columns();
  c->set_name("x");
  c->set_role(v1::NUMERIC);
  auto state = task::InitialState(risk, 1);
  ASSERT_TRUE(state.ok()) << state.status();
  std::string key;
  ASSERT_TRUE(testing::WritePulledModelDir(options.model_dir, risk, *state, 1, &key).ok());
  EXPECT_THAT(ScoreXrayFile(options).status().message(),
              HasSubstr("holds risk v1, not an X-ray model"));
}

}  // namespace
}  // namespace fedcustoms::analyst
