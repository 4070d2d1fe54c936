// Secure aggregation end to end: a real coordinator in mode SECURE and up to
// nine scripted nodes, each a real CoordinatorClient over mutual TLS on
// loopback driving the real SecureAggregationSession, with known updates and
// dropouts placed at each phase. The published model must be the global
// model plus the weighted mean of exactly the updates that reached the
// coordinator, and what the coordinator's aggregator received must look
// uniformly random.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/pki/dev_pki.h"
#include "common/secagg/fixed_point.h"
#include "common/secagg/key_advertisement.h"
#include "common/secagg/secagg_messages.h"
#include "common/synth/declarations_synth.h"
#include "common/tensor/named_tensors.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregation/masked_sum.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "node/client/coordinator_client.h"
#include "node/secure/secure_aggregation_session.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {
namespace fs = std::filesystem;

const std::vector<std::string> kAdmins = {"AT", "BE", "DE", "DK", "EE", "ES", "FI", "LV", "SE"};

// Where a scripted node stops answering. kAfterUploadingInTheClear: the node
// tries to upload its update unmasked (first with its sample count in the
// header, then without), is refused both times, and vanishes.
enum class DropAt {
  kNever,
  kBeforeAdvertising,
  kBeforeSharing,
  kBeforeMaskedInput,
  kBeforeUnmasking,
  kAfterUploadingInTheClear,
  // Misbehaviours that do not stop the node: it sends one corrupted (but
  // signed) share to kVictimOf[its name] and uploads at once, or waits 3 s
  // before uploading; or it complains falsely about the share from FI.
  kSendsABadShareThenUploadsAtOnce,
  kSendsABadShareThenUploadsLate,
  kComplainsFalsely,
  // Honest, but uploads its masked input 4 s late (the round waits for it).
  kUploadsLate,
};

const std::map<std::string, std::string> kVictimOf = {{"AT", "DK"}, {"BE", "EE"}};

class SecureAggregationTest : public testing_support::FederationSuite<SecureAggregationTest> {
 protected:
  static void SetUpTestSuite() {
    // Declarations of EE only, for the schema file.
    MakeRoot(testing_support::MakeFederationWithData("secagg", kAdmins, {"EE"}, 200));
  }
  // A SECURE coordinator with min_nodes 3 that gathers for 3 s (every
  // scripted node is polling by then, so all are selected), with short phase
  // deadlines so dropouts cost seconds. `threshold_fraction` 0 keeps the
  // default (2/3).
  std::unique_ptr<coordinator::Coordinator> Start(const std::string& name,
                                                  double threshold_fraction) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json",
        v1::AGGREGATION_MODE_UNSPECIFIED);  // the default must be SECURE
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(1);
    t->mutable_secure_aggregation()->set_threshold_fraction(threshold_fraction);
    t->set_round_deadline_seconds(8);
    t->set_eval_deadline_seconds(5);
    t->set_gather_seconds(3);
    t->mutable_secure_aggregation()->set_phase_deadline_seconds(3);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->aggregation_mode(), v1::SECURE);  // the default
    auto coordinator = coordinator::Coordinator::Create(
        *config, [this](const std::string& node, const coordinator::TensorSource& input) {
          Tap(node, input);
        });
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  // Records every vector the coordinator's aggregator receives.
  void Tap(const std::string& node, const coordinator::TensorSource& input) {
    std::vector<uint32_t> words;
    std::vector<std::string> names;
    ASSERT_TRUE(input
                    .ForEach([&](const coordinator::TensorSlice& slice) {
                      if (slice.first()) names.push_back(slice.name);
                      const auto* p = reinterpret_cast<const uint32_t*>(slice.data.data_ptr());
                      words.insert(words.end(), p, p + slice.data.numel());
                      return absl::OkStatus();
                    })
                    .ok());
    std::lock_guard lock(tap_mu_);
    tapped_names_[node] = names;
    tapped_[node] = std::move(words);
  }

  // Node i's update: deterministic, distinct per node, inside the clip range.
  static tensor::NamedTensors UpdateOf(size_t i, const tensor::NamedTensors& global) {
    tensor::NamedTensors update;
    for (const auto& [name, w] : global) {
      if (!tensor::IsAggregatable(w)) continue;
      torch::Tensor k = torch::arange(w.numel(), torch::kFloat32);
      update.emplace_back(name,
                          (torch::sin(k * (0.37f * (i + 1)) + float(i)) * 0.2f).view(w.sizes()));
    }
    return update;
  }

  // Runs one scripted node until `stop`: joins with `rows` training rows,
  // follows its assignments, and goes silent at `drop`. Its own floor on the
  // threshold is `threshold_fraction` (0: the default, 2/3); its record of
  // contributions is <run>/contributions-<admin>.jsonl.
  static void RunNode(const std::string& run, const std::string& admin, size_t index, uint64_t rows,
                      DropAt drop, double threshold_fraction, int port,
                      const tensor::NamedTensors& global, const std::atomic<bool>& stop) {
    v1::NodeConfig config;
    config.set_coordinator_address(absl::StrCat("localhost:", port));
    *config.mutable_tls() = Identity(admin);
    auto client = node::CoordinatorClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    node::SecureAggregationSession::Options options;
    options.guarantees.set_threshold_fraction(threshold_fraction);
    options.record_path = absl::StrCat(*root_, "/", run, "/contributions-", admin, ".jsonl");
    auto session = node::SecureAggregationSession::Create(config.tls(), options);
    ASSERT_TRUE(session.ok()) << session.status();
    EXPECT_EQ((*session)->self(), admin);
    v1::JoinRequest join;
    join.add_tasks("risk");
    join.set_feature_schema_hash(schema_hash_);
    join.mutable_data()->set_train_rows(rows);
    ASSERT_TRUE((*client)->Join(join).ok());
    while (!stop) {
      auto a = (*client)->GetTask("risk", std::chrono::seconds(1));
      if (!a.ok()) continue;
      const auto kind = a->kind();
      if ((kind == v1::TaskAssignment::ADVERTISE_KEYS && drop == DropAt::kBeforeAdvertising) ||
          (kind == v1::TaskAssignment::SHARE_KEYS && drop == DropAt::kBeforeSharing) ||
          (kind == v1::TaskAssignment::TRAIN && drop == DropAt::kBeforeMaskedInput) ||
          (kind == v1::TaskAssignment::UNMASK && drop == DropAt::kBeforeUnmasking)) {
        return;  // vanishes
      }
      if (kind == v1::TaskAssignment::ADVERTISE_KEYS) {
        auto request = (*session)->AdvertiseKeys(*a);
        ASSERT_TRUE(request.ok()) << request.status();
        EXPECT_TRUE((*client)->AdvertiseKeys(*request).ok());
      } else if (kind == v1::TaskAssignment::SHARE_KEYS) {
        auto request = (*session)->ShareKeys(*a);
        ASSERT_TRUE(request.ok()) << request.status();
        if (drop == DropAt::kSendsABadShareThenUploadsAtOnce ||
            drop == DropAt::kSendsABadShareThenUploadsLate) {
          CorruptShareFor(admin, kVictimOf.at(admin), *a, *request);
        }
        EXPECT_TRUE((*client)->ShareKeys(*request).ok());
      } else if (kind == v1::TaskAssignment::TRAIN) {
        ASSERT_TRUE(a->has_secure());
        tensor::NamedTensors update = UpdateOf(index, global);
        if (drop == DropAt::kAfterUploadingInTheClear) {
          ExpectClearUploadsRefused(**client, *a, update, rows);
          return;
        }
        std::vector<node::SecureAggregationSession::UpdatePiece> pieces;
        for (const auto& [name, t] : update) {
          pieces.push_back({name, {t.data_ptr<float>(), static_cast<size_t>(t.numel())}});
        }
        const std::string model_sha256 =
            nlohmann::json::parse(a->manifest_json())["wire_sha256"].get<std::string>();
        auto masked = (*session)->MaskUpdate(*a, model_sha256, pieces, rows);
        ASSERT_TRUE(masked.ok()) << masked.status();
        EXPECT_EQ(masked->clipped, 0u);
        tensor::NamedTensors upload;
        upload.emplace_back(
            coordinator::MaskedSum::kTensorName,
            torch::from_blob(masked->words.data(), {static_cast<int64_t>(masked->words.size())},
                             torch::kInt32));
        tensor::TensorEncoder encoder(upload);
        v1::UpdateHeader header;
        header.set_task("risk");
        header.set_round_id(a->round_id());
        header.set_model_version(a->model_version());
        for (const v1::ShareComplaint& c : masked->complaints) *header.add_complaints() = c;
        // A victim complains a little later than the cheater that uploads
        // at once, so that the cheater's input is in the sum by then.
        if (!masked->complaints.empty()) std::this_thread::sleep_for(std::chrono::seconds(1));
        if (drop == DropAt::kSendsABadShareThenUploadsLate) {
          std::this_thread::sleep_for(std::chrono::seconds(2));
        }
        if (drop == DropAt::kUploadsLate) std::this_thread::sleep_for(std::chrono::seconds(4));
        if (drop == DropAt::kComplainsFalsely) {
          for (const v1::SealedShare& s : a->secure().shares()) {
            if (s.from_node() != "FI") continue;
            v1::ShareComplaint* lie = header.add_complaints();
            *lie->mutable_share() = s;
            lie->set_share_key(std::string(32, '\x42'));
          }
        }
        auto response = (*client)->UploadUpdate(header, encoder);
        if (drop == DropAt::kNever || drop == DropAt::kUploadsLate) {
          EXPECT_TRUE(response.ok()) << admin << ": " << response.status();
        } else if (drop == DropAt::kSendsABadShareThenUploadsLate ||
                   drop == DropAt::kComplainsFalsely) {
          // Dropped before its input arrived: refused, naming why.
          EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied)
              << admin << ": " << response.status();
          EXPECT_NE(std::string(response.status().message()).find(" dropped"), std::string::npos)
              << response.status();
        }
      } else if (kind == v1::TaskAssignment::CONFIRM_SURVIVORS) {
        auto request = (*session)->ConfirmSurvivors(*a);
        ASSERT_TRUE(request.ok()) << request.status();
        EXPECT_TRUE((*client)->ConfirmSurvivors(*request).ok());
      } else if (kind == v1::TaskAssignment::UNMASK) {
        auto request = (*session)->Unmask(*a);
        ASSERT_TRUE(request.ok()) << request.status();
        EXPECT_TRUE((*client)->Unmask(*request).ok());
      } else if (kind == v1::TaskAssignment::EVALUATE) {
        v1::ReportMetricsRequest report;
        report.set_task("risk");
        report.set_round_id(a->round_id());
        report.set_model_version(a->model_version());
        report.mutable_metrics()->set_pr_auc(0.5);
        report.mutable_metrics()->set_roc_auc(0.5);
        report.mutable_metrics()->set_examples(10);
        EXPECT_TRUE((*client)->ReportMetrics(report).ok());
      } else if (kind == v1::TaskAssignment::FINISHED) {
        return;
      }
    }
  }

  // Replaces the share `admin` sends `victim` with junk of the same size,
  // signed by `admin` as a cheater would: the coordinator relays it.
  static void CorruptShareFor(const std::string& admin, const std::string& victim,
                              const v1::TaskAssignment& a, v1::ShareKeysRequest& request) {
    auto signer = secagg::KeyAdvertisementSigner::Create(Identity(admin).key());
    ASSERT_TRUE(signer.ok()) << signer.status();
    // The digest of the U1 the assignment relays, as the honest session
    // signs it.
    std::map<std::string, secagg::AdvertisedKeys> u1;
    for (const v1::SignedKeys& keys : a.secure().advertisements()) {
      auto ad = secagg::FromProto(keys, "risk", a.round_id());
      ASSERT_TRUE(ad.ok()) << ad.status();
      ad->keys.terms = secagg::TermsOf(a.secure());
      u1[ad->keys.node] = ad->keys;
    }
    std::vector<secagg::AdvertisedKeys> by_node;
    for (const auto& [node, keys] : u1) by_node.push_back(keys);
    const std::string u1_digest = secagg::AdvertisedKeysDigest(by_node);
    const uint64_t round_id = a.round_id();
    bool found = false;
    for (v1::SealedShare& s : *request.mutable_shares()) {
      if (s.to_node() != victim) continue;
      std::string sealed = s.sealed();
      sealed[20] ^= 0x01;
      s.set_sealed(sealed);
      auto signature = (*signer)->SignPayload(secagg::SealedSharePayload(
          "risk", round_id, admin, victim, u1_digest, sealed, s.key_commitment()));
      ASSERT_TRUE(signature.ok()) << signature.status();
      s.set_signature(*signature);
      found = true;
    }
    EXPECT_TRUE(found) << admin << " has no share for " << victim;
  }

  // A node that ignores the protocol and sends its update as plain float
  // tensors: refused for the sample count in the header, then for the tensors.
  static void ExpectClearUploadsRefused(node::CoordinatorClient& client,
                                        const v1::TaskAssignment& a,
                                        const tensor::NamedTensors& update, uint64_t rows) {
    v1::UpdateHeader header;
    header.set_task("risk");
    header.set_round_id(a.round_id());
    header.set_model_version(a.model_version());
    header.set_sample_count(rows);
    tensor::TensorEncoder with_count(update);
    auto refused = client.UploadUpdate(header, with_count);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(refused.status().message()).find("carries no sample_count"),
              std::string::npos)
        << refused.status();
    header.clear_sample_count();
    tensor::TensorEncoder without_count(update);
    refused = client.UploadUpdate(header, without_count);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(
        std::string(refused.status().message()).find("a masked upload holds the single tensor"),
        std::string::npos)
        << refused.status();
  }

  struct Outcome {
    std::vector<coordinator::RoundRecord> rounds;
    tensor::NamedTensors global;                    // version 0
    std::optional<tensor::NamedTensors> published;  // version 1, if any
  };

  // One round with `drops[i]` for node kAdmins[i]; node i declares
  // 100 * (i + 1) training rows. `threshold_fraction` (0: the default) for
  // the coordinator and the nodes alike.
  Outcome RunRound(const std::string& name, const std::vector<DropAt>& drops,
                   double threshold_fraction = 0) {
    auto coordinator = Start(name, threshold_fraction);
    schema_hash_ = coordinator->runner("risk")->feature_schema_hash();
    Outcome out;
    out.global = *coordinator->registry().LoadWeights("risk", 0);
    std::atomic<bool> stop{false};
    std::vector<std::thread> nodes;
    for (size_t i = 0; i < drops.size(); ++i) {
      nodes.emplace_back(RunNode, name, kAdmins[i], i, 100 * (i + 1), drops[i], threshold_fraction,
                         coordinator->Port(), std::cref(out.global), std::cref(stop));
    }
    for (int i = 0; i < 600; ++i) {
      auto rounds = coordinator->ledger().List("risk");
      if (rounds.ok() && !rounds->empty()) {
        out.rounds = *rounds;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop = true;
    for (std::thread& t : nodes) t.join();
    if (coordinator->registry().Versions("risk").size() > 1) {
      out.published = *coordinator->registry().LoadWeights("risk", 1);
    }
    return out;
  }

  // Expects `published` = global + Σ n_i Δ_i / Σ n_i over `contributors`.
  static void ExpectWeightedMean(const Outcome& out, const std::vector<size_t>& contributors) {
    ASSERT_TRUE(out.published.has_value());
    double total = 0;
    for (size_t i : contributors) total += 100.0 * (i + 1);
    std::vector<tensor::NamedTensors> updates;
    for (size_t i : contributors) updates.push_back(UpdateOf(i, out.global));
    size_t u = 0;
    for (size_t k = 0; k < out.global.size(); ++k) {
      const auto& [name, w] = out.global[k];
      if (!tensor::IsAggregatable(w)) continue;
      torch::Tensor expected = w.clone();
      for (size_t c = 0; c < contributors.size(); ++c) {
        expected += updates[c][u].second * (100.0 * (contributors[c] + 1) / total);
      }
      ++u;
      // Fixed-point error <= n / (2 * 2^28 * Σw) ~ 1e-8, then float32 sums;
      // 1024 times more for the standardization statistics, which travel
      // divided by kStatisticsDivisor.
      const double atol = secagg::IsStandardizationStatistic(name) ? 2e-5 : 1e-6;
      EXPECT_TRUE(torch::allclose((*out.published)[k].second, expected, 1e-5, atol)) << name;
    }
  }

  static std::string schema_hash_;
  std::mutex tap_mu_;
  std::map<std::string, std::vector<uint32_t>> tapped_;
  std::map<std::string, std::vector<std::string>> tapped_names_;
};

std::string SecureAggregationTest::schema_hash_;

// Chi-square statistic of the top bytes of `words` against uniform (255
// degrees of freedom: mean 255, sd 22.6).
double TopByteChiSquare(const std::vector<uint32_t>& words) {
  std::vector<double> counts(256, 0);
  for (uint32_t w : words) counts[w >> 24] += 1;
  const double expected = static_cast<double>(words.size()) / 256;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  return chi2;
}

TEST_F(SecureAggregationTest, SumOfFiveMaskedUpdatesIsTheWeightedMeanAndEachInputLooksUniform) {
  Outcome out = RunRound("five", std::vector<DropAt>(5, DropAt::kNever));
  ASSERT_EQ(out.rounds.size(), 1u);
  EXPECT_EQ(out.rounds[0].status, "completed") << out.rounds[0].reason;
  EXPECT_EQ(out.rounds[0].mode, "secure");
  EXPECT_EQ(out.rounds[0].participants, 5u);
  EXPECT_EQ(out.rounds[0].samples, 1500u);  // Σ of the contributors' declared rows
  ExpectWeightedMean(out, {0, 1, 2, 3, 4});

  // The aggregator only ever received masked vectors: one int32 tensor per
  // node, whose words are uniform (a plain fixed-point update of values within
  // ±0.2 would put nearly every top byte at 0x00..0x0d or 0xf3..0xff).
  std::lock_guard lock(tap_mu_);
  ASSERT_EQ(tapped_.size(), 5u);
  for (const auto& [node, words] : tapped_) {
    EXPECT_EQ(tapped_names_[node], std::vector<std::string>{"masked_input"});
    ASSERT_GT(words.size(), 2560u);
    const double chi2 = TopByteChiSquare(words);
    EXPECT_LT(chi2, 360.0) << node << ": top bytes are not uniform";  // p < 1e-5
    uint64_t ones = 0;
    for (uint32_t w : words) ones += __builtin_popcount(w);
    const double bits = 32.0 * words.size();
    EXPECT_NEAR(ones / bits, 0.5, 5 * 0.5 / std::sqrt(bits)) << node << ": bits unbalanced";
  }
}

TEST_F(SecureAggregationTest, DropoutsAtEveryPhaseStillGiveTheSumOfThoseWhoSentMaskedInput) {
  // Nine nodes, threshold 5 (fraction 0.5, accepted by coordinator and nodes
  // alike). AT never advertises, BE never shares, DE never sends its masked
  // input (its pairwise masks are recovered from shares), DK vanishes before
  // unmasking (its input still counts).
  std::vector<DropAt> drops(9, DropAt::kNever);
  drops[0] = DropAt::kBeforeAdvertising;
  drops[1] = DropAt::kBeforeSharing;
  drops[2] = DropAt::kBeforeMaskedInput;
  drops[3] = DropAt::kBeforeUnmasking;
  Outcome out = RunRound("dropouts", drops, 0.5);
  ASSERT_EQ(out.rounds.size(), 1u);
  EXPECT_EQ(out.rounds[0].status, "completed") << out.rounds[0].reason;
  EXPECT_EQ(out.rounds[0].participants, 6u);
  EXPECT_EQ(out.rounds[0].dropped, 3u);
  EXPECT_EQ(out.rounds[0].samples, 100u * (4 + 5 + 6 + 7 + 8 + 9));
  ExpectWeightedMean(out, {3, 4, 5, 6, 7, 8});
}

TEST_F(SecureAggregationTest, TooManyDropoutsAbortTheRoundAndLeaveTheModelUnchanged) {
  // Five nodes, threshold 4 (the default 2/3): two vanish after sharing keys.
  std::vector<DropAt> drops(5, DropAt::kNever);
  drops[0] = drops[1] = DropAt::kBeforeMaskedInput;
  Outcome out = RunRound("abort", drops);
  ASSERT_EQ(out.rounds.size(), 1u);
  EXPECT_EQ(out.rounds[0].status, "aborted");
  EXPECT_EQ(out.rounds[0].reason,
            "only 3 of 5 nodes sent their masked input by the deadline; the threshold is 4");
  EXPECT_FALSE(out.published.has_value());
}

TEST_F(SecureAggregationTest, AnUpdateSentInTheClearIsRefusedAndTheNodeCountsAsDropped) {
  std::vector<DropAt> drops(5, DropAt::kNever);
  drops[4] = DropAt::kAfterUploadingInTheClear;
  Outcome out = RunRound("clear", drops);
  ASSERT_EQ(out.rounds.size(), 1u);
  EXPECT_EQ(out.rounds[0].status, "completed") << out.rounds[0].reason;
  EXPECT_EQ(out.rounds[0].participants, 4u);
  EXPECT_EQ(out.rounds[0].samples, 1000u);
  ExpectWeightedMean(out, {0, 1, 2, 3});
  std::lock_guard lock(tap_mu_);
  EXPECT_EQ(tapped_.count("EE"), 0u);  // nothing of the clear update reached the aggregator
  EXPECT_EQ(tapped_.size(), 4u);
}

TEST_F(SecureAggregationTest, CheatersAreDroppedOnTheEvidenceAndTheRoundGoesOn) {
  // Nine nodes, threshold 5 (fraction 0.5). AT sends DK a corrupted share
  // and uploads at once (its input is in the sum when DK's complaint comes,
  // and is taken out again); BE sends EE one and uploads late (refused);
  // DE accuses FI with a key FI never committed to (refused and dropped).
  // SE uploads last (4 s), so the round is still taking input when BE comes.
  // The five nodes left hold enough good shares of AT's, BE's and DE's mask
  // keys to remove their pairwise masks.
  std::vector<DropAt> drops(9, DropAt::kNever);
  drops[0] = DropAt::kSendsABadShareThenUploadsAtOnce;
  drops[1] = DropAt::kSendsABadShareThenUploadsLate;
  drops[2] = DropAt::kComplainsFalsely;
  drops[8] = DropAt::kUploadsLate;
  Outcome out = RunRound("cheaters", drops, 0.5);
  ASSERT_EQ(out.rounds.size(), 1u);
  EXPECT_EQ(out.rounds[0].status, "completed") << out.rounds[0].reason;
  EXPECT_EQ(out.rounds[0].participants, 6u);
  EXPECT_EQ(out.rounds[0].dropped, 3u);
  const std::string& reason = out.rounds[0].reason;
  EXPECT_NE(reason.find("AT sent DK a bad share"), std::string::npos) << reason;
  EXPECT_NE(reason.find("BE sent EE a bad share"), std::string::npos) << reason;
  EXPECT_NE(reason.find("DE revealed a key for the share from FI that is not the one FI "
                        "committed to"),
            std::string::npos)
      << reason;
  ExpectWeightedMean(out, {3, 4, 5, 6, 7, 8});
  std::lock_guard lock(tap_mu_);
  EXPECT_EQ(tapped_.count("AT"), 1u);  // folded, then taken out
  EXPECT_EQ(tapped_.count("BE"), 0u);
  EXPECT_EQ(tapped_.count("DE"), 0u);
}

}  // namespace
}  // namespace fedcustoms
