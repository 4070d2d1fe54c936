#include "coordinator/boosting/boosting_session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/boosting/boosting_keys.h"
#include "common/boosting/masked_vector.h"
#include "common/crypto/sha256.h"
#include "common/models/boosted_trees_state.h"
#include "common/tensor/tensor_codec.h"
#include "common/trees/boosted_trees_trainer.h"

namespace fedcustoms::coordinator {
namespace {

using v1::BoostingStep;

// The sketch's grid cells per numeric feature.
constexpr uint32_t kSketchCells = 1024;

trees::TreeParams ParamsOf(const v1::BoostedTreesConfig& c) {
  trees::TreeParams p;
  p.max_depth = c.max_depth();
  p.learning_rate = c.learning_rate();
  p.l2 = c.l2();
  p.min_child_weight = c.min_child_weight();
  return p;
}

}  // namespace

BoostingSession::BoostingSession(Options options, std::set<std::string> members)
    : options_(std::move(options)), members_(std::move(members)) {
  Enter(options_.secure ? BoostingStep::KEYS : BoostingStep::MOMENTS);
}

std::string BoostingSession::StepName() const {
  switch (kind_) {
    case BoostingStep::KEYS:
      return "keys";
    case BoostingStep::MOMENTS:
      return "moments";
    case BoostingStep::SKETCH:
      return "sketch";
    case BoostingStep::LEVEL:
      return absl::StrCat("tree ", ensemble_.trees.size(), " level ", level_);
    case BoostingStep::VALIDATION:
      return absl::StrCat("validation of tree ", ensemble_.trees.size() - 1);
    default:
      return "none";
  }
}

uint64_t BoostingSession::Values() const {
  switch (kind_) {
    case BoostingStep::MOMENTS:
      return 3 + 2 * options_.numeric_width;
    case BoostingStep::SKETCH:
      return options_.numeric_width * kSketchCells;
    case BoostingStep::LEVEL:
      return builder_->open().size() * ensemble_.bins.total_bins() * 3;
    case BoostingStep::VALIDATION:
      return 2;
    default:
      return 0;
  }
}

void BoostingSession::Enter(BoostingStep::Kind kind) {
  level_ = kind == BoostingStep::LEVEL && kind_ == BoostingStep::LEVEL ? level_ + 1 : 0;
  kind_ = kind;
  ++step_;
  message_.Clear();
  message_.set_kind(kind);
  message_.set_step(step_);
  parts_received_.clear();
  const uint64_t values = Values();
  message_.set_values(values);
  sum_words_.clear();
  if (kind != BoostingStep::KEYS) sum_words_.assign(values * boosting::kDigits, 0);
  if (kind == BoostingStep::SKETCH) {
    for (const trees::SketchGrid& g : grids_) {
      message_.add_grid_low(g.low);
      message_.add_grid_high(g.high);
    }
    message_.set_grid_cells(kSketchCells);
  }
  if (kind == BoostingStep::LEVEL || kind == BoostingStep::VALIDATION) {
    trees::TreeEnsemble one;
    one.bins = ensemble_.bins;
    one.base_score = ensemble_.base_score;
    one.trees.push_back(kind == BoostingStep::LEVEL ? builder_->tree() : ensemble_.trees.back());
    absl::StatusOr<std::string> bytes = tensor::EncodeToString(models::BoostedTreesState(one));
    // Encoding a state made here only fails on allocation, which throws.
    if (!bytes.ok()) throw std::runtime_error(std::string(bytes.status().message()));
    message_.set_ensemble(*std::move(bytes));
    message_.set_tree(static_cast<uint32_t>(
        kind == BoostingStep::LEVEL ? ensemble_.trees.size() : ensemble_.trees.size() - 1));
    if (kind == BoostingStep::LEVEL) {
      for (int32_t n : builder_->open()) message_.add_open_nodes(n);
    }
  }
}

std::optional<v1::BoostingStep> BoostingSession::StepFor(const std::string& node) const {
  if (done_ || !members_.contains(node)) return std::nullopt;
  if (kind_ == BoostingStep::KEYS) {
    if (keys_.contains(node)) return std::nullopt;
    return message_;
  }
  auto it = parts_received_.find(node);
  if (it != parts_received_.end() && std::all_of(it->second.begin(), it->second.end(),
                                                 [](const std::string& d) { return !d.empty(); })) {
    return std::nullopt;
  }
  v1::BoostingStep step = message_;
  if (options_.secure) {
    for (const std::string& m : members_) *step.add_members() = keys_.at(m);
  }
  return step;
}

absl::Status BoostingSession::AdvertiseKey(const std::string& node, const v1::BoostingKey& key) {
  if (done_ || kind_ != BoostingStep::KEYS) {
    return absl::FailedPreconditionError(
        absl::StrCat("the boosting session is at step ", StepName(), ", not keys"));
  }
  if (!members_.contains(node)) {
    return absl::FailedPreconditionError(absl::StrCat(node, " is not a member of this session"));
  }
  if (key.node() != node) {
    return absl::PermissionDeniedError(
        absl::StrCat("a key advertised by ", node, " names ", key.node().substr(0, 64)));
  }
  secagg::X25519PublicKey public_key{};
  if (key.public_key().size() != public_key.size()) {
    return absl::InvalidArgumentError("field key.public_key: not 32 bytes");
  }
  std::memcpy(public_key.data(), key.public_key().data(), public_key.size());
  if (auto it = keys_.find(node); it != keys_.end()) {
    if (it->second.SerializeAsString() == key.SerializeAsString()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(node, " already advertised another key for this session"));
  }
  if (absl::Status s = options_.verifier->VerifyNodeSignature(
          node, key.certificate_pem(),
          boosting::BoostingKeyPayload(options_.task, options_.round_id, node, public_key),
          key.signature(), absl::StrCat("boosting key of ", node));
      !s.ok()) {
    return s;
  }
  keys_[node] = key;
  return absl::OkStatus();
}

absl::Status BoostingSession::Submit(const std::string& node,
                                     const v1::SubmitBoostingVectorRequest& part) {
  if (done_ || kind_ == BoostingStep::KEYS || part.step() != step_) {
    return absl::FailedPreconditionError(absl::StrCat("step ", part.step(),
                                                      " is not the session's current vector step (",
                                                      step_, ", ", StepName(), ")"));
  }
  if (!members_.contains(node)) {
    return absl::FailedPreconditionError(absl::StrCat(node, " is not a member of this session"));
  }
  const uint64_t values = message_.values();
  const uint64_t parts = boosting::PartsOf(values);
  if (part.part() >= parts) {
    return absl::InvalidArgumentError(
        absl::StrCat("field part: ", part.part(), " but the vector has ", parts, " parts"));
  }
  const uint64_t begin = part.part() * boosting::kPartValues;
  const uint64_t count = std::min(values - begin, boosting::kPartValues);
  std::vector<std::string>& received = parts_received_[node];
  received.resize(parts);
  // A node that lost the reply sends the part again: the same bytes are a
  // no-op, other bytes are refused (the first ones are in the sum). The
  // size is checked before anything is hashed.
  const size_t expected_bytes = options_.secure ? count * boosting::kDigits * 4 : count * 8;
  const size_t bytes =
      options_.secure ? part.masked_words().size() : static_cast<size_t>(part.values_size()) * 8;
  const std::string digest =
      bytes != expected_bytes
          ? std::string()
          : crypto::Sha256Hex(
                options_.secure
                    ? std::string_view(part.masked_words())
                    : std::string_view(reinterpret_cast<const char*>(part.values().data()), bytes));
  if (!digest.empty() && !received[part.part()].empty()) {
    if (received[part.part()] == digest) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("part ", part.part(), " of step ", step_,
                                                      " already received from ", node,
                                                      " with other content"));
  }
  if (options_.secure) {
    if (!part.values().empty() || part.masked_words().size() != count * boosting::kDigits * 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("field masked_words: expected ", count * boosting::kDigits * 4,
                       " bytes of masked words (mode SECURE takes no plain values), got ",
                       part.masked_words().size()));
    }
    const char* words = part.masked_words().data();
    uint32_t* sum = sum_words_.data() + begin * boosting::kDigits;
    for (uint64_t i = 0; i < count * boosting::kDigits; ++i) {
      uint32_t w;
      std::memcpy(&w, words + i * 4, 4);
      sum[i] += w;  // modulo 2^32: the masks cancel in the members' sum
    }
  } else {
    if (!part.masked_words().empty() || static_cast<uint64_t>(part.values_size()) != count) {
      return absl::InvalidArgumentError(
          absl::StrCat("field values: expected ", count, " values, got ", part.values_size()));
    }
    // Plain values are summed in fixed point too, so that the sum does not
    // depend on the order the members arrived in (and equals mode SECURE's).
    absl::StatusOr<std::vector<uint32_t>> words = boosting::EncodeValues(
        std::span<const double>(part.values().data(), static_cast<size_t>(part.values_size())));
    if (!words.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("field values: ", words.status().message()));
    }
    uint32_t* sum = sum_words_.data() + begin * boosting::kDigits;
    for (size_t i = 0; i < words->size(); ++i) sum[i] += (*words)[i];
  }
  received[part.part()] = digest;
  return absl::OkStatus();
}

bool BoostingSession::StepComplete() const { return !done_ && Missing().empty(); }

std::set<std::string> BoostingSession::Missing() const {
  std::set<std::string> missing;
  for (const std::string& m : members_) {
    if (StepFor(m).has_value()) missing.insert(m);
  }
  return missing;
}

absl::Status BoostingSession::CloseStepIncomplete() {
  const std::set<std::string> missing = Missing();
  if (kind_ == BoostingStep::KEYS) {
    for (const std::string& m : missing) members_.erase(m);
    if (members_.size() < options_.min_members) {
      return absl::FailedPreconditionError(
          absl::StrCat("only ", members_.size(), " members advertised a session key; min_nodes is ",
                       options_.min_members));
    }
    return absl::OkStatus();
  }
  ended_early_ =
      absl::StrCat(missing.size(), " member(s) (", *missing.begin(),
                   (missing.size() > 1 ? ", ..." : ""), ") missed step ", StepName(),
                   "; the session ends with the ", ensemble_.trees.size(), " trees finished");
  if (ensemble_.trees.empty() ||
      (kind_ == BoostingStep::VALIDATION && ensemble_.trees.size() == 1)) {
    return absl::FailedPreconditionError(ended_early_);
  }
  // A tree whose validation step is incomplete is finished but not judged:
  // it stays out.
  if (kind_ == BoostingStep::VALIDATION) ensemble_.trees.pop_back();
  Finish();
  return absl::OkStatus();
}

absl::Status BoostingSession::Advance() {
  if (!StepComplete()) return absl::FailedPreconditionError("the step is not complete");
  std::vector<double> sum;
  if (kind_ != BoostingStep::KEYS) {
    sum = boosting::DecodeSum(sum_words_, static_cast<uint32_t>(members_.size()));
  }
  auto bad = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(
        absl::StrCat("the members' sum of step ", StepName(), ": ", s.message()));
  };
  switch (kind_) {
    case BoostingStep::KEYS:
      Enter(BoostingStep::MOMENTS);
      return absl::OkStatus();
    case BoostingStep::MOMENTS: {
      absl::StatusOr<trees::MomentsSummary> summary =
          trees::SummarizeMoments(sum, options_.numeric_width);
      if (!summary.ok()) return bad(summary.status());
      ensemble_.base_score = summary->base_score;
      grids_ = summary->grids;
      for (trees::SketchGrid& g : grids_) g.cells = kSketchCells;
      Enter(BoostingStep::SKETCH);
      return absl::OkStatus();
    }
    case BoostingStep::SKETCH: {
      absl::StatusOr<trees::FeatureBins> bins = trees::BinsFromSketch(
          grids_, sum, options_.categorical_buckets, options_.config.max_bins());
      if (!bins.ok()) return bad(bins.status());
      ensemble_.bins = *std::move(bins);
      builder_.emplace(ensemble_.bins, ParamsOf(options_.config));
      Enter(BoostingStep::LEVEL);
      return absl::OkStatus();
    }
    case BoostingStep::LEVEL: {
      if (absl::Status s = builder_->AddLevel(sum); !s.ok()) return bad(s);
      if (!builder_->done()) {
        Enter(BoostingStep::LEVEL);
        return absl::OkStatus();
      }
      ensemble_.trees.push_back(builder_->tree());
      Enter(BoostingStep::VALIDATION);
      return absl::OkStatus();
    }
    case BoostingStep::VALIDATION: {
      const double loss = sum[0], rows = sum[1];
      if (!std::isfinite(loss) || !std::isfinite(rows) || loss < 0 || rows < 0) {
        return bad(absl::InvalidArgumentError(
            absl::StrCat("loss ", loss, " over ", rows, " rows is not a loss")));
      }
      bool stop = ensemble_.trees.size() >= options_.config.trees();
      if (rows >= 1) {
        const double mean = loss / rows;
        validation_loss_.push_back(mean);
        if (best_trees_ == 0 || mean < best_loss_) {
          best_loss_ = mean;
          best_trees_ = ensemble_.trees.size();
        } else if (options_.config.early_stopping_trees() > 0 &&
                   ensemble_.trees.size() >= best_trees_ + options_.config.early_stopping_trees()) {
          stop = true;
        }
      }
      if (stop) {
        Finish();
        return absl::OkStatus();
      }
      builder_.emplace(ensemble_.bins, ParamsOf(options_.config));
      Enter(BoostingStep::LEVEL);
      return absl::OkStatus();
    }
    default:
      return absl::InternalError("the session has no step");
  }
}

void BoostingSession::Finish() {
  if (options_.config.early_stopping_trees() > 0 && best_trees_ > 0 &&
      best_trees_ < ensemble_.trees.size()) {
    ensemble_.trees.resize(best_trees_);
  }
  done_ = true;
  message_.Clear();
  sum_words_.clear();
  builder_.reset();
}

}  // namespace fedcustoms::coordinator
