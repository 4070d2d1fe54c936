#include "analyst/fusion/indicator_fusion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fedcustoms::fusion {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kTol = 1e-12;

IndicatorInput Indicator(std::string name, std::map<std::string, double> probability,
                         std::map<std::string, double> trust) {
  return {std::move(name), std::move(probability), std::move(trust)};
}

FusionResult MustFuse(const FusionInput& input) {
  absl::StatusOr<FusionResult> r = Fuse(input);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : FusionResult{};
}

// Categories listed tobacco first so that the ranking (narcotics first) is not
// the input order.
FusionInput TwoCategoriesThreeIndicators() {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"tobacco", "narcotics"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0.5}, {"tobacco", 0.2}},
                {{"narcotics", 8}, {"tobacco", 5}}),
      Indicator("detection_dog", {{"narcotics", 0.75}}, {{"narcotics", 4}}),
      Indicator("xray_scanner", {{"narcotics", 0.1}, {"tobacco", 0.6}},
                {{"narcotics", 10}, {"tobacco", 5}}),
  };
  return in;
}

TEST(IndicatorFusion, TwoCategoriesThreeIndicatorsByHand) {
  const FusionResult r = MustFuse(TwoCategoriesThreeIndicators());
  ASSERT_EQ(r.categories.size(), 2u);
  const CategoryResult& tobacco = r.categories[0];
  const CategoryResult& narcotics = r.categories[1];
  EXPECT_EQ(narcotics.name, "narcotics");
  // w*I: risk_model 0.8 * 0.5 = 0.4, detection_dog 0.4 * 0.75 = 0.3,
  // xray_scanner 1.0 * 0.1 = 0.1; 1 - 0.6 * 0.7 * 0.9 = 1 - 0.378 = 0.622.
  EXPECT_NEAR(narcotics.indicator, 0.622, kTol);
  // w*I: risk_model 0.5 * 0.2 = 0.1, xray_scanner 0.5 * 0.6 = 0.3;
  // 1 - 0.9 * 0.7 = 1 - 0.63 = 0.37.
  EXPECT_NEAR(tobacco.indicator, 0.37, kTol);
  // 1 - (1 - 0.622) * (1 - 0.37) = 1 - 0.378 * 0.63 = 1 - 0.23814 = 0.76186.
  EXPECT_NEAR(r.global_indicator, 0.76186, kTol);
  EXPECT_TRUE(r.recommend_inspection);  // 0.76186 >= 0.5
  // Evidence: narcotics 0.4 + 0.3 + 0.1 = 0.8, tobacco 0.1 + 0.3 = 0.4;
  // split 0.8 / 1.2 = 2/3 and 0.4 / 1.2 = 1/3.
  EXPECT_TRUE(r.has_evidence);
  EXPECT_NEAR(narcotics.evidence, 0.8, kTol);
  EXPECT_NEAR(tobacco.evidence, 0.4, kTol);
  EXPECT_NEAR(narcotics.share, 2.0 / 3.0, kTol);
  EXPECT_NEAR(tobacco.share, 1.0 / 3.0, kTol);
  EXPECT_NEAR(narcotics.share + tobacco.share, 1.0, kTol);
  // 0.622 > 0.37: narcotics (index 1) first.
  EXPECT_THAT(r.category_ranking, ElementsAre(1, 0));

  // Covered pairs by indicator, then in category-list order (tobacco first).
  ASSERT_EQ(r.contributions.size(), 5u);
  EXPECT_EQ(r.contributions[0].indicator, "risk_model");
  EXPECT_EQ(r.contributions[0].category, "tobacco");
  EXPECT_EQ(r.contributions[1].category, "narcotics");
  EXPECT_EQ(r.contributions[1].category_index, 1u);
  EXPECT_EQ(r.contributions[1].trust, 8);
  EXPECT_NEAR(r.contributions[1].weight, 0.8, kTol);        // 8 / 10
  EXPECT_NEAR(r.contributions[1].contribution, 0.4, kTol);  // 0.8 * 0.5
  EXPECT_EQ(r.contributions[2].indicator, "detection_dog");
  EXPECT_EQ(r.contributions[2].indicator_index, 1u);
  EXPECT_NEAR(r.contributions[2].contribution, 0.3, kTol);  // 0.4 * 0.75
  EXPECT_EQ(r.contributions[3].indicator, "xray_scanner");
  EXPECT_EQ(r.contributions[3].category, "tobacco");
  EXPECT_NEAR(r.contributions[3].contribution, 0.3, kTol);  // 0.5 * 0.6
  EXPECT_NEAR(r.contributions[4].contribution, 0.1, kTol);  // 1.0 * 0.1

  ASSERT_EQ(r.leave_one_out.size(), 3u);
  // Without risk_model: narcotics 1 - 0.7 * 0.9 = 0.37, tobacco 0.3;
  // I_G = 1 - 0.63 * 0.7 = 0.559; effect 0.76186 - 0.559 = 0.20286.
  EXPECT_NEAR(r.leave_one_out[0].global_without, 0.559, kTol);
  EXPECT_NEAR(r.leave_one_out[0].effect, 0.20286, kTol);
  // Without detection_dog: narcotics 1 - 0.6 * 0.9 = 0.46, tobacco 0.37;
  // I_G = 1 - 0.54 * 0.63 = 0.6598; effect 0.10206.
  EXPECT_NEAR(r.leave_one_out[1].global_without, 0.6598, kTol);
  EXPECT_NEAR(r.leave_one_out[1].effect, 0.10206, kTol);
  // Without xray_scanner: narcotics 1 - 0.6 * 0.7 = 0.58, tobacco 0.1;
  // I_G = 1 - 0.42 * 0.9 = 0.622; effect 0.13986.
  EXPECT_NEAR(r.leave_one_out[2].global_without, 0.622, kTol);
  EXPECT_NEAR(r.leave_one_out[2].effect, 0.13986, kTol);
}

TEST(IndicatorFusion, AllProbabilitiesZeroIsNoEvidence) {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"narcotics", "tobacco"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0}, {"tobacco", 0}},
                {{"narcotics", 7}, {"tobacco", 7}}),
      Indicator("detection_dog", {{"narcotics", 0}}, {{"narcotics", 10}}),
  };
  const FusionResult r = MustFuse(in);
  // Every factor is 1 - w * 0 = 1: I_j = 1 - 1 = 0, I_G = 1 - 1 * 1 = 0.
  for (const CategoryResult& c : r.categories) {
    EXPECT_EQ(c.indicator, 0.0);
    EXPECT_EQ(c.evidence, 0.0);
    EXPECT_EQ(c.share, 0.0);  // The split is undefined: reported as 0, not NaN.
    EXPECT_FALSE(std::isnan(c.share));
  }
  EXPECT_EQ(r.global_indicator, 0.0);
  EXPECT_FALSE(r.has_evidence);
  EXPECT_FALSE(r.recommend_inspection);                                   // 0 < 0.5
  for (const LeaveOneOut& l : r.leave_one_out) EXPECT_EQ(l.effect, 0.0);  // 0 - 0

  in.threshold = 0;
  EXPECT_TRUE(MustFuse(in).recommend_inspection);  // 0 >= 0
}

TEST(IndicatorFusion, AllTrustZeroIsNoEvidence) {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"narcotics", "tobacco"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0.9}, {"tobacco", 1}},
                {{"narcotics", 0}, {"tobacco", 0}}),
      Indicator("detection_dog", {{"narcotics", 1}}, {{"narcotics", 0}}),
  };
  const FusionResult r = MustFuse(in);
  // w = 0 / 10 = 0, so w * I = 0 whatever I is: the same as no evidence.
  for (const CategoryResult& c : r.categories) {
    EXPECT_EQ(c.indicator, 0.0);
    EXPECT_EQ(c.share, 0.0);
  }
  for (const Contribution& c : r.contributions) EXPECT_EQ(c.contribution, 0.0);
  EXPECT_EQ(r.global_indicator, 0.0);
  EXPECT_FALSE(r.has_evidence);
  EXPECT_FALSE(r.recommend_inspection);
}

TEST(IndicatorFusion, CertainIndicatorWithFullTrustGivesExactlyOne) {
  FusionInput in;
  in.threshold = 1;  // The highest threshold there is.
  in.categories = {"narcotics", "tobacco", "currency"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0.3}, {"tobacco", 0.1}},
                {{"narcotics", 7}, {"tobacco", 3}}),
      Indicator("detection_dog", {{"currency", 1}}, {{"currency", 10}}),
  };
  const FusionResult r = MustFuse(in);
  // currency: 1 - (1 - 1 * 1) = 1 - 0 = 1 exactly.
  EXPECT_EQ(r.categories[2].indicator, 1.0);
  // I_G = 1 - (0.79 * 0.97 * 0) = 1 exactly.
  EXPECT_EQ(r.global_indicator, 1.0);
  EXPECT_TRUE(r.recommend_inspection);  // 1 >= 1
  // The other categories keep their own values: narcotics 0.7 * 0.3 = 0.21.
  EXPECT_NEAR(r.categories[0].indicator, 0.21, kTol);
  // Without the dog: 1 - 0.79 * 0.97 = 0.2337; effect 1 - 0.2337 = 0.7663.
  EXPECT_NEAR(r.leave_one_out[1].effect, 0.7663, kTol);
}

TEST(IndicatorFusion, CertainIndicatorWithHalfTrustContributesExactlyHalf) {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"gold"};
  in.indicators = {Indicator("xray_scanner", {{"gold", 1}}, {{"gold", 5}})};
  const FusionResult r = MustFuse(in);
  ASSERT_EQ(r.contributions.size(), 1u);
  EXPECT_EQ(r.contributions[0].weight, 0.5);        // 5 / 10, exact in binary
  EXPECT_EQ(r.contributions[0].contribution, 0.5);  // 0.5 * 1
  EXPECT_EQ(r.categories[0].indicator, 0.5);        // 1 - (1 - 0.5)
  EXPECT_EQ(r.global_indicator, 0.5);               // 1 - (1 - 0.5)
  EXPECT_TRUE(r.recommend_inspection);              // 0.5 >= 0.5
}

TEST(IndicatorFusion, GlobalEqualToThresholdRecommends) {
  FusionInput in;
  in.categories = {"narcotics", "currency"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0.5}, {"currency", 0.5}},
                {{"narcotics", 10}, {"currency", 10}}),
  };
  // Each I_j = 1 - (1 - 0.5) = 0.5; I_G = 1 - 0.5 * 0.5 = 0.75, all exact.
  in.threshold = 0.75;
  const FusionResult at = MustFuse(in);
  EXPECT_EQ(at.global_indicator, 0.75);
  EXPECT_TRUE(at.recommend_inspection);  // 0.75 >= 0.75
  in.threshold = std::nextafter(0.75, 1.0);
  EXPECT_FALSE(MustFuse(in).recommend_inspection);  // 0.75 < 0.75 + 1 ulp
}

TEST(IndicatorFusion, SingleCategorySingleIndicator) {
  FusionInput in;
  in.threshold = 0.25;
  in.categories = {"polymers"};
  in.indicators = {Indicator("anomaly_model", {{"polymers", 0.3}}, {{"polymers", 7}})};
  const FusionResult r = MustFuse(in);
  EXPECT_NEAR(r.categories[0].indicator, 0.21, kTol);  // 0.7 * 0.3
  EXPECT_NEAR(r.global_indicator, 0.21, kTol);         // 1 - (1 - 0.21)
  EXPECT_FALSE(r.recommend_inspection);                // 0.21 < 0.25
  EXPECT_EQ(r.categories[0].share, 1.0);               // 0.21 / 0.21
  ASSERT_EQ(r.leave_one_out.size(), 1u);
  EXPECT_EQ(r.leave_one_out[0].global_without, 0.0);  // nothing left: 1 - 1
  EXPECT_EQ(r.leave_one_out[0].effect, r.global_indicator);
  EXPECT_THAT(r.drivers, ElementsAre(0));
}

TEST(IndicatorFusion, UncoveredCategoryGetsFactorOne) {
  FusionInput in;
  in.threshold = 0.9;
  in.categories = {"narcotics", "tobacco"};
  in.indicators = {
      Indicator("detection_dog", {{"narcotics", 0.5}}, {{"narcotics", 10}}),
      Indicator("xray_scanner", {{"tobacco", 0.25}}, {{"tobacco", 10}}),
      Indicator("external_intelligence", {{"narcotics", 0.5}}, {{"narcotics", 10}}),
  };
  const FusionResult r = MustFuse(in);
  // narcotics: the scanner is silent (factor 1): 1 - 0.5 * 1 * 0.5 = 0.75.
  EXPECT_EQ(r.categories[0].indicator, 0.75);
  // tobacco: dog and intelligence silent: 1 - 1 * 0.75 * 1 = 0.25.
  EXPECT_EQ(r.categories[1].indicator, 0.25);
  // 1 - 0.25 * 0.75 = 0.8125.
  EXPECT_EQ(r.global_indicator, 0.8125);
  EXPECT_FALSE(r.recommend_inspection);  // 0.8125 < 0.9
  // Only covered pairs are listed.
  ASSERT_EQ(r.contributions.size(), 3u);
  EXPECT_EQ(r.contributions[1].indicator, "xray_scanner");
  EXPECT_EQ(r.contributions[1].category, "tobacco");
  // Evidence 0.5 + 0.5 = 1 and 0.25: shares 1 / 1.25 = 0.8, 0.25 / 1.25 = 0.2.
  EXPECT_NEAR(r.categories[0].share, 0.8, kTol);
  EXPECT_NEAR(r.categories[1].share, 0.2, kTol);
}

// All values exact in binary, so the order and ties are checked exactly.
FusionInput DriversCase() {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"narcotics", "currency"};
  in.indicators = {
      Indicator("risk_model", {{"narcotics", 0.5}, {"currency", 0.25}},
                {{"narcotics", 10}, {"currency", 10}}),
      Indicator("detection_dog", {{"narcotics", 0.5}}, {{"narcotics", 5}}),
      Indicator("external_intelligence", {{"currency", 0.5}}, {{"currency", 10}}),
  };
  return in;
}

TEST(IndicatorFusion, DriversAndLeaveOneOutByHand) {
  const FusionResult r = MustFuse(DriversCase());
  // contributions: [0] risk/narcotics 1 * 0.5 = 0.5, [1] risk/currency
  // 1 * 0.25 = 0.25, [2] dog/narcotics 0.5 * 0.5 = 0.25, [3] intelligence/
  // currency 1 * 0.5 = 0.5. Descending, ties in that order: 0, 3, 1, 2.
  EXPECT_THAT(r.drivers, ElementsAre(0, 3, 1, 2));
  EXPECT_EQ(r.contributions[3].indicator, "external_intelligence");
  EXPECT_EQ(r.contributions[2].contribution, 0.25);
  // narcotics 1 - 0.5 * 0.75 = 0.625, currency 1 - 0.75 * 0.5 = 0.625: a tie,
  // kept in input order.
  EXPECT_EQ(r.categories[0].indicator, 0.625);
  EXPECT_EQ(r.categories[1].indicator, 0.625);
  EXPECT_THAT(r.category_ranking, ElementsAre(0, 1));
  // I_G = 1 - 0.375 * 0.375 = 1 - 0.140625 = 0.859375.
  EXPECT_EQ(r.global_indicator, 0.859375);
  ASSERT_EQ(r.leave_one_out.size(), 3u);
  // Without risk_model: narcotics 0.75, currency 0.5 left as products:
  // 1 - 0.75 * 0.5 = 0.625; effect 0.859375 - 0.625 = 0.234375.
  EXPECT_EQ(r.leave_one_out[0].indicator, "risk_model");
  EXPECT_EQ(r.leave_one_out[0].global_without, 0.625);
  EXPECT_EQ(r.leave_one_out[0].effect, 0.234375);
  // Without detection_dog: products 0.5 and 0.375: 1 - 0.1875 = 0.8125;
  // effect 0.046875.
  EXPECT_EQ(r.leave_one_out[1].global_without, 0.8125);
  EXPECT_EQ(r.leave_one_out[1].effect, 0.046875);
  // Without external_intelligence: products 0.375 and 0.75: 1 - 0.28125 =
  // 0.71875; effect 0.140625.
  EXPECT_EQ(r.leave_one_out[2].global_without, 0.71875);
  EXPECT_EQ(r.leave_one_out[2].effect, 0.140625);
}

TEST(IndicatorFusion, LeaveOneOutIsFusingWithoutTheIndicator) {
  const FusionInput in = TwoCategoriesThreeIndicators();
  const FusionResult r = MustFuse(in);
  for (size_t i = 0; i < in.indicators.size(); ++i) {
    FusionInput without = in;
    without.indicators.erase(without.indicators.begin() + static_cast<std::ptrdiff_t>(i));
    // Bit for bit, not just close.
    EXPECT_EQ(r.leave_one_out[i].global_without, MustFuse(without).global_indicator) << i;
    EXPECT_GE(r.leave_one_out[i].effect, 0.0);
  }
}

TEST(IndicatorFusion, NegativeZeroIsReportedAsZero) {
  FusionInput in;
  in.threshold = -0.0;
  in.categories = {"gold"};
  in.indicators = {Indicator("xray_scanner", {{"gold", -0.0}}, {{"gold", 6}})};
  const FusionResult r = MustFuse(in);
  EXPECT_FALSE(std::signbit(r.threshold));
  EXPECT_FALSE(std::signbit(r.contributions[0].probability));
  EXPECT_FALSE(std::signbit(r.contributions[0].contribution));
}

TEST(IndicatorFusion, ResultJsonHasStableFieldsMostImportantFirst) {
  const nlohmann::json j = FusionResultToJson(MustFuse(TwoCategoriesThreeIndicators()));
  EXPECT_NEAR(j.at("global_indicator").get<double>(), 0.76186, kTol);
  EXPECT_EQ(j.at("threshold").get<double>(), 0.5);
  EXPECT_TRUE(j.at("recommend_inspection").get<bool>());
  EXPECT_TRUE(j.at("has_evidence").get<bool>());
  ASSERT_EQ(j.at("categories").size(), 2u);
  const nlohmann::json& first = j.at("categories")[0];
  EXPECT_EQ(first.at("name"), "narcotics");  // 0.622 before 0.37
  EXPECT_NEAR(first.at("indicator").get<double>(), 0.622, kTol);
  EXPECT_NEAR(first.at("share").get<double>(), 2.0 / 3.0, kTol);
  EXPECT_NEAR(first.at("evidence").get<double>(), 0.8, kTol);
  ASSERT_EQ(j.at("drivers").size(), 5u);
  const nlohmann::json& top = j.at("drivers")[0];
  EXPECT_EQ(top.at("indicator"), "risk_model");  // 0.4, the largest w*I
  EXPECT_EQ(top.at("category"), "narcotics");
  EXPECT_EQ(top.at("probability").get<double>(), 0.5);
  EXPECT_EQ(top.at("trust").get<double>(), 8);
  EXPECT_NEAR(top.at("weight").get<double>(), 0.8, kTol);
  EXPECT_NEAR(top.at("contribution").get<double>(), 0.4, kTol);
  // Effects 0.20286 (risk_model), 0.10206 (detection_dog), 0.13986
  // (xray_scanner): sorted descending.
  ASSERT_EQ(j.at("leave_one_out").size(), 3u);
  EXPECT_EQ(j.at("leave_one_out")[0].at("indicator"), "risk_model");
  EXPECT_EQ(j.at("leave_one_out")[1].at("indicator"), "xray_scanner");
  EXPECT_EQ(j.at("leave_one_out")[2].at("indicator"), "detection_dog");
  EXPECT_NEAR(j.at("leave_one_out")[2].at("global_without").get<double>(), 0.6598, kTol);
  EXPECT_NEAR(j.at("leave_one_out")[2].at("effect").get<double>(), 0.10206, kTol);
}

TEST(IndicatorFusion, SummaryHasOneLinePerCategoryAndTheDecision) {
  const std::string summary = FusionSummary(MustFuse(TwoCategoriesThreeIndicators()));
  EXPECT_EQ(summary,
            "narcotics  I_j 0.6220  share  66.7 %  strongest risk_model (w*I 0.400)\n"
            "tobacco    I_j 0.3700  share  33.3 %  strongest xray_scanner (w*I 0.300)\n"
            "I_G 0.7619 >= I_S 0.5000: intrusive inspection recommended; hinges most on "
            "risk_model (without it I_G 0.5590)\n");
}

TEST(IndicatorFusion, SummarySaysWhenRemovingTheHingeFlipsTheDecision) {
  FusionInput in = DriversCase();
  in.threshold = 0.8;  // I_G 0.859375; without risk_model 0.625 < 0.8.
  EXPECT_THAT(FusionSummary(MustFuse(in)),
              HasSubstr("hinges most on risk_model (without it I_G 0.6250, and the "
                        "recommendation would flip)\n"));
}

TEST(IndicatorFusion, SummaryWithoutEvidence) {
  FusionInput in;
  in.threshold = 0.5;
  in.categories = {"gold"};
  in.indicators = {Indicator("xray_scanner", {{"gold", 0}}, {{"gold", 6}})};
  EXPECT_EQ(FusionSummary(MustFuse(in)),
            "gold  I_j 0.0000  share     -    no evidence\n"
            "I_G 0.0000 < I_S 0.5000: no intrusive inspection recommended; no indicator gives "
            "evidence for any category\n");
}

TEST(IndicatorFusion, SummaryPrintsEnoughDigitsToTellGlobalFromThreshold) {
  FusionInput in;
  in.categories = {"gold"};
  in.indicators = {Indicator("xray_scanner", {{"gold", 0.5}}, {{"gold", 10}})};
  in.threshold = 0.50001;  // I_G = 0.5 is below it, but both are 0.5000 at 4 digits.
  EXPECT_THAT(FusionSummary(MustFuse(in)), HasSubstr("I_G 0.50000 < I_S 0.50001: no intrusive"));
}

TEST(IndicatorFusion, ParsesTheHeaderExample) {
  absl::StatusOr<FusionInput> in = ParseFusionInput(R"({
    "threshold": 0.5,
    "categories": ["narcotics", "tobacco", "currency"],
    "indicators": [
      {"name": "risk_model", "probability": {"narcotics": 0.30, "tobacco": 0.05},
       "trust": {"narcotics": 8, "tobacco": 6}},
      {"name": "detection_dog", "probability": {"narcotics": 0.9}, "trust": {"narcotics": 7}}
    ]
  })",
                                                    "f.json");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->threshold, 0.5);
  EXPECT_THAT(in->categories, ElementsAre("narcotics", "tobacco", "currency"));
  ASSERT_EQ(in->indicators.size(), 2u);
  EXPECT_EQ(in->indicators[0].name, "risk_model");
  EXPECT_EQ(in->indicators[0].probability.at("tobacco"), 0.05);
  EXPECT_EQ(in->indicators[0].trust.at("narcotics"), 8);
  EXPECT_EQ(in->indicators[1].probability.at("narcotics"), 0.9);
  const FusionResult r = MustFuse(*in);
  // narcotics 1 - (1 - 0.24) * (1 - 0.63) = 1 - 0.76 * 0.37 = 0.7188;
  // tobacco 0.6 * 0.05 = 0.03; currency 0 (nobody covers it).
  EXPECT_NEAR(r.categories[0].indicator, 0.7188, kTol);
  EXPECT_NEAR(r.categories[1].indicator, 0.03, kTol);
  EXPECT_EQ(r.categories[2].indicator, 0.0);
  // 1 - 0.2812 * 0.97 * 1 = 1 - 0.272764 = 0.727236.
  EXPECT_NEAR(r.global_indicator, 0.727236, kTol);
}

// The file docs/analyst.md shows with `fedcustoms fuse`.
TEST(IndicatorFusion, ExampleFileFuses) {
  // The source tree's path, not __FILE__: ccache may compile with relative paths.
  const std::filesystem::path example =
      std::filesystem::path(FEDCUSTOMS_SOURCE_DIR) / "analyst" / "fusion" / "example_fusion.json";
  absl::StatusOr<FusionInput> in = LoadFusionInput(example.string());
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->categories, ElementsAre("narcotics", "tobacco", "currency", "gold", "polymers"));
  const FusionResult r = MustFuse(*in);
  EXPECT_TRUE(r.recommend_inspection);
  EXPECT_EQ(r.categories[r.category_ranking[0]].name, "narcotics");
  EXPECT_EQ(r.contributions[r.drivers[0]].indicator, "detection_dog");
}

// Tests of all the error paths follow.

nlohmann::json ValidDocument() {
  return nlohmann::json::parse(R"({
    "threshold": 0.5,
    "categories": ["narcotics", "tobacco", "currency"],
    "indicators": [
      {"name": "risk_model", "probability": {"narcotics": 0.3, "tobacco": 0.05},
       "trust": {"narcotics": 8, "tobacco": 6}},
      {"name": "detection_dog", "probability": {"narcotics": 0.9}, "trust": {"narcotics": 7}},
      {"name": "xray_scanner", "probability": {"tobacco": 0.4}, "trust": {"tobacco": 8}}
    ]
  })");
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<FusionInput> in = ParseFusionInput(text, "f.json");
  if (in.ok()) return "parsed";
  EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument) << in.status();
  return std::string(in.status().message());
}

TEST(IndicatorFusionErrors, ValidDocumentParses) {
  EXPECT_EQ(ParseError(ValidDocument().dump()), "parsed");
}

TEST(IndicatorFusionErrors, EachMistakeIsNamedByItsFieldPath) {
  using Json = nlohmann::json;
  struct Case {
    const char* name;
    std::function<void(Json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"probability above 1", [](Json& d) { d["indicators"][1]["probability"]["narcotics"] = 1.3; },
       "f.json: indicators[1].probability.narcotics: 1.3 is outside [0, 1]"},
      {"probability below 0", [](Json& d) { d["indicators"][0]["probability"]["tobacco"] = -0.1; },
       "f.json: indicators[0].probability.tobacco: -0.1 is outside [0, 1]"},
      {"probability just above 1",
       [](Json& d) { d["indicators"][0]["probability"]["tobacco"] = 1.0000001; },
       "f.json: indicators[0].probability.tobacco: 1.0000001 is outside [0, 1]"},
      {"trust above 10", [](Json& d) { d["indicators"][0]["trust"]["tobacco"] = 11; },
       "f.json: indicators[0].trust.tobacco: 11 is outside [0, 10]"},
      {"trust below 0", [](Json& d) { d["indicators"][2]["trust"]["tobacco"] = -1; },
       "f.json: indicators[2].trust.tobacco: -1 is outside [0, 10]"},
      {"unknown category",
       [](Json& d) {
         d["indicators"][2]["probability"]["opium"] = 0.2;
         d["indicators"][2]["trust"]["opium"] = 5;
       },
       "f.json: indicators[2].probability.opium: unknown category (categories are narcotics, "
       "tobacco, currency)"},
      {"unknown category in trust only", [](Json& d) { d["indicators"][2]["trust"]["opium"] = 5; },
       "f.json: indicators[2].trust.opium: unknown category (categories are narcotics, tobacco, "
       "currency)"},
      {"threshold missing", [](Json& d) { d.erase("threshold"); },
       "f.json: threshold: missing (a number in [0, 1])"},
      {"threshold above 1", [](Json& d) { d["threshold"] = 1.5; },
       "f.json: threshold: 1.5 is outside [0, 1]"},
      {"threshold below 0", [](Json& d) { d["threshold"] = -0.25; },
       "f.json: threshold: -0.25 is outside [0, 1]"},
      {"threshold a string", [](Json& d) { d["threshold"] = "0.5"; },
       "f.json: threshold: expected a number in [0, 1], found a string"},
      {"threshold a boolean", [](Json& d) { d["threshold"] = true; },
       "f.json: threshold: expected a number in [0, 1], found a boolean"},
      {"unknown top-level field",
       [](Json& d) {
         d["treshold"] = d["threshold"];
         d.erase("threshold");
       },
       "f.json: treshold: unknown field (the top level has threshold, categories, indicators)"},
      {"unknown indicator field",
       [](Json& d) {
         d["indicators"][0]["probabilty"] = d["indicators"][0]["probability"];
         d["indicators"][0].erase("probability");
       },
       "f.json: indicators[0].probabilty: unknown field (an indicator has name, probability, "
       "trust)"},
      {"categories missing", [](Json& d) { d.erase("categories"); },
       "f.json: categories: missing (a non-empty list of category names)"},
      {"categories not a list",
       [](Json& d) {
         d["categories"] = {{"narcotics", 1}};
       },
       "f.json: categories: expected a list of category names, found an object"},
      {"category not a string", [](Json& d) { d["categories"][1] = 7; },
       "f.json: categories[1]: expected a category name (a string), found a number"},
      {"categories empty", [](Json& d) { d["categories"] = Json::array(); },
       "f.json: categories: empty (name at least one category)"},
      {"category name empty", [](Json& d) { d["categories"].push_back(""); },
       "f.json: categories[3]: empty name"},
      {"category duplicated", [](Json& d) { d["categories"].push_back("tobacco"); },
       "f.json: categories[3]: duplicate category tobacco (also categories[1])"},
      {"too many categories",
       [](Json& d) {
         for (int k = 0; k < 1022; ++k) d["categories"].push_back("c" + std::to_string(k));
       },
       "f.json: categories: 1025 categories; at most 1024"},
      {"indicators missing", [](Json& d) { d.erase("indicators"); },
       "f.json: indicators: missing (a non-empty list of indicators)"},
      {"indicators not a list", [](Json& d) { d["indicators"] = "risk_model"; },
       "f.json: indicators: expected a list of indicators, found a string"},
      {"indicators empty", [](Json& d) { d["indicators"] = Json::array(); },
       "f.json: indicators: empty (give at least one indicator)"},
      {"indicator not an object", [](Json& d) { d["indicators"][1] = Json::array(); },
       "f.json: indicators[1]: expected an object with name, probability and trust, found a "
       "list"},
      {"too many indicators",
       [](Json& d) {
         for (int k = 0; k < 254; ++k) {
           Json extra = d["indicators"][0];
           extra["name"] = "camera_" + std::to_string(k);
           d["indicators"].push_back(extra);
         }
       },
       "f.json: indicators: 257 indicators; at most 256"},
      {"indicator name missing", [](Json& d) { d["indicators"][1].erase("name"); },
       "f.json: indicators[1].name: missing (a non-empty string)"},
      {"indicator name not a string", [](Json& d) { d["indicators"][1]["name"] = nullptr; },
       "f.json: indicators[1].name: expected a string, found null"},
      {"indicator name empty", [](Json& d) { d["indicators"][1]["name"] = ""; },
       "f.json: indicators[1].name: empty (every indicator needs a name)"},
      {"indicator name duplicated", [](Json& d) { d["indicators"][2]["name"] = "risk_model"; },
       "f.json: indicators[2].name: duplicate indicator risk_model (also indicators[0].name)"},
      {"probability missing", [](Json& d) { d["indicators"][0].erase("probability"); },
       "f.json: indicators[0].probability: missing (an object mapping category names to numbers "
       "in [0, 1])"},
      {"trust missing", [](Json& d) { d["indicators"][0].erase("trust"); },
       "f.json: indicators[0].trust: missing (an object mapping category names to numbers in "
       "[0, 10])"},
      {"probability not an object", [](Json& d) { d["indicators"][1]["probability"] = {0.9}; },
       "f.json: indicators[1].probability: expected an object mapping category names to numbers "
       "in [0, 1], found a list"},
      {"probability a string",
       [](Json& d) { d["indicators"][1]["probability"]["narcotics"] = "0.9"; },
       "f.json: indicators[1].probability.narcotics: expected a number in [0, 1], found a "
       "string"},
      {"trust null", [](Json& d) { d["indicators"][1]["trust"]["narcotics"] = nullptr; },
       "f.json: indicators[1].trust.narcotics: expected a number in [0, 10], found null"},
      {"probability without trust",
       [](Json& d) { d["indicators"][1]["probability"]["currency"] = 0.2; },
       "f.json: indicators[1].probability.currency: no trust score for this category (add "
       "indicators[1].trust.currency)"},
      {"trust without probability", [](Json& d) { d["indicators"][1]["trust"]["tobacco"] = 4; },
       "f.json: indicators[1].trust.tobacco: no probability for this category (add "
       "indicators[1].probability.tobacco)"},
      {"indicator covering nothing",
       [](Json& d) {
         d["indicators"][1]["probability"] = Json::object();
         d["indicators"][1]["trust"] = Json::object();
       },
       "f.json: indicators[1]: covers no category (probability and trust are both empty)"},
  };
  for (const Case& c : cases) {
    Json doc = ValidDocument();
    c.edit(doc);
    EXPECT_EQ(ParseError(doc.dump()), c.expected) << c.name;
  }
}

TEST(IndicatorFusionErrors, MalformedJsonGivesTheBytePosition) {
  // nlohmann counts bytes from 1 and points at the last one it read: the
  // document is 18 bytes long and ends with the object still open, so the
  // parser fails reading the end of input, byte 19.
  EXPECT_THAT(ParseError(R"({"threshold": 0.5,)"),
              StartsWith("f.json: malformed JSON at byte 19: line 1, column 19: syntax error "
                         "while parsing object key - unexpected end of input"));
  // A missing comma: the offending token "categories" takes bytes 20 to 31
  // (line 2, columns 2 to 13).
  EXPECT_THAT(ParseError("{\"threshold\": 0.5\n \"categories\": []}"),
              StartsWith("f.json: malformed JSON at byte 31: line 2, column 13: syntax error "
                         "while parsing object - unexpected string literal"));
  EXPECT_THAT(ParseError(""), StartsWith("f.json: malformed JSON at byte 1: "));
}

TEST(IndicatorFusionErrors, NumberBeyondDoubleIsMalformed) {
  EXPECT_EQ(ParseError(R"({"threshold": 1e400})"),
            "f.json: malformed JSON: number overflow parsing '1e400'");
}

TEST(IndicatorFusionErrors, LongUnterminatedStringIsClippedInTheMessage) {
  const std::string message = ParseError("{\"threshold\": \"" + std::string(100000, 'a'));
  EXPECT_THAT(message, StartsWith("f.json: malformed JSON at byte "));
  EXPECT_LT(message.size(), 400u);
}

TEST(IndicatorFusionErrors, TopLevelMustBeAnObject) {
  EXPECT_EQ(ParseError("[1, 2]"),
            "f.json: expected a JSON object (threshold, categories, indicators) at the top level, "
            "found a list");
  EXPECT_EQ(ParseError("0.5"),
            "f.json: expected a JSON object (threshold, categories, indicators) at the top level, "
            "found a number");
}

TEST(IndicatorFusionErrors, RepeatedKeyIsNamedByItsPath) {
  // nlohmann alone would keep the last value silently.
  EXPECT_EQ(ParseError(R"({"threshold": 0.5, "categories": ["narcotics"], "indicators": [
      {"name": "a", "probability": {"narcotics": 0.1}, "trust": {"narcotics": 5}},
      {"name": "b", "probability": {"narcotics": 0.1, "narcotics": 0.9},
       "trust": {"narcotics": 5}}]})"),
            "f.json: indicators[1].probability.narcotics: duplicate key (an object may name it "
            "only once)");
  EXPECT_EQ(ParseError(R"({"threshold": 0.5, "threshold": 0.9})"),
            "f.json: threshold: duplicate key (an object may name it only once)");
  // The same key in two different objects is fine.
  EXPECT_EQ(ParseError(ValidDocument().dump()), "parsed");
}

TEST(IndicatorFusionErrors, DeepNestingIsRefusedByPath) {
  // 16 levels are read (the format needs 4); the 17th is refused where it
  // opens, before the rest of the document is parsed.
  EXPECT_EQ(ParseError(R"({"threshold": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]})"),
            "f.json: threshold[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than "
            "16 levels");
  // 15 arrays in the threshold plus the top object is allowed nesting, and
  // an ordinary type error.
  EXPECT_EQ(ParseError(R"({"threshold": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]})"),
            "f.json: threshold: expected a number in [0, 1], found a list");
  // Megabytes of "[" cost no more than 16 levels.
  EXPECT_EQ(
      ParseError(std::string(8 << 20, '[')),
      "f.json: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels");
}

TEST(IndicatorFusionErrors, NamesInMessagesAreEscapedAndClipped) {
  nlohmann::json doc = ValidDocument();
  doc["indicators"][0]["probability"]["bad\nline"] = 0.1;
  EXPECT_EQ(ParseError(doc.dump()),
            "f.json: indicators[0].probability.bad\\x0Aline: unknown category (categories are "
            "narcotics, tobacco, currency)");
  doc = ValidDocument();
  doc[std::string(10000, 'x')] = 1;
  const std::string message = ParseError(doc.dump());
  EXPECT_THAT(message, HasSubstr("…: unknown field"));
  EXPECT_LT(message.size(), 300u);
}

// The struct API: the same rules, paths and messages, with the source "input".
TEST(IndicatorFusionErrors, FuseChecksTheSameRulesWithTheSamePaths) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* name;
    std::function<void(FusionInput&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"probability above 1",
       [](FusionInput& in) { in.indicators[1].probability["narcotics"] = 1.3; },
       "input: indicators[1].probability.narcotics: 1.3 is outside [0, 1]"},
      {"probability NaN", [&](FusionInput& in) { in.indicators[1].probability["narcotics"] = nan; },
       "input: indicators[1].probability.narcotics: nan is not a finite number in [0, 1]"},
      {"trust infinite", [&](FusionInput& in) { in.indicators[0].trust["tobacco"] = inf; },
       "input: indicators[0].trust.tobacco: inf is not a finite number in [0, 10]"},
      {"trust minus infinity", [&](FusionInput& in) { in.indicators[0].trust["tobacco"] = -inf; },
       "input: indicators[0].trust.tobacco: -inf is not a finite number in [0, 10]"},
      {"threshold NaN", [&](FusionInput& in) { in.threshold = nan; },
       "input: threshold: nan is not a finite number in [0, 1]"},
      {"threshold above 1", [](FusionInput& in) { in.threshold = 2; },
       "input: threshold: 2 is outside [0, 1]"},
      {"unknown category",
       [](FusionInput& in) {
         in.indicators[2].probability["opium"] = 0.2;
         in.indicators[2].trust["opium"] = 5;
       },
       "input: indicators[2].probability.opium: unknown category (categories are narcotics, "
       "tobacco, currency)"},
      {"no categories", [](FusionInput& in) { in.categories.clear(); },
       "input: categories: empty (name at least one category)"},
      {"empty category", [](FusionInput& in) { in.categories[0].clear(); },
       "input: categories[0]: empty name"},
      {"duplicate category", [](FusionInput& in) { in.categories[2] = "narcotics"; },
       "input: categories[2]: duplicate category narcotics (also categories[0])"},
      {"no indicators", [](FusionInput& in) { in.indicators.clear(); },
       "input: indicators: empty (give at least one indicator)"},
      {"empty indicator name", [](FusionInput& in) { in.indicators[0].name.clear(); },
       "input: indicators[0].name: empty (every indicator needs a name)"},
      {"duplicate indicator", [](FusionInput& in) { in.indicators[1].name = "risk_model"; },
       "input: indicators[1].name: duplicate indicator risk_model (also indicators[0].name)"},
      {"probability without trust", [](FusionInput& in) { in.indicators[2].trust.clear(); },
       "input: indicators[2].probability.tobacco: no trust score for this category (add "
       "indicators[2].trust.tobacco)"},
      {"trust without probability", [](FusionInput& in) { in.indicators[2].probability.clear(); },
       "input: indicators[2].trust.tobacco: no probability for this category (add "
       "indicators[2].probability.tobacco)"},
      {"covering nothing",
       [](FusionInput& in) {
         in.indicators[2].probability.clear();
         in.indicators[2].trust.clear();
       },
       "input: indicators[2]: covers no category (probability and trust are both empty)"},
  };
  absl::StatusOr<FusionInput> valid = ParseFusionInput(ValidDocument().dump(), "f.json");
  ASSERT_TRUE(valid.ok()) << valid.status();
  for (const Case& c : cases) {
    FusionInput in = *valid;
    c.edit(in);
    absl::StatusOr<FusionResult> r = Fuse(in);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(r.status().message(), c.expected) << c.name;
  }
}

class LoadFusionInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("indicator_fusion_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(LoadFusionInputTest, ReadsAFile) {
  const std::string path = Write("input.json", ValidDocument().dump(2));
  absl::StatusOr<FusionInput> in = LoadFusionInput(path);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->indicators.size(), 3u);
  EXPECT_EQ(in->indicators[2].name, "xray_scanner");
}

TEST_F(LoadFusionInputTest, ErrorsNameTheFile) {
  nlohmann::json doc = ValidDocument();
  doc["indicators"][0]["trust"]["tobacco"] = 11;
  const std::string path = Write("bad.json", doc.dump());
  absl::StatusOr<FusionInput> in = LoadFusionInput(path);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().message(), path + ": indicators[0].trust.tobacco: 11 is outside [0, 10]");
}

TEST_F(LoadFusionInputTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "absent.json").string();
  absl::StatusOr<FusionInput> in = LoadFusionInput(path);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(in.status().message()), StartsWith(path + ": cannot open: "));
}

TEST_F(LoadFusionInputTest, DirectoryIsRefused) {
  absl::StatusOr<FusionInput> in = LoadFusionInput(dir_.string());
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(in.status().message(), dir_.string() + ": is a directory, not a file");
}

TEST_F(LoadFusionInputTest, OversizedFileIsRefused) {
  // Valid JSON padded with whitespace to one byte over the cap.
  std::string text = ValidDocument().dump();
  text.resize(kMaxFusionInputBytes + 1, ' ');
  const std::string path = Write("huge.json", text);
  absl::StatusOr<FusionInput> in = LoadFusionInput(path);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(in.status().message()),
              StartsWith(path + ": larger than 16777216 bytes"));
  // Exactly at the cap is accepted.
  text.resize(kMaxFusionInputBytes);
  EXPECT_TRUE(LoadFusionInput(Write("at_cap.json", text)).ok());
}

}  // namespace
}  // namespace fedcustoms::fusion
