// What a node holds to in secure aggregation without trusting the
// coordinator: its record of contributions (at most max_per_model masked
// updates from one model, by version or by weights, surviving restarts and
// torn writes), the floor of its config, and training seeds that a rerun of
// the same round does not reproduce.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/io/atomic_file.h"
#include "node/config/node_config.h"
#include "node/learner/local_learner.h"
#include "node/secure/contribution_record.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::node {
namespace {

using testing::HasSubstr;
using Entry = ContributionRecord::Entry;

const std::string kShaV3(64, 'a');
const std::string kShaV4(64, 'b');

TEST(ContributionRecord, OneContributionPerModelByVersionAndByWeights) {
  testing_support::TempDir dir("contrib");
  const std::string path = dir.File("contributions.jsonl");
  auto record = ContributionRecord::Open(path, 1);
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 10}).ok());
  // The same round id again is a coordinator reusing it (a resent upload
  // never comes back here): refused, whatever the allowance.
  absl::Status reused = (*record)->Record({"risk", 3, kShaV3, 10});
  EXPECT_TRUE(absl::IsFailedPrecondition(reused)) << reused;
  EXPECT_THAT(std::string(reused.message()),
              HasSubstr("round 10 of risk is not after round 10, in which this node already took "
                        "part"));
  EXPECT_EQ((*record)->entries().size(), 1u);

  // A rerun on v3 is refused, naming the model and the earlier round.
  absl::Status rerun = (*record)->CheckAllowed({"risk", 3, kShaV3, 11});
  EXPECT_TRUE(absl::IsFailedPrecondition(rerun)) << rerun;
  EXPECT_THAT(std::string(rerun.message()),
              HasSubstr("already contributed a masked update computed from risk v3"));
  EXPECT_THAT(std::string(rerun.message()), HasSubstr("in round 10"));
  // The same weights re-published as v9: still the same model.
  EXPECT_TRUE(absl::IsFailedPrecondition((*record)->CheckAllowed({"risk", 9, kShaV3, 12})));
  EXPECT_TRUE(absl::IsFailedPrecondition((*record)->Record({"risk", 9, kShaV3, 12})));
  // Another model, or another task, is free.
  EXPECT_TRUE((*record)->CheckAllowed({"risk", 4, kShaV4, 12}).ok());
  EXPECT_TRUE((*record)->CheckAllowed({"anomaly", 3, kShaV3, 12}).ok());

  // The record survives a restart.
  record->reset();  // the node stops: the record is let go
  auto reopened = ContributionRecord::Open(path, 1);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_EQ((*reopened)->entries().size(), 1u);
  EXPECT_EQ((*reopened)->entries()[0].model_sha256, kShaV3);
  EXPECT_TRUE(absl::IsFailedPrecondition((*reopened)->CheckAllowed({"risk", 3, kShaV3, 11})));
}

TEST(ContributionRecord, TheAllowanceCountsEveryRoundOnOneModel) {
  testing_support::TempDir dir("contrib");
  auto record = ContributionRecord::Open(dir.File("c.jsonl"), 2);
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 10}).ok());
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 11}).ok());  // one rerun allowed
  absl::Status third = (*record)->Record({"risk", 3, kShaV3, 12});
  EXPECT_TRUE(absl::IsFailedPrecondition(third)) << third;
  EXPECT_THAT(std::string(third.message()), HasSubstr("in rounds 10, 11"));
}

// The administration's way out of a stall: a release makes the model's
// entries so far stop counting (also for the same weights under another
// version), once per confirmed list; round ids must still grow; it survives
// a restart and a damaged release line is refused like any other.
TEST(ContributionRecord, AReleaseLetsOneOtherListThroughAndIsKept) {
  testing_support::TempDir dir("contrib");
  const std::string path = dir.File("c.jsonl");
  auto record = ContributionRecord::Open(path, 2);
  ASSERT_TRUE(record.ok()) << record.status();
  absl::Status nothing = (*record)->Release("risk", 3, "SE left").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(nothing)) << nothing;
  EXPECT_THAT(std::string(nothing.message()), HasSubstr("nothing to release"));
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 10}).ok());
  ASSERT_TRUE(
      (*record)->RecordConfirmation({"risk", 3, kShaV3, 10, {"EE", "FI", "LV", "SE"}}).ok());
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 11}).ok());
  ASSERT_FALSE((*record)->CheckConfirmation({"risk", 3, kShaV3, 11, {"EE", "FI", "LV"}}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument((*record)->Release("risk", 3, "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*record)->Release("risk", 3, "two\nlines").status()));

  auto lifted = (*record)->Release("risk", 3, "SE left the federation");
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_EQ(lifted->size(), 3u);
  // One more masked update and another list, under a later round id only.
  EXPECT_TRUE(absl::IsFailedPrecondition((*record)->CheckAllowed({"risk", 3, kShaV3, 11})));
  EXPECT_TRUE((*record)->CheckAllowed({"risk", 9, kShaV3, 12}).ok());  // same weights as v9
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 12}).ok());
  ASSERT_TRUE((*record)->RecordConfirmation({"risk", 3, kShaV3, 12, {"EE", "FI", "LV"}}).ok());
  // The new list is now the one list, and nothing more is released twice.
  EXPECT_FALSE((*record)->CheckConfirmation({"risk", 3, kShaV3, 13, {"EE", "FI"}}).ok());
  EXPECT_TRUE((*record)->Release("anomaly", 3, "no").status().code() ==
              absl::StatusCode::kFailedPrecondition);

  record->reset();
  auto reopened = ContributionRecord::Open(path, 2);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_EQ((*reopened)->entries().size(), 6u);
  EXPECT_EQ((*reopened)->entries()[3].release_reason, "SE left the federation");
  EXPECT_TRUE((*reopened)->CheckConfirmation({"risk", 3, kShaV3, 13, {"EE", "FI", "LV"}}).ok());
  EXPECT_FALSE((*reopened)->CheckConfirmation({"risk", 3, kShaV3, 13, {"EE", "FI"}}).ok());

  std::ofstream(path, std::ios::app)
      << R"({"task":"risk","model_version":3,"model_sha256":"x","round":13,"release":7})"
      << "\n";
  reopened->reset();
  auto damaged = ContributionRecord::Open(path, 2);
  EXPECT_TRUE(absl::IsInvalidArgument(damaged.status())) << damaged.status();
  EXPECT_THAT(std::string(damaged.status().message()), HasSubstr(path + ":7: expected"));
}

// Review findings on the release: it lifts only the entries it lists (a
// coordinator that re-signs an older model's weights under the released
// version gets them refused), and the record is held while open, so that a
// release cannot write beside a running node; reading needs no hold.
TEST(ContributionRecord, AReleaseLiftsOnlyWhatItListsAndTheRecordIsHeld) {
  testing_support::TempDir dir("contrib");
  const std::string path = dir.File("c.jsonl");
  const std::string kShaV12(64, 'c');
  {
    auto record = ContributionRecord::Open(path, 2);
    ASSERT_TRUE(record.ok()) << record.status();
    auto second = ContributionRecord::Open(path, 2);
    EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
    EXPECT_THAT(std::string(second.status().message()), HasSubstr(".lock is held"));
    ASSERT_TRUE((*record)->Record({"risk", 9, kShaV3, 10}).ok());
    ASSERT_TRUE((*record)->RecordConfirmation({"risk", 9, kShaV3, 10, {"EE", "FI", "SE"}}).ok());
    ASSERT_TRUE((*record)->Record({"risk", 12, kShaV12, 20}).ok());
    ASSERT_TRUE((*record)->RecordConfirmation({"risk", 12, kShaV12, 20, {"EE", "FI", "SE"}}).ok());
    auto lifted = (*record)->Release("risk", 12, "SE left");
    ASSERT_TRUE(lifted.ok()) << lifted.status();
    EXPECT_EQ(lifted->size(), 2u);  // v12's two lines, not v9's
    // "v12" whose weights are v9's: v9's list still counts.
    EXPECT_FALSE((*record)->CheckConfirmation({"risk", 12, kShaV3, 21, {"EE", "FI"}}).ok());
    EXPECT_TRUE((*record)->CheckConfirmation({"risk", 12, kShaV12, 21, {"EE", "FI"}}).ok());
    auto read = ContributionRecord::Read(path);  // beside the open record
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->size(), 5u);
  }
  EXPECT_TRUE(ContributionRecord::Open(path, 2).ok());  // let go with the object
}

TEST(ContributionRecord, ATornLastLineIsDroppedAndADamagedOneRefused) {
  testing_support::TempDir dir("contrib");
  const std::string path = dir.File("c.jsonl");
  {
    auto record = ContributionRecord::Open(path, 1);
    ASSERT_TRUE(record.ok());
    ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 10}).ok());
  }
  // A crash in the middle of the next write: that update never left.
  std::ofstream(path, std::ios::app) << R"({"task":"risk","model_ver)";
  auto record = ContributionRecord::Open(path, 1);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ((*record)->entries().size(), 1u);
  // The torn tail is cut off, so the next line starts on its own.
  ASSERT_TRUE((*record)->Record({"risk", 4, kShaV4, 11}).ok());
  record->reset();
  auto again = ContributionRecord::Open(path, 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->entries().size(), 2u);

  // A damaged complete line: nothing is trusted, and the error says where.
  std::ofstream(path, std::ios::app) << "{\"task\":\"risk\"}\n";
  again->reset();
  auto damaged = ContributionRecord::Open(path, 1);
  ASSERT_FALSE(damaged.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(damaged.status())) << damaged.status();
  EXPECT_THAT(std::string(damaged.status().message()), HasSubstr(path + ":3: expected"));
}

// The rule that stops the re-run attack: one survivor list per model. The
// same list again (a rerun after a crash or a failed publish gate) is
// allowed; a list without one node, or with another, is refused, also after
// a restart.
TEST(ContributionRecord, OneSurvivorListPerModel) {
  testing_support::TempDir dir("contrib");
  const std::string path = dir.File("c.jsonl");
  auto record = ContributionRecord::Open(path, 2);
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_TRUE((*record)->Record({"risk", 3, kShaV3, 10}).ok());
  ASSERT_TRUE((*record)->RecordConfirmation({"risk", 3, kShaV3, 10, {"LV", "EE", "FI"}}).ok());
  // The masked update and the confirmation are separate entries: one masked
  // update so far, and a rerun's masked update is within the allowance of 2.
  EXPECT_TRUE((*record)->CheckAllowed({"risk", 3, kShaV3, 11}).ok());
  EXPECT_TRUE((*record)->CheckConfirmation({"risk", 3, kShaV3, 11, {"EE", "FI", "LV"}}).ok());

  record->reset();
  auto reopened = ContributionRecord::Open(path, 2);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::Status without_ee = (*reopened)->RecordConfirmation({"risk", 3, kShaV3, 11, {"FI", "LV"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(without_ee)) << without_ee;
  EXPECT_THAT(std::string(without_ee.message()),
              HasSubstr("already confirmed another survivor list for a sum computed from risk v3 "
                        "(round 10; that list also had [EE], this one also has []"));
  // The same weights under another version count as the same model.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*reopened)->CheckConfirmation({"risk", 8, kShaV3, 12, {"FI", "LV", "SE"}})));
  // The next model starts afresh.
  EXPECT_TRUE((*reopened)->RecordConfirmation({"risk", 4, kShaV4, 12, {"FI", "LV", "SE"}}).ok());
  EXPECT_TRUE((*reopened)->RecordConfirmation({"risk", 3, kShaV3, 13, {"EE", "FI", "LV"}}).ok());
  // Not in a reused or earlier round, even with the same list.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*reopened)->RecordConfirmation({"risk", 3, kShaV3, 13, {"EE", "FI", "LV"}})));
}

TEST(NodeSecureAggregationConfig, DefaultsAndFloorsNameTheField) {
  auto defaults = FinalizeNodeSecureAggregation({}, "node.json");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->min_peers(), 3u);
  EXPECT_DOUBLE_EQ(defaults->threshold_fraction(), 2.0 / 3.0);
  EXPECT_EQ(defaults->max_contributions_per_model(), 2u);

  v1::NodeSecureAggregationConfig two;
  two.set_min_peers(2);
  EXPECT_THAT(std::string(FinalizeNodeSecureAggregation(two, "node.json").status().message()),
              HasSubstr("node.json: secure_aggregation.min_peers: 2 is below 3"));
  for (double fraction : {0.4, 1.0, -1.0}) {
    v1::NodeSecureAggregationConfig low;
    low.set_threshold_fraction(fraction);
    absl::Status s = FinalizeNodeSecureAggregation(low, "node.json").status();
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("node.json: secure_aggregation.threshold_fraction: "))
        << fraction;
  }
}

// The re-run attack needs bit-identical retraining; by default a node's seed
// for a round differs on every run.
TEST(RoundTrainingSeed, FreshUnlessReproducibleIsAskedFor) {
  std::set<uint64_t> fresh;
  for (int i = 0; i < 8; ++i) fresh.insert(RoundTrainingSeed(7, 3, /*reproducible=*/false));
  EXPECT_EQ(fresh.size(), 8u);
  EXPECT_EQ(RoundTrainingSeed(7, 3, true), RoundTrainingSeed(7, 3, true));
  EXPECT_NE(RoundTrainingSeed(7, 3, true), RoundTrainingSeed(7, 4, true));
}

}  // namespace
}  // namespace fedcustoms::node
