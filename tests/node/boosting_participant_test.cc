// What a node holds to in a boosting session without trusting the
// coordinator (docs/threat_model.md, "Boosted trees"). The test plays the
// coordinator: it makes the steps by hand, lies where an attacker would,
// and looks at exactly what the node would send.
#include "node/boosting/boosting_participant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/boosting/masked_vector.h"
#include "common/models/boosted_trees_state.h"
#include "common/secagg/key_agreement.h"
#include "common/tensor/tensor_codec.h"
#include "common/trees/boosting_rows.h"
#include "node/config/node_config.h"
#include "node/local_data.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::node {
namespace {

using ::testing::HasSubstr;
using v1::BoostingStep;

const std::vector<std::string> kAdmins = {"EE", "FI", "LV", "LT"};

class BoostingParticipantTest : public testing_support::FederationSuite<BoostingParticipantTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(
        testing_support::MakeFederationWithData("boosting_participant", kAdmins, kAdmins, 1200, 5));
    data_ = new std::map<std::string, LocalData>;
    for (const std::string& admin : kAdmins) {
      v1::NodeConfig c = testing_support::LoopbackNodeConfig(*root_, admin, 1, "p", "risk");
      auto data = LoadLocalData(c, /*need_labels=*/true);
      ASSERT_TRUE(data.ok()) << data.status();
      data_->emplace(admin, *std::move(data));
    }
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
    FederationSuite::TearDownTestSuite();
  }

  std::unique_ptr<BoostingParticipant> Make(const std::string& admin, bool secure = true,
                                            uint32_t min_cell_rows = 1,
                                            const std::string& record = "") {
    BoostingParticipant::Options o;
    o.task = "risk";
    o.secure = secure;
    o.min_peers = 3;
    o.min_cell_rows = min_cell_rows;
    o.record_path = record.empty() ? dir_.File(admin + ".jsonl") : record;
    const LocalData& d = data_->at(admin);
    auto made = BoostingParticipant::Create(Identity(admin), o, d.table, d.split);
    EXPECT_TRUE(made.ok()) << made.status();
    return *std::move(made);
  }

  static v1::TaskAssignment Step(uint64_t round, BoostingStep::Kind kind, uint64_t step,
                                 uint64_t values = 0) {
    v1::TaskAssignment a;
    a.set_kind(v1::TaskAssignment::BOOST);
    a.set_task("risk");
    a.set_round_id(round);
    a.mutable_model()->set_kind(v1::RiskModelConfig::BOOSTED_TREES);
    a.mutable_model()->mutable_trees()->set_positive_weight(1.0);
    a.mutable_boosting()->set_kind(kind);
    a.mutable_boosting()->set_step(step);
    a.mutable_boosting()->set_values(values);
    return a;
  }

  // Each participant's signed session key for `round`.
  static std::vector<v1::BoostingKey> Keys(uint64_t round,
                                           const std::vector<BoostingParticipant*>& participants) {
    std::vector<v1::BoostingKey> keys;
    for (BoostingParticipant* p : participants) {
      auto out = p->Step(Step(round, BoostingStep::KEYS, 1));
      EXPECT_TRUE(out.ok()) << out.status();
      EXPECT_TRUE(out->key.has_value());
      keys.push_back(out->key->key());
    }
    return keys;
  }

  static uint64_t MomentsSize(const std::string& admin) {
    return 3 + 2 * data_->at(admin).table.numeric_width();
  }

  // The plain vector `admin` computes for the moments.
  static std::vector<double> PlainMoments(const std::string& admin) {
    const LocalData& d = data_->at(admin);
    return trees::BoostingRows(d.table, d.split.train, d.split.validation).Moments();
  }

  static std::vector<uint32_t> Words(const BoostingParticipant::Output& out) {
    std::vector<uint32_t> words;
    for (const v1::SubmitBoostingVectorRequest& part : out.parts) {
      const size_t n = part.masked_words().size() / 4;
      const size_t at = words.size();
      words.resize(at + n);
      std::memcpy(words.data() + at, part.masked_words().data(), n * 4);
    }
    return words;
  }

  testing_support::TempDir dir_{"boosting_participant"};
  inline static std::map<std::string, LocalData>* data_ = nullptr;
};

TEST_F(BoostingParticipantTest, MaskedVectorsAddUpToThePlainSumAndHideEachOne) {
  auto ee = Make("EE"), fi = Make("FI"), lv = Make("LV");
  const std::vector<v1::BoostingKey> keys = Keys(7, {ee.get(), fi.get(), lv.get()});
  v1::TaskAssignment moments = Step(7, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *moments.mutable_boosting()->add_members() = k;

  std::vector<uint32_t> sum;
  std::vector<double> plain_sum(MomentsSize("EE"), 0.0);
  for (auto [admin, p] :
       {std::pair{"EE", ee.get()}, std::pair{"FI", fi.get()}, std::pair{"LV", lv.get()}}) {
    auto out = p->Step(moments);
    ASSERT_TRUE(out.ok()) << admin << ": " << out.status();
    ASSERT_EQ(out->parts.size(), 1u);
    EXPECT_EQ(out->parts[0].values_size(), 0) << "no plain value leaves in mode SECURE";
    const std::vector<uint32_t> words = Words(*out);
    const std::vector<double> plain = PlainMoments(admin);
    // What the coordinator receives is not the node's encoding: every word
    // carries masks (a 24-bit digit would leave the top byte zero).
    auto encoded = boosting::EncodeValues(plain);
    ASSERT_TRUE(encoded.ok());
    size_t equal = 0, top_byte_zero = 0;
    for (size_t i = 0; i < words.size(); ++i) {
      equal += words[i] == (*encoded)[i];
      top_byte_zero += (words[i] >> 24) == 0;
    }
    EXPECT_LT(equal, 3u) << admin;
    EXPECT_LT(top_byte_zero, words.size() / 8) << admin;
    if (sum.empty()) sum.assign(words.size(), 0);
    for (size_t i = 0; i < words.size(); ++i) sum[i] += words[i];
    for (size_t i = 0; i < plain.size(); ++i) plain_sum[i] += plain[i];
  }
  const std::vector<double> decoded = boosting::DecodeSum(sum, 3);
  ASSERT_EQ(decoded.size(), plain_sum.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    EXPECT_NEAR(decoded[i], plain_sum[i], 1e-6 * std::max(1.0, std::abs(plain_sum[i]))) << i;
  }
}

TEST_F(BoostingParticipantTest, RefusesFewerMembersThanItsFloor) {
  auto ee = Make("EE"), fi = Make("FI");
  const std::vector<v1::BoostingKey> keys = Keys(3, {ee.get(), fi.get()});
  v1::TaskAssignment moments = Step(3, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *moments.mutable_boosting()->add_members() = k;
  auto out = ee->Step(moments);
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("the session has 2 members; this node sums with at least 3"));
  // A coordinator that names FI twice does not make three members either.
  *moments.mutable_boosting()->add_members() = keys[1];
  out = ee->Step(moments);
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("member FI appears twice"));
}

TEST_F(BoostingParticipantTest, RefusesAKeyItsNodeDidNotSign) {
  auto ee = Make("EE"), fi = Make("FI"), lv = Make("LV");
  std::vector<v1::BoostingKey> keys = Keys(4, {ee.get(), fi.get(), lv.get()});
  // The coordinator puts its own key in FI's place, keeping FI's
  // certificate and signature: it would then know EE's mask with "FI".
  auto substitute = secagg::X25519KeyPair::Generate();
  ASSERT_TRUE(substitute.ok());
  keys[1].set_public_key(reinterpret_cast<const char*>(substitute->public_key().data()), 32);
  v1::TaskAssignment moments = Step(4, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *moments.mutable_boosting()->add_members() = k;
  auto out = ee->Step(moments);
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("boosting key of FI"));
  // A key signed for another round does not pass either.
  std::vector<v1::BoostingKey> old_keys = Keys(5, {ee.get(), fi.get(), lv.get()});
  auto ee6 = Make("EE", true, 1, dir_.File("ee6.jsonl"));
  std::vector<v1::BoostingKey> keys6 = Keys(6, {ee6.get()});
  v1::TaskAssignment replay = Step(6, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  *replay.mutable_boosting()->add_members() = keys6[0];
  *replay.mutable_boosting()->add_members() = old_keys[1];
  *replay.mutable_boosting()->add_members() = old_keys[2];
  out = ee6->Step(replay);
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("boosting key of FI"));
}

TEST_F(BoostingParticipantTest, TakesEachStepOnceAndNeverSendsPlainValuesInModeSecure) {
  auto ee = Make("EE"), fi = Make("FI"), lv = Make("LV");
  const std::vector<v1::BoostingKey> keys = Keys(8, {ee.get(), fi.get(), lv.get()});
  // A step without members (a plain vector) is refused by a secure node.
  auto plain = ee->Step(Step(8, BoostingStep::MOMENTS, 2, MomentsSize("EE")));
  EXPECT_TRUE(absl::IsFailedPrecondition(plain.status())) << plain.status();
  v1::TaskAssignment moments = Step(8, BoostingStep::MOMENTS, 3, MomentsSize("EE"));
  for (const auto& k : keys) *moments.mutable_boosting()->add_members() = k;
  auto first = ee->Step(moments);
  ASSERT_TRUE(first.ok()) << first.status();
  // The same step again (a reply lost on the way) gets the same bytes:
  // nothing new leaves.
  auto resent = ee->Step(moments);
  ASSERT_TRUE(resent.ok()) << resent.status();
  ASSERT_EQ(resent->parts.size(), first->parts.size());
  EXPECT_EQ(resent->parts[0].masked_words(), first->parts[0].masked_words());
  // The same step number with other content would be a second vector under
  // related masks: refused, as is any earlier number.
  moments.mutable_boosting()->set_grid_cells(7);
  auto other = ee->Step(moments);
  EXPECT_TRUE(absl::IsFailedPrecondition(other.status())) << other.status();
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("already took step 3"));
  moments.mutable_boosting()->set_step(2);
  EXPECT_TRUE(absl::IsFailedPrecondition(ee->Step(moments).status()));
}

// The coordinator shows EE the real step and FI and LV another one (in a
// real attack: a level whose open node is empty, so that their vectors are
// zeros and the sum is EE's). The masks depend on the step's content, so the
// three no longer cancel: the coordinator gets noise.
TEST_F(BoostingParticipantTest, MembersShownDifferentStepsGetNoise) {
  auto ee = Make("EE"), fi = Make("FI"), lv = Make("LV");
  const std::vector<v1::BoostingKey> keys = Keys(9, {ee.get(), fi.get(), lv.get()});
  v1::TaskAssignment real = Step(9, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *real.mutable_boosting()->add_members() = k;
  v1::TaskAssignment other = real;
  other.mutable_boosting()->set_grid_cells(3);
  std::vector<uint32_t> sum;
  std::vector<double> plain_sum(MomentsSize("EE"), 0.0);
  for (auto [admin, p, a] : {std::tuple{"EE", ee.get(), &real}, std::tuple{"FI", fi.get(), &other},
                             std::tuple{"LV", lv.get(), &other}}) {
    auto out = p->Step(*a);
    ASSERT_TRUE(out.ok()) << admin << ": " << out.status();
    const std::vector<uint32_t> words = Words(*out);
    if (sum.empty()) sum.assign(words.size(), 0);
    for (size_t i = 0; i < words.size(); ++i) sum[i] += words[i];
    const std::vector<double> plain = PlainMoments(admin);
    for (size_t i = 0; i < plain.size(); ++i) plain_sum[i] += plain[i];
  }
  const std::vector<double> decoded = boosting::DecodeSum(sum, 3);
  size_t close = 0;
  for (size_t i = 0; i < decoded.size(); ++i) {
    close += std::abs(decoded[i] - plain_sum[i]) < 1e3 * std::max(1.0, std::abs(plain_sum[i]));
  }
  EXPECT_EQ(close, 0u) << "a masked value decoded near the truth";
}

TEST_F(BoostingParticipantTest, SumsOneInputWithOneMemberListAcrossSessionsAndRestarts) {
  const std::string record = dir_.File("ee-record.jsonl");
  auto ee = Make("EE", true, 1, record);
  auto fi = Make("FI"), lv = Make("LV"), lt = Make("LT");
  std::vector<v1::BoostingKey> keys = Keys(10, {ee.get(), fi.get(), lv.get()});
  v1::TaskAssignment moments = Step(10, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *moments.mutable_boosting()->add_members() = k;
  ASSERT_TRUE(ee->Step(moments).ok());

  // The next session asks for the same moments with LT instead of LV: the
  // difference of the two sums would be LV's moments minus LT's, and with
  // one more session each alone. Refused, also after a restart.
  for (int restart = 0; restart < 2; ++restart) {
    if (restart == 1) ee = Make("EE", true, 1, record);
    const uint64_t round = 11 + restart;
    keys = Keys(round, {ee.get(), fi.get(), lt.get()});
    v1::TaskAssignment other = Step(round, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
    for (const auto& k : keys) *other.mutable_boosting()->add_members() = k;
    auto out = ee->Step(other);
    EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
    EXPECT_THAT(std::string(out.status().message()),
                HasSubstr("summed boosting vectors of these rows"));
  }
  // The same members again give the coordinator the same sum: allowed.
  keys = Keys(13, {ee.get(), fi.get(), lv.get()});
  v1::TaskAssignment same = Step(13, BoostingStep::MOMENTS, 2, MomentsSize("EE"));
  for (const auto& k : keys) *same.mutable_boosting()->add_members() = k;
  EXPECT_TRUE(ee->Step(same).ok());
}

// A tree the coordinator carved so that one side of the root holds a few of
// EE's rows: EE sends zeros for both sides, since the small side alone would
// show those rows' gradients, and the big side subtracted from the root's
// histogram (summed at the level before) would show them too.
TEST_F(BoostingParticipantTest, LeavesSmallCellsOutWithTheirSibling) {
  const LocalData& d = data_->at("EE");
  const size_t width = d.table.numeric_width();
  ASSERT_GT(width, 0u);
  // A feature and an edge that leave between 1 and 9 of EE's rows above it.
  size_t feature = width;
  float edge = 0;
  for (size_t j = 0; j < width && feature == width; ++j) {
    std::vector<float> column;
    for (int64_t r : d.split.train) column.push_back(d.table.numeric[r * width + j]);
    std::sort(column.begin(), column.end());
    edge = column[column.size() - 5];
    const auto above =
        std::count_if(column.begin(), column.end(), [&](float v) { return v > edge; });
    if (above >= 1 && above <= 9) feature = j;
  }
  ASSERT_LT(feature, width) << "no numeric feature with a small top cell";
  trees::TreeEnsemble crafted;
  crafted.bins.numeric_edges.assign(width, {});
  crafted.bins.numeric_edges[feature] = {edge};
  for (uint32_t b : d.table.buckets) {
    crafted.bins.categorical_bins.push_back(std::min(b, trees::kMaxCategoricalBins));
  }
  trees::Tree tree;
  tree.nodes.resize(3);
  tree.nodes[0].left = 1;
  tree.nodes[0].right = 2;
  tree.nodes[0].feature = static_cast<uint32_t>(feature);
  tree.nodes[0].threshold_bin = 0;
  crafted.trees.push_back(tree);
  auto bytes = tensor::EncodeToString(models::BoostedTreesState(crafted));
  ASSERT_TRUE(bytes.ok());
  const uint64_t values = 2 * crafted.bins.total_bins() * 3;
  v1::TaskAssignment level = Step(20, BoostingStep::LEVEL, 3, values);
  level.mutable_boosting()->set_ensemble(*bytes);
  level.mutable_boosting()->set_tree(0);
  level.mutable_boosting()->add_open_nodes(1);
  level.mutable_boosting()->add_open_nodes(2);
  // The level before: the root alone.
  trees::TreeEnsemble root = crafted;
  root.trees[0].nodes.resize(1);
  root.trees[0].nodes[0].left = root.trees[0].nodes[0].right = -1;
  auto root_bytes = tensor::EncodeToString(models::BoostedTreesState(root));
  ASSERT_TRUE(root_bytes.ok());
  v1::TaskAssignment root_level = Step(20, BoostingStep::LEVEL, 2, values / 2);
  root_level.mutable_boosting()->set_ensemble(*root_bytes);
  root_level.mutable_boosting()->set_tree(0);
  root_level.mutable_boosting()->add_open_nodes(0);

  auto open_handed = Make("EE", /*secure=*/false, /*min_cell_rows=*/1);
  ASSERT_TRUE(open_handed->Step(root_level).ok());
  auto out = open_handed->Step(level);
  ASSERT_TRUE(out.ok()) << out.status();
  double total = 0;
  for (double v : out->parts[0].values()) total += std::abs(v);
  EXPECT_GT(total, 0) << "without suppression both sides are sent";
  EXPECT_EQ(open_handed->last_suppressed(), 0u);

  auto careful = Make("EE", /*secure=*/false, /*min_cell_rows=*/10);
  ASSERT_TRUE(careful->Step(root_level).ok());
  // Asking for the big side alone (the small one's histogram is then the
  // root's minus it) is refused: a level asks for every new node.
  v1::TaskAssignment big_side_only = level;
  big_side_only.mutable_boosting()->clear_open_nodes();
  big_side_only.mutable_boosting()->add_open_nodes(1);
  big_side_only.mutable_boosting()->set_values(values / 2);
  auto refused = careful->Step(big_side_only);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("by the children of its open nodes, all of them open"));
  level.mutable_boosting()->set_step(4);
  out = careful->Step(level);
  ASSERT_TRUE(out.ok()) << out.status();
  for (double v : out->parts[0].values()) ASSERT_EQ(v, 0.0);
  EXPECT_EQ(careful->last_suppressed(), 2u);

  // And the bins cannot change later in the session: the next level with
  // other edges is refused.
  crafted.bins.numeric_edges[feature] = {edge - 1};
  bytes = tensor::EncodeToString(models::BoostedTreesState(crafted));
  ASSERT_TRUE(bytes.ok());
  level.mutable_boosting()->set_step(5);
  level.mutable_boosting()->set_ensemble(*bytes);
  auto changed = careful->Step(level);
  EXPECT_TRUE(absl::IsFailedPrecondition(changed.status())) << changed.status();
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr("bins or the base score changed"));

  // The big side, left out as the small one's sibling, split so that all
  // its rows go one way: the child would show the big side's histogram
  // (and the small side's by difference with the root). Children of a node
  // left out are left out too.
  crafted.bins.numeric_edges[feature] = {edge};
  trees::Tree deeper = tree;
  deeper.nodes.resize(5);
  deeper.nodes[1].left = 3;
  deeper.nodes[1].right = 4;
  deeper.nodes[1].feature = static_cast<uint32_t>(feature);
  deeper.nodes[1].threshold_bin = 0;  // node 1 holds bin 0 only: every row goes left
  crafted.trees[0] = deeper;
  bytes = tensor::EncodeToString(models::BoostedTreesState(crafted));
  ASSERT_TRUE(bytes.ok());
  v1::TaskAssignment trivial = level;
  trivial.mutable_boosting()->set_step(6);
  trivial.mutable_boosting()->set_ensemble(*bytes);
  trivial.mutable_boosting()->clear_open_nodes();
  trivial.mutable_boosting()->add_open_nodes(3);
  trivial.mutable_boosting()->add_open_nodes(4);
  out = careful->Step(trivial);
  ASSERT_TRUE(out.ok()) << out.status();
  for (double v : out->parts[0].values()) ASSERT_EQ(v, 0.0);
}

TEST_F(BoostingParticipantTest, RefusesMalformedSteps) {
  auto ee = Make("EE", /*secure=*/false);
  // The announced length must be the vector's.
  auto out = ee->Step(Step(30, BoostingStep::MOMENTS, 2, 5));
  EXPECT_TRUE(absl::IsInvalidArgument(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("field values"));
  // Sketch grids must be one finite interval per numeric feature.
  v1::TaskAssignment sketch = Step(30, BoostingStep::SKETCH, 3, 0);
  sketch.mutable_boosting()->set_grid_cells(16);
  out = ee->Step(sketch);
  EXPECT_TRUE(absl::IsInvalidArgument(out.status())) << out.status();
  // A level whose ensemble is not a tree state.
  v1::TaskAssignment level = Step(30, BoostingStep::LEVEL, 4, 3);
  level.mutable_boosting()->set_ensemble("not a tensor file");
  level.mutable_boosting()->add_open_nodes(0);
  out = ee->Step(level);
  EXPECT_TRUE(absl::IsInvalidArgument(out.status())) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("field ensemble"));
}

}  // namespace
}  // namespace fedcustoms::node
