// The X-ray data layer: model config checks, image reading, labels CSV, IDX
// files and the synthetic X-ray generator. Error paths follow the happy paths
// in each section.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/xray/idx_reader.h"
#include "common/xray/xray_image_reader.h"
#include "common/xray/xray_labels_csv.h"
#include "common/xray/xray_model_config.h"
#include "common/xray/xray_synth.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::xray {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

constexpr int64_t kMiB = int64_t{1} << 20;

// The peak resident memory of this process so far (ru_maxrss is in KiB on
// Linux). Its growth over a call bounds what the call held at once; if an
// earlier test in the process peaked higher, the growth is smaller, so a
// check "grew by less than N" can miss a regression but never fail wrongly.
int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t{usage.ru_maxrss} * 1024;
}

v1::XrayModelConfig Config(uint32_t image_size, uint32_t input_channels = 1) {
  v1::XrayModelConfig c;
  c.set_image_size(image_size);
  c.set_input_channels(input_channels);
  return WithXrayDefaults(c);
}

// A width x height 16-bit ramp, distinct values so resizing is visible.
cv::Mat Ramp16(int width, int height, int offset = 0) {
  cv::Mat m(height, width, CV_16UC1);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) m.at<uint16_t>(y, x) = (offset + 1000 * y + 37 * x) % 65536;
  }
  return m;
}

class XrayDataTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()) << "cannot create a temp dir"; }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string WriteImage(const std::string& name, const cv::Mat& m) {
    const std::string path = Path(name);
    EXPECT_TRUE(cv::imwrite(path, m)) << path;
    return path;
  }

  testing_support::TempDir temp_{"xray-data"};
  const std::string dir_ = temp_.path();
};

// ---------------------------------------------------------------------------
// XrayModelConfig

TEST(XrayModelConfig, DefaultsFillUnsetFieldsAndPass) {
  const v1::XrayModelConfig c = WithXrayDefaults(v1::XrayModelConfig());
  EXPECT_THAT(c.channels(), ::testing::ElementsAre(16, 32, 64));
  EXPECT_EQ(c.image_size(), 64u);
  EXPECT_EQ(c.input_channels(), 1u);
  EXPECT_THAT(c.classes(), ::testing::ElementsAre("clear", "firearm", "knife", "drugs"));
  EXPECT_EQ(c.hidden_units(), 128u);
  EXPECT_EQ(c.dropout(), 0.0);
  EXPECT_EQ(c.pixel_encoding(), v1::XrayModelConfig::ATTENUATION);
  EXPECT_EQ(c.attenuation_center(), 0.75);
  EXPECT_EQ(c.attenuation_scale(), 0.3);
  EXPECT_TRUE(CheckXrayModelConfig(c).ok());

  v1::XrayModelConfig set;
  set.set_image_size(32);
  set.add_classes("none");
  set.add_classes("weapon");
  set.set_pixel_encoding(v1::XrayModelConfig::INTENSITY);
  set.set_attenuation_center(0.0);  // explicitly 0: kept, not replaced by the default
  const v1::XrayModelConfig kept = WithXrayDefaults(set);
  EXPECT_EQ(kept.image_size(), 32u);
  EXPECT_THAT(kept.classes(), ::testing::ElementsAre("none", "weapon"));
  EXPECT_EQ(kept.pixel_encoding(), v1::XrayModelConfig::INTENSITY);
  EXPECT_EQ(kept.attenuation_center(), 0.0);
  EXPECT_TRUE(CheckXrayModelConfig(kept).ok());
}

TEST(XrayModelConfig, SynthClassesAreTheDefaults) {
  const v1::XrayModelConfig c = WithXrayDefaults(v1::XrayModelConfig());
  ASSERT_EQ(c.classes_size(), static_cast<int>(kSynthXrayClasses.size()));
  for (int i = 0; i < c.classes_size(); ++i) EXPECT_EQ(c.classes(i), kSynthXrayClasses[i]);
}

TEST(XrayModelConfig, ErrorsNameTheField) {
  struct Case {
    std::function<void(v1::XrayModelConfig*)> change;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](auto* c) {
         c->clear_channels();
         for (int i = 0; i < 7; ++i) c->add_channels(8);
       },
       "xray_model.channels: must have 1..6 entries"},
      {[](auto* c) { c->set_channels(1, 0); },
       "xray_model.channels[1]: must be in 1..512, found 0"},
      {[](auto* c) { c->set_channels(0, 513); }, "xray_model.channels[0]: must be in 1..512"},
      {[](auto* c) { c->set_image_size(4); }, "xray_model.image_size: must be in 8..512, found 4"},
      {[](auto* c) { c->set_image_size(1024); }, "xray_model.image_size: must be in 8..512"},
      {[](auto* c) { c->set_input_channels(3); }, "xray_model.input_channels: must be 1"},
      {[](auto* c) {
         c->clear_classes();
         c->add_classes("clear");
       },
       "xray_model.classes: must have 2..64 names"},
      {[](auto* c) { c->set_classes(2, "firearm"); },
       "xray_model.classes[2]: \"firearm\" appears twice (also classes[1])"},
      {[](auto* c) { c->set_classes(3, ""); }, "xray_model.classes[3]: empty class name"},
      {[](auto* c) { c->set_classes(3, "a,b"); }, "xray_model.classes[3]: \"a,b\" has a control"},
      {[](auto* c) { c->set_classes(1, " gun"); },
       "xray_model.classes[1]: \" gun\" has surrounding"},
      {[](auto* c) { c->set_hidden_units(9000); }, "xray_model.hidden_units: must be in 1..8192"},
      {[](auto* c) { c->set_dropout(1.0); }, "xray_model.dropout: must be in [0, 1), found 1"},
      {[](auto* c) { c->set_dropout(-0.1); }, "xray_model.dropout: must be in [0, 1)"},
      {[](auto* c) { c->set_dropout(std::nan("")); }, "xray_model.dropout: must be in [0, 1)"},
      {[](auto* c) { c->set_pixel_encoding(static_cast<v1::XrayModelConfig::PixelEncoding>(7)); },
       "xray_model.pixel_encoding: must be ATTENUATION or INTENSITY, found 7"},
      {[](auto* c) { c->set_attenuation_center(-0.5); },
       "xray_model.attenuation_center: must be in [0, 8], found -0.5"},
      {[](auto* c) { c->set_attenuation_center(std::nan("")); },
       "xray_model.attenuation_center: must be in [0, 8]"},
      {[](auto* c) { c->set_attenuation_scale(0.0); },
       "xray_model.attenuation_scale: must be in (0, 8], found 0"},
      {[](auto* c) { c->set_attenuation_scale(9.0); },
       "xray_model.attenuation_scale: must be in (0, 8], found 9"},
  };
  for (const Case& test : cases) {
    v1::XrayModelConfig c = WithXrayDefaults(v1::XrayModelConfig());
    test.change(&c);
    const absl::Status s = CheckXrayModelConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << test.expected;
    EXPECT_THAT(s.message(), HasSubstr(test.expected));
  }
  v1::XrayModelConfig c = WithXrayDefaults(v1::XrayModelConfig());
  c.set_image_size(2);
  EXPECT_THAT(CheckXrayModelConfig(c, "tasks[1].xray_model").message(),
              HasSubstr("tasks[1].xray_model.image_size"));
}

// ---------------------------------------------------------------------------
// XrayImageReader

TEST_F(XrayDataTest, XrayImageReaderScales8BitPngTo16Bit) {
  cv::Mat m(8, 8, CV_8UC1);
  for (int i = 0; i < 64; ++i) m.data[i] = static_cast<uint8_t>(i * 4);
  m.data[63] = 255;
  const std::string path = WriteImage("eight.png", m);
  absl::StatusOr<XrayImage> image = ReadXrayImage(path, 8);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->source_bits, 8);
  EXPECT_EQ(image->source_width, 8);
  ASSERT_EQ(image->pixels.size(), 64u);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(image->pixels[i], m.data[i] * 257) << i;
  EXPECT_EQ(image->pixels[63], 65535);
}

TEST_F(XrayDataTest, XrayImageReaderReads16BitPngTiffAndPgmAlike) {
  const cv::Mat m = Ramp16(12, 12, 20000);
  for (const char* name : {"ramp.png", "ramp.tiff", "ramp.pgm"}) {
    const std::string path = WriteImage(name, m);
    absl::StatusOr<XrayImage> image = ReadXrayImage(path, 12);
    ASSERT_TRUE(image.ok()) << name << ": " << image.status();
    EXPECT_EQ(image->source_bits, 16) << name;
    ASSERT_EQ(image->pixels.size(), 144u);
    EXPECT_TRUE(std::equal(image->pixels.begin(), image->pixels.end(), m.ptr<uint16_t>())) << name;
  }
}

TEST_F(XrayDataTest, XrayImageReaderStretchesAsciiPgmMaxval) {
  // 10-bit data: 1023 is white.
  WriteAll(Path("ten.pgm"), "P2\n# a comment\n2 2\n1023\n0 1023\n511 1\n");
  absl::StatusOr<XrayImage> image = ReadXrayImage(Path("ten.pgm"), 2);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_THAT(image->pixels, ::testing::ElementsAre(0, 65535, std::lround(511 * 65535.0 / 1023),
                                                    std::lround(65535.0 / 1023)));
}

TEST_F(XrayDataTest, XrayImageReaderResizesByAreaAveraging) {
  const cv::Mat m = Ramp16(16, 16);
  absl::StatusOr<XrayImage> image = ReadXrayImage(WriteImage("big.png", m), 8);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->source_width, 16);
  ASSERT_EQ(image->pixels.size(), 64u);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      const double mean =
          (m.at<uint16_t>(2 * y, 2 * x) + m.at<uint16_t>(2 * y, 2 * x + 1) +
           m.at<uint16_t>(2 * y + 1, 2 * x) + m.at<uint16_t>(2 * y + 1, 2 * x + 1)) /
          4.0;
      EXPECT_NEAR(image->pixels[y * 8 + x], mean, 1.0) << x << "," << y;
    }
  }
}

TEST_F(XrayDataTest, XrayImageReaderAcceptsGrayStoredAsRgb) {
  cv::Mat gray = Ramp16(8, 8);
  cv::Mat rgb;
  cv::merge(std::vector<cv::Mat>{gray, gray, gray}, rgb);
  absl::StatusOr<XrayImage> image = ReadXrayImage(WriteImage("rgb.png", rgb), 8);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_TRUE(std::equal(image->pixels.begin(), image->pixels.end(), gray.ptr<uint16_t>()));
}

TEST_F(XrayDataTest, XrayImageReaderReadsDualEnergyPairs) {
  const std::string high = WriteImage("h.png", Ramp16(10, 10, 100));
  const std::string low = WriteImage("l.png", Ramp16(10, 10, 50));
  absl::StatusOr<XrayImage> pair = ReadDualEnergyXray(high, low, 10);
  ASSERT_TRUE(pair.ok()) << pair.status();
  ASSERT_EQ(pair->pixels.size(), 200u);
  EXPECT_EQ(pair->pixels[0], 100);
  EXPECT_EQ(pair->pixels[100], 50);
}

// Error paths of the image reader.

TEST_F(XrayDataTest, XrayImageReaderMissingFile) {
  absl::StatusOr<XrayImage> image = ReadXrayImage(Path("nope.png"), 8);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(image.status().message(), HasSubstr("nope.png"));
}

TEST_F(XrayDataTest, XrayImageReaderNotAnImage) {
  WriteAll(Path("notes.png"), "this is text, not pixels\n");
  absl::StatusOr<XrayImage> image = ReadXrayImage(Path("notes.png"), 8);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(image.status().message(),
              AllOf(HasSubstr("notes.png"), HasSubstr("not a PNG, TIFF or PGM image")));
  WriteAll(Path("empty.png"), "");
  EXPECT_THAT(ReadXrayImage(Path("empty.png"), 8).status().message(),
              AllOf(HasSubstr("empty.png"), HasSubstr("empty file")));
  // JPEG is refused by content, whatever the name.
  cv::Mat m(8, 8, CV_8UC1, cv::Scalar(100));
  std::vector<uchar> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", m, jpeg));
  WriteAll(Path("photo.png"), std::string(jpeg.begin(), jpeg.end()));
  EXPECT_THAT(ReadXrayImage(Path("photo.png"), 8).status().message(),
              HasSubstr("not a PNG, TIFF or PGM image"));
}

TEST_F(XrayDataTest, XrayImageReaderTruncatedPng) {
  const std::string bytes = ReadAll(WriteImage("full.png", Ramp16(32, 32)));
  WriteAll(Path("cut.png"), bytes.substr(0, bytes.size() / 2));
  absl::StatusOr<XrayImage> image = ReadXrayImage(Path("cut.png"), 16);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(image.status().message(), AllOf(HasSubstr("cut.png"), HasSubstr("truncated PNG")));

  // Whole length but damaged image data: the decoder refuses it.
  std::string damaged = bytes;
  const size_t idat = damaged.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  for (size_t i = idat + 8; i < idat + 40; ++i) damaged[i] = static_cast<char>(~damaged[i]);
  WriteAll(Path("damaged.png"), damaged);
  EXPECT_THAT(ReadXrayImage(Path("damaged.png"), 16).status().message(),
              AllOf(HasSubstr("damaged.png"), HasSubstr("cannot decode PNG")));
}

TEST_F(XrayDataTest, XrayImageReaderTruncatedTiff) {
  const std::string bytes = ReadAll(WriteImage("full.tiff", Ramp16(32, 32)));
  for (size_t keep : {bytes.size() / 2, size_t{16}}) {
    WriteAll(Path("cut.tiff"), bytes.substr(0, keep));
    absl::StatusOr<XrayImage> image = ReadXrayImage(Path("cut.tiff"), 16);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << keep;
    EXPECT_THAT(image.status().message(),
                AllOf(HasSubstr("cut.tiff"), HasSubstr("cannot decode TIFF (corrupt or truncated")))
        << keep;
  }
}

TEST_F(XrayDataTest, XrayImageReaderTruncatedPgm) {
  const std::string bytes = ReadAll(WriteImage("full.pgm", Ramp16(32, 32)));
  WriteAll(Path("cut.pgm"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(ReadXrayImage(Path("cut.pgm"), 16).status().message(),
              AllOf(HasSubstr("cut.pgm"), HasSubstr("cannot decode PGM")));
}

TEST_F(XrayDataTest, XrayImageReaderUnsupportedDepth) {
  cv::Mat f(8, 8, CV_32FC1, cv::Scalar(0.5));
  const std::string path = WriteImage("float.tiff", f);
  absl::StatusOr<XrayImage> image = ReadXrayImage(path, 8);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(image.status().message(),
              AllOf(HasSubstr("float.tiff"), HasSubstr("unsupported pixel depth (32-bit float)")));
}

TEST_F(XrayDataTest, XrayImageReaderRefusesColour) {
  cv::Mat colour(8, 8, CV_8UC3, cv::Scalar(10, 200, 30));
  absl::StatusOr<XrayImage> image = ReadXrayImage(WriteImage("colour.png", colour), 8);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(image.status().message(), AllOf(HasSubstr("colour.png"), HasSubstr("colour image")));
}

TEST_F(XrayDataTest, XrayImageReaderDualEnergySizeMismatch) {
  const std::string high = WriteImage("h.png", Ramp16(10, 10));
  const std::string low = WriteImage("l.png", Ramp16(12, 10));
  absl::StatusOr<XrayImage> pair = ReadDualEnergyXray(high, low, 8);
  EXPECT_EQ(pair.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pair.status().message(),
              AllOf(HasSubstr("h.png"), HasSubstr("l.png"),
                    HasSubstr("dual-energy images differ in size (10x10 and 12x10)")));
}

TEST_F(XrayDataTest, XrayImageReaderRefusesAHugeFileBeforeReadingIt) {
  // 3 GiB, sparse (no disk): refused by its size, without reading 3 GiB.
  const std::string path = Path("big.png");
  WriteAll(path, "");
  std::error_code ec;
  fs::resize_file(path, std::uintmax_t{3} << 30, ec);
  ASSERT_FALSE(ec) << ec.message();
  const int64_t peak_before = PeakRssBytes();
  absl::StatusOr<XrayImage> image = ReadXrayImage(path, 8);
  const int64_t grown = PeakRssBytes() - peak_before;
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(image.status().message()),
            path +
                ": 3221225472 bytes, larger than 2 GiB; not an X-ray image this reader can "
                "decode");
  EXPECT_LT(grown, 256 * kMiB);
}

// ---------------------------------------------------------------------------
// XrayLabelsCsv

TEST_F(XrayDataTest, XrayLabelsCsvLoadsImagesLabelsAndScaledBoxes) {
  fs::create_directories(Path("set/img"));
  WriteImage("set/img/a.png", Ramp16(32, 16));
  WriteImage("set/img/b.tiff", Ramp16(32, 16, 5));
  WriteAll(Path("set/labels.csv"),
           "\xEF\xBB\xBFpath,label,x_min,y_min,x_max,y_max\r\n"
           "img/a.png,knife,4,2,20.5,16\r\n"
           "\r\n"
           "\"img/b.tiff\" , clear ,,,,\r\n");
  absl::StatusOr<XrayDataset> d = LoadXrayLabelsCsv(Path("set/labels.csv"), Config(16));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(d->channels, 1);
  EXPECT_EQ(d->height, 16);
  EXPECT_EQ(d->width, 16);
  EXPECT_EQ(d->pixels.size(), 2u * 16 * 16);
  EXPECT_THAT(d->labels, ::testing::ElementsAre(2, 0));
  ASSERT_TRUE(d->boxes[0].has_value());
  EXPECT_FLOAT_EQ(d->boxes[0]->x_min, 2);  // x scaled by 16 / 32
  EXPECT_FLOAT_EQ(d->boxes[0]->y_min, 2);
  EXPECT_FLOAT_EQ(d->boxes[0]->x_max, 10.25);
  EXPECT_FLOAT_EQ(d->boxes[0]->y_max, 16);
  EXPECT_FALSE(d->boxes[1].has_value());
  EXPECT_EQ(d->sources[0], Path("set/img/a.png"));
}

TEST_F(XrayDataTest, XrayLabelsCsvLoadsDualEnergyPairs) {
  WriteImage("h.png", Ramp16(8, 8, 300));
  WriteImage("l.png", Ramp16(8, 8, 200));
  WriteAll(Path("dual.csv"), "path_high,path_low,label\nh.png,l.png,drugs\n");
  absl::StatusOr<XrayDataset> d = LoadXrayLabelsCsv(Path("dual.csv"), Config(8, 2));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->channels, 2);
  ASSERT_EQ(d->pixels.size(), 2u * 8 * 8);
  EXPECT_EQ(d->item(0)[0], 300);
  EXPECT_EQ(d->item(0)[64], 200);
  EXPECT_EQ(d->labels[0], 3);
}

// Images to score: a labels CSV with only the path columns reads as an
// unlabelled dataset (all labels 0, labeled false), single or dual energy.
TEST_F(XrayDataTest, XrayLabelsCsvWithoutALabelColumnIsImagesToScore) {
  WriteImage("a.png", Ramp16(8, 8, 100));
  WriteImage("h.png", Ramp16(8, 8, 300));
  WriteImage("l.png", Ramp16(8, 8, 200));
  WriteAll(Path("single.csv"), "path\na.png\nh.png\n");
  absl::StatusOr<XrayDataset> single = LoadXrayLabelsCsv(Path("single.csv"), Config(8, 1));
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_FALSE(single->labeled);
  EXPECT_EQ(single->labels, (std::vector<int32_t>{0, 0}));
  EXPECT_FALSE(single->boxes[0].has_value());
  WriteAll(Path("pairs.csv"), "path_high,path_low\nh.png,l.png\n");
  absl::StatusOr<XrayDataset> pairs = LoadXrayLabelsCsv(Path("pairs.csv"), Config(8, 2));
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_FALSE(pairs->labeled);
  EXPECT_EQ(pairs->item(0)[64], 200);
  // A labelled file says so.
  WriteAll(Path("labelled.csv"), "path,label\na.png,knife\n");
  absl::StatusOr<XrayDataset> labelled = LoadXrayLabelsCsv(Path("labelled.csv"), Config(8, 1));
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  EXPECT_TRUE(labelled->labeled);
}

// Error paths of the labels CSV: each names the CSV, the line and the reason.

class XrayLabelsCsvErrors : public XrayDataTest {
 protected:
  void SetUp() override {
    XrayDataTest::SetUp();
    WriteImage("a.png", Ramp16(20, 10));
    WriteImage("b.png", Ramp16(20, 12));
  }
  absl::Status Load(const std::string& text, uint32_t channels = 1) {
    WriteAll(Path("l.csv"), text);
    return LoadXrayLabelsCsv(Path("l.csv"), Config(8, channels)).status();
  }
};

TEST_F(XrayLabelsCsvErrors, BadHeader) {
  const absl::Status s = Load("file,class\na.png,clear\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("l.csv:1: header must be \"path,label\""),
                                 HasSubstr("found \"file,class\"")));
  EXPECT_THAT(Load("path,label,x_min\na.png,clear,1\n").message(), HasSubstr("l.csv:1: header"));
}

TEST_F(XrayLabelsCsvErrors, HeaderDoesNotMatchInputChannels) {
  EXPECT_THAT(Load("path_high,path_low,label\na.png,a.png,clear\n").message(),
              HasSubstr("l.csv:1: dual-energy header (path_high,path_low) but "
                        "xray_model.input_channels is 1"));
  EXPECT_THAT(Load("path,label\na.png,clear\n", 2).message(),
              HasSubstr("l.csv:1: single-energy header (path) but xray_model.input_channels is 2"));
}

TEST_F(XrayLabelsCsvErrors, WrongColumnCount) {
  EXPECT_THAT(
      Load("path,label,x_min,y_min,x_max,y_max\na.png,clear,,,,\na.png,knife,1,2,3\n").message(),
      HasSubstr("l.csv:3: expected 6 fields, found 5"));
}

TEST_F(XrayLabelsCsvErrors, UnknownLabel) {
  EXPECT_THAT(Load("path,label\na.png,clear\n\na.png,gun\n").message(),
              HasSubstr("l.csv:4: label \"gun\" is not a class (clear, firearm, knife, drugs)"));
}

TEST_F(XrayLabelsCsvErrors, UnparsableNegativeOrPartialBox) {
  const std::string header = "path,label,x_min,y_min,x_max,y_max\n";
  EXPECT_THAT(Load(header + "a.png,knife,1,1O,5,5\n").message(),
              HasSubstr("l.csv:2: y_min: \"1O\" is not a number"));
  EXPECT_THAT(Load(header + "a.png,knife,1,1,nan,5\n").message(),
              HasSubstr("l.csv:2: x_max: \"nan\" is not a number"));
  EXPECT_THAT(Load(header + "a.png,knife,-1,1,5,5\n").message(),
              HasSubstr("l.csv:2: x_min: -1 is negative"));
  EXPECT_THAT(Load(header + "a.png,knife,1,1,,5\n").message(),
              HasSubstr("l.csv:2: box: give all four coordinates"));
  EXPECT_THAT(Load(header + "a.png,knife,5,1,5,5\n").message(),
              HasSubstr("l.csv:2: box (5, 1, 5, 5) is empty"));
}

TEST_F(XrayLabelsCsvErrors, BoxOutsideTheImage) {
  // a.png is 20 wide and 10 high.
  EXPECT_THAT(Load("path,label,x_min,y_min,x_max,y_max\na.png,knife,1,1,20,10\n"
                   "a.png,knife,1,1,5,11\n")
                  .message(),
              AllOf(HasSubstr("l.csv:3: box (1, 1, 5, 11) is outside the 20x10 image"),
                    HasSubstr("a.png")));
}

TEST_F(XrayLabelsCsvErrors, MissingOrBadImage) {
  const absl::Status missing = Load("path,label\na.png,clear\nmissing.png,clear\n");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), AllOf(HasSubstr("l.csv:3: "), HasSubstr("missing.png")));
  WriteAll(Path("bad.png"), "text");
  EXPECT_THAT(Load("path,label\nbad.png,clear\n").message(),
              AllOf(HasSubstr("l.csv:2: "), HasSubstr("bad.png: not a PNG")));
  EXPECT_THAT(Load("path,label\n,clear\n").message(), HasSubstr("l.csv:2: empty image path"));
}

TEST_F(XrayLabelsCsvErrors, DualEnergyPairOfDifferentSizes) {
  EXPECT_THAT(Load("path_high,path_low,label\na.png,b.png,clear\n", 2).message(),
              AllOf(HasSubstr("l.csv:2: "),
                    HasSubstr("dual-energy images differ in size (20x10 and 20x12)")));
}

TEST_F(XrayLabelsCsvErrors, EmptyFileHeaderOnlyAndQuotes) {
  EXPECT_THAT(Load("").message(), HasSubstr("l.csv: empty file"));
  EXPECT_THAT(Load("path,label\n\n").message(), HasSubstr("l.csv: no data rows"));
  EXPECT_THAT(Load("path,label\n\"a.png,clear\n").message(),
              HasSubstr("l.csv:2: field 1: unterminated quote"));
  EXPECT_EQ(LoadXrayLabelsCsv(Path("absent.csv"), Config(8)).status().code(),
            absl::StatusCode::kNotFound);
  v1::XrayModelConfig bad = Config(8);
  bad.set_image_size(3);
  EXPECT_THAT(LoadXrayLabelsCsv(Path("l.csv"), bad).status().message(),
              HasSubstr("xray_model.image_size"));
}

TEST_F(XrayLabelsCsvErrors, OverlongLineIsRefusedBeforeSplitting) {
  // 100 KiB of commas would be split into 100 Ki fields.
  const absl::Status s = Load("path,label\n" + std::string(100 * 1024, ',') + "\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()), Path("l.csv") + ":2: line longer than 65536 bytes");
  EXPECT_EQ(std::string(Load(std::string(70000, 'x') + "\na.png,clear\n").message()),
            Path("l.csv") + ":1: line longer than 65536 bytes");
  // A line of exactly 65536 bytes (CR aside) is split as usual.
  EXPECT_THAT(Load("path,label\n" + std::string(65536, ',') + "\r\n").message(),
              HasSubstr("l.csv:2: expected 2 fields, found 65537"));
}

TEST_F(XrayLabelsCsvErrors, FileOver256MibIsRefusedBeforeReading) {
  // 300 MiB, sparse (no disk): NUL bytes after a good row.
  WriteAll(Path("l.csv"), "path,label\na.png,clear\n");
  std::error_code ec;
  fs::resize_file(Path("l.csv"), std::uintmax_t{300} << 20, ec);
  ASSERT_FALSE(ec) << ec.message();
  const int64_t peak_before = PeakRssBytes();
  const absl::Status s = LoadXrayLabelsCsv(Path("l.csv"), Config(8)).status();
  const int64_t grown = PeakRssBytes() - peak_before;
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()),
            Path("l.csv") +
                ": 314572800 bytes, larger than the labels CSV limit of 268435456 bytes (256 MiB)");
  EXPECT_LT(grown, 128 * kMiB);
}

// ---------------------------------------------------------------------------
// XraySynth

class XraySynthTest : public XrayDataTest {
 protected:
  XraySynthOptions Options(const std::string& sub, uint64_t images, uint64_t seed) const {
    XraySynthOptions o;
    o.admins = {"EE", "FI", "LV"};
    o.images = images;
    o.seed = seed;
    o.out_dir = Path(sub);
    return o;
  }

  // Relative path -> SHA-256 of every file under `root`.
  static std::map<std::string, std::string> Hashes(const std::string& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      out[fs::relative(e.path(), root).string()] = crypto::Sha256Hex(ReadAll(e.path().string()));
    }
    return out;
  }

  static XrayDataset Load(const std::string& csv, uint32_t channels = 1) {
    absl::StatusOr<XrayDataset> d = LoadXrayLabelsCsv(csv, Config(64, channels));
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : XrayDataset();
  }
};

TEST_F(XraySynthTest, XraySynthRoundTripsThroughTheLabelsCsv) {
  ASSERT_TRUE(SynthesizeXrays(Options("s", 200, 3)).ok());
  for (const char* admin : {"EE", "FI", "LV"}) {
    const XrayDataset d = Load(Path("s/") + admin + "/labels.csv");
    ASSERT_EQ(d.size(), 200u) << admin;
    EXPECT_EQ(d.channels, 1);
    EXPECT_EQ(d.pixels.size(), 200u * 64 * 64);
    size_t positives = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      ASSERT_GE(d.labels[i], 0);
      ASSERT_LT(d.labels[i], 4);
      // Threats, and only threats, have a box, inside the image.
      ASSERT_EQ(d.boxes[i].has_value(), d.labels[i] != 0) << admin << " " << i;
      if (!d.boxes[i]) continue;
      ++positives;
      const Box& b = *d.boxes[i];
      EXPECT_GE(b.x_min, 0);
      EXPECT_GE(b.y_min, 0);
      EXPECT_LE(b.x_max, 64);
      EXPECT_LE(b.y_max, 64);
      EXPECT_LT(b.x_min, b.x_max);
      EXPECT_LT(b.y_min, b.y_max);
      EXPECT_GE((b.x_max - b.x_min) * (b.y_max - b.y_min), 12) << "threat too small to see";
    }
    // Rare positives: the drawn rate is in [5 %, 15 %].
    EXPECT_GE(positives, 10u) << admin;
    EXPECT_LE(positives, 30u) << admin;
    // Real 16-bit data: many levels, most of the range, not 8-bit values x 257.
    const auto [lo, hi] = std::minmax_element(d.pixels.begin(), d.pixels.end());
    EXPECT_LT(*lo, 5000) << admin;
    EXPECT_GT(*hi, 40000) << admin;
    std::set<uint16_t> levels(d.pixels.begin(), d.pixels.end());
    EXPECT_GT(levels.size(), 5000u) << admin;
    EXPECT_GT(std::count_if(d.pixels.begin(), d.pixels.end(), [](uint16_t v) { return v % 257; }),
              static_cast<long>(d.pixels.size() / 2));
  }
}

TEST_F(XraySynthTest, XraySynthSameSeedGivesIdenticalBytes) {
  XraySynthOptions a = Options("a", 60, 11), b = Options("b", 60, 11);
  a.dual_energy = b.dual_energy = true;
  ASSERT_TRUE(SynthesizeXrays(a).ok());
  ASSERT_TRUE(SynthesizeXrays(b).ok());
  const auto ha = Hashes(Path("a"));
  EXPECT_EQ(ha.size(), 3u * (1 + 2 * 60));
  EXPECT_EQ(ha, Hashes(Path("b")));
}

TEST_F(XraySynthTest, XraySynthDifferentSeedsGiveDifferentImages) {
  ASSERT_TRUE(SynthesizeXrays(Options("a", 20, 11)).ok());
  ASSERT_TRUE(SynthesizeXrays(Options("b", 20, 12)).ok());
  const auto ha = Hashes(Path("a")), hb = Hashes(Path("b"));
  ASSERT_EQ(ha.size(), hb.size());
  for (const auto& [name, hash] : ha) {
    if (name.ends_with(".png")) {
      EXPECT_NE(hash, hb.at(name)) << name;
    }
  }
}

TEST_F(XraySynthTest, XraySynthAdministrationsHaveDifferentClassMixes) {
  XraySynthOptions o = Options("mix", 400, 5);
  o.positive_rate = 0.25;
  ASSERT_TRUE(SynthesizeXrays(o).ok());
  std::set<int> dominant;
  for (const char* admin : {"EE", "FI", "LV"}) {
    const std::string csv = ReadAll(Path("mix/") + admin + "/labels.csv");
    std::array<int, 4> counts{};
    std::istringstream lines(csv);
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      for (int c = 0; c < 4; ++c) {
        if (line.find(std::string(",") + kSynthXrayClasses[c] + ",") != std::string::npos) {
          ++counts[c];
        }
      }
    }
    EXPECT_EQ(counts[1] + counts[2] + counts[3], 100) << admin << ": exact positive count";
    const int top =
        static_cast<int>(std::max_element(counts.begin() + 1, counts.end()) - counts.begin());
    EXPECT_GE(counts[top], 55) << admin;
    dominant.insert(top);
  }
  EXPECT_EQ(dominant.size(), 3u) << "each administration has its own dominant threat";
}

// Mean of the pixels of plane `plane` of item `i` inside [x0, x1) x [y0, y1).
double MeanIn(const XrayDataset& d, size_t i, int plane, int x0, int y0, int x1, int y1) {
  const uint16_t* p = d.item(i) + static_cast<size_t>(plane) * d.height * d.width;
  double sum = 0;
  int n = 0;
  for (int y = std::max(0, y0); y < std::min(d.height, y1); ++y) {
    for (int x = std::max(0, x0); x < std::min(d.width, x1); ++x) {
      sum += p[y * d.width + x];
      ++n;
    }
  }
  return n ? sum / n : 0;
}

TEST_F(XraySynthTest, XraySynthThreatsAreDarkerThanTheirSurroundings) {
  XraySynthOptions o = Options("dark", 300, 9);
  o.positive_rate = 0.3;
  ASSERT_TRUE(SynthesizeXrays(o).ok());
  for (const char* admin : {"EE", "FI", "LV"}) {
    const XrayDataset d = Load(Path("dark/") + admin + "/labels.csv");
    double inside = 0, around = 0;
    int darker = 0, threats = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      if (!d.boxes[i]) continue;
      const Box& b = *d.boxes[i];
      const int x0 = static_cast<int>(b.x_min), y0 = static_cast<int>(b.y_min);
      const int x1 = static_cast<int>(b.x_max), y1 = static_cast<int>(b.y_max);
      const double in = MeanIn(d, i, 0, x0, y0, x1, y1);
      // The frame 4 pixels wide around the box, from the sums of two rectangles.
      const int m = 4;
      const double outer_area = (std::min(64, x1 + m) - std::max(0, x0 - m)) *
                                (std::min(64, y1 + m) - std::max(0, y0 - m));
      const double inner_area = (x1 - x0) * (y1 - y0);
      if (outer_area - inner_area < 1) continue;
      const double frame =
          (MeanIn(d, i, 0, x0 - m, y0 - m, x1 + m, y1 + m) * outer_area - in * inner_area) /
          (outer_area - inner_area);
      inside += in;
      around += frame;
      darker += in < frame;
      ++threats;
    }
    ASSERT_GT(threats, 50) << admin;
    // Knives are thin, so the box mean drops less for them than for bricks.
    EXPECT_LT(inside / threats, 0.92 * around / threats) << admin;
    EXPECT_GT(darker, threats * 3 / 4) << admin;
  }
}

TEST_F(XraySynthTest, XraySynthDualEnergySeparatesMetalFromOrganic) {
  XraySynthOptions o = Options("dual", 300, 4);
  o.admins = {"EE"};
  o.dual_energy = true;
  o.positive_rate = 0.5;
  ASSERT_TRUE(SynthesizeXrays(o).ok());
  const XrayDataset d = Load(Path("dual/EE/labels.csv"), 2);
  ASSERT_EQ(d.size(), 300u);
  EXPECT_EQ(d.channels, 2);
  // Inside a threat's box, the threat is what separates the darkest pixels
  // from the brightest: the low/high ratio of that attenuation difference
  // says its material (organic drugs ~1.2, steel ~2.2).
  std::map<int, std::vector<double>> ratios;
  for (size_t i = 0; i < d.size(); ++i) {
    if (!d.boxes[i]) continue;
    const Box& b = *d.boxes[i];
    std::vector<std::pair<uint16_t, uint16_t>> px;  // (high, low)
    for (int y = static_cast<int>(b.y_min); y < static_cast<int>(b.y_max); ++y) {
      for (int x = static_cast<int>(b.x_min); x < static_cast<int>(b.x_max); ++x) {
        px.emplace_back(d.item(i)[y * 64 + x], d.item(i)[64 * 64 + y * 64 + x]);
      }
    }
    std::sort(px.begin(), px.end());
    const size_t k = std::max<size_t>(1, px.size() / 10);
    double dark_h = 0, dark_l = 0, bright_h = 0, bright_l = 0;
    for (size_t j = 0; j < k; ++j) {
      dark_h += px[j].first, dark_l += px[j].second;
      bright_h += px[px.size() - 1 - j].first, bright_l += px[px.size() - 1 - j].second;
    }
    const double mu_h = std::log(bright_h / dark_h), mu_l = std::log(bright_l / dark_l);
    if (mu_h > 0.05) ratios[d.labels[i]].push_back(mu_l / mu_h);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  };
  ASSERT_GE(ratios[1].size() + ratios[2].size(), 20u);
  ASSERT_GE(ratios[3].size(), 10u);
  std::vector<double> metal = ratios[1];
  metal.insert(metal.end(), ratios[2].begin(), ratios[2].end());
  EXPECT_GT(mean(metal), mean(ratios[3]) + 0.3)
      << "metal " << mean(metal) << ", drugs " << mean(ratios[3]);
}

TEST_F(XraySynthTest, XraySynthBadOptions) {
  XraySynthOptions o = Options("bad", 10, 1);
  o.admins = {"EE", "ee"};
  EXPECT_THAT(SynthesizeXrays(o).message(), HasSubstr("admins: \"ee\" is not 2 or 3 upper-case"));
  o.admins = {"EE", "EE"};
  EXPECT_THAT(SynthesizeXrays(o).message(), HasSubstr("admins: \"EE\" twice"));
  o = Options("bad", 0, 1);
  EXPECT_THAT(SynthesizeXrays(o).message(), HasSubstr("images must be in 1..1000000, found 0"));
  o = Options("bad", 10, 1);
  o.size = 4;
  EXPECT_THAT(SynthesizeXrays(o).message(), HasSubstr("size must be in 8..512, found 4"));
  o = Options("bad", 10, 1);
  o.positive_rate = 1.5;
  EXPECT_THAT(SynthesizeXrays(o).message(), HasSubstr("positive_rate must be in [0, 1]"));
  EXPECT_FALSE(fs::exists(Path("bad")));
}

// ---------------------------------------------------------------------------
// IdxReader

std::string BigEndian(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string IdxImages(uint32_t n, uint32_t h, uint32_t w, uint32_t magic = 0x803) {
  std::string s = BigEndian(magic) + BigEndian(n) + BigEndian(h) + BigEndian(w);
  for (uint32_t i = 0; i < n * h * w; ++i) s.push_back(static_cast<char>((i * 7) % 256));
  return s;
}

std::string IdxLabels(const std::vector<uint8_t>& labels, uint32_t magic = 0x801) {
  std::string s = BigEndian(magic) + BigEndian(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) s.push_back(static_cast<char>(l));
  return s;
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

TEST_F(XrayDataTest, IdxRoundTripsRawAndGzipped) {
  WriteAll(Path("img.idx"), IdxImages(3, 8, 8));
  WriteAll(Path("lab.idx"), IdxLabels({0, 3, 1}));
  WriteGzip(Path("img.idx.gz"), IdxImages(3, 8, 8));
  WriteGzip(Path("lab.idx.gz"), IdxLabels({0, 3, 1}));
  for (const char* suffix : {"", ".gz"}) {
    absl::StatusOr<XrayDataset> d =
        LoadIdxDataset(Path("img.idx") + suffix, Path("lab.idx") + suffix, Config(8));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->size(), 3u);
    EXPECT_EQ(d->channels, 1);
    EXPECT_THAT(d->labels, ::testing::ElementsAre(0, 3, 1));
    EXPECT_FALSE(d->boxes[1].has_value());
    EXPECT_EQ(d->sources[2], Path("img.idx") + suffix + "#2");
    for (size_t i = 0; i < d->pixels.size(); ++i) {
      ASSERT_EQ(d->pixels[i], ((i * 7) % 256) * 257) << i;
    }
  }
}

TEST_F(XrayDataTest, IdxResizesToTheImageSize) {
  WriteAll(Path("img.idx"), IdxImages(2, 4, 4));
  WriteAll(Path("lab.idx"), IdxLabels({1, 2}));
  absl::StatusOr<XrayDataset> d = LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->height, 8);
  EXPECT_EQ(d->width, 8);
  EXPECT_EQ(d->pixels.size(), 2u * 64);
}

// Error paths of the IDX reader.

TEST_F(XrayDataTest, IdxBadMagic) {
  WriteAll(Path("img.idx"), IdxImages(2, 4, 4, 0x0803 + 0x100));
  WriteAll(Path("lab.idx"), IdxLabels({1, 2}));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              AllOf(HasSubstr("img.idx: bad magic number 0x00000903; expected 0x00000803")));
  WriteAll(Path("img.idx"), IdxImages(2, 4, 4));
  WriteAll(Path("lab.idx"), IdxLabels({1, 2}, 0x803));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("lab.idx: bad magic number 0x00000803; expected 0x00000801"));
}

TEST_F(XrayDataTest, IdxCountMismatch) {
  WriteAll(Path("img.idx"), IdxImages(2, 4, 4));
  WriteAll(Path("lab.idx"), IdxLabels({1, 2, 0}));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              AllOf(HasSubstr("img.idx has 2 images but"), HasSubstr("lab.idx has 3 labels")));
}

TEST_F(XrayDataTest, IdxTruncatedOrTooLong) {
  const std::string images = IdxImages(2, 4, 4);
  WriteAll(Path("lab.idx"), IdxLabels({1, 2}));
  WriteAll(Path("img.idx"), images.substr(0, images.size() - 5));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("img.idx: truncated: the header says 32 bytes of data, the file has 27"));
  WriteAll(Path("img.idx"), images.substr(0, 10));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("img.idx: truncated: 10 bytes, shorter than the 16-byte IDX header"));
  WriteAll(Path("img.idx"), images + "xx");
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("img.idx: too long"));
  // A gzip stream cut short.
  WriteGzip(Path("img.gz"), IdxImages(20, 16, 16));
  const std::string gz = ReadAll(Path("img.gz"));
  WriteAll(Path("img.gz"), gz.substr(0, gz.size() / 2));
  WriteAll(Path("lab.idx"), IdxLabels(std::vector<uint8_t>(20, 0)));
  EXPECT_THAT(LoadIdxDataset(Path("img.gz"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("img.gz: corrupt or truncated gzip stream"));
}

TEST_F(XrayDataTest, IdxLabelOutOfRange) {
  WriteAll(Path("img.idx"), IdxImages(3, 4, 4));
  WriteAll(Path("lab.idx"), IdxLabels({1, 2, 4}));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8)).status().message(),
              HasSubstr("lab.idx: item 2: label 4 is >= the 4 classes of xray_model.classes"));
}

TEST_F(XrayDataTest, IdxMissingFileOrDualEnergy) {
  WriteAll(Path("lab.idx"), IdxLabels({1}));
  const absl::Status missing =
      LoadIdxDataset(Path("none.idx"), Path("lab.idx"), Config(8)).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("none.idx: cannot open"));
  WriteAll(Path("img.idx"), IdxImages(1, 4, 4));
  EXPECT_THAT(LoadIdxDataset(Path("img.idx"), Path("lab.idx"), Config(8, 2)).status().message(),
              HasSubstr("IDX images have one channel, but xray_model.input_channels is 2"));
}

// Debian's dataset-fashion-mnist (see .ci/install-deps.sh) ships gzipped IDX
// files; skipped only where the package is not installed.
TEST(IdxFashionMnist, LoadsTheDebianTestSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const std::string images = dir + "t10k-images-idx3-ubyte.gz";
  const std::string labels = dir + "t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(images) || !fs::exists(labels)) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (" << images << ")";
  }
  v1::XrayModelConfig c;
  c.set_image_size(28);
  for (const char* name : {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                           "Sneaker", "Bag", "Ankle boot"}) {
    c.add_classes(name);
  }
  absl::StatusOr<XrayDataset> d = LoadIdxDataset(images, labels, WithXrayDefaults(c));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 10000u);
  EXPECT_EQ(d->height, 28);
  std::array<int, 10> counts{};
  for (int32_t l : d->labels) ++counts[l];
  for (int n : counts) EXPECT_EQ(n, 1000);
  EXPECT_EQ(*std::max_element(d->pixels.begin(), d->pixels.end()), 65535);
}

}  // namespace
}  // namespace fedcustoms::xray
