#include "coordinator/config/coordinator_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/config/task_name.h"
#include "common/privacy/privacy_config.h"
#include "common/task/risk_task.h"
#include "common/task/task_model.h"

namespace fedcustoms::coordinator {
namespace {

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// Fills in the strategy's defaults and checks its ranges; the error names the
// field.
absl::Status FinalizeStrategy(v1::ServerStrategyConfig* s) {
  using Kind = v1::ServerStrategyConfig;
  if (s->kind() == Kind::KIND_UNSPECIFIED) s->set_kind(Kind::FEDAVG);
  const bool adaptive = s->kind() != Kind::FEDAVG && s->kind() != Kind::FEDAVGM;
  if (!s->has_server_learning_rate()) s->set_server_learning_rate(adaptive ? 0.01 : 1.0);
  if (!s->has_momentum()) s->set_momentum(0.9);
  if (!s->has_beta1()) s->set_beta1(0.9);
  if (!s->has_beta2()) s->set_beta2(0.99);
  if (!s->has_tau()) s->set_tau(1e-3);
  auto in = [](double v, double lo, double hi, bool lo_open, bool hi_open) {
    return std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  };
  auto out_of_range = [](const char* field, double v, const char* range) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", v, " is outside ", range));
  };
  if (!in(s->server_learning_rate(), 0, 100, true, false)) {
    return out_of_range("server_learning_rate", s->server_learning_rate(), "(0, 100]");
  }
  if (!in(s->momentum(), 0, 1, false, true))
    return out_of_range("momentum", s->momentum(), "[0, 1)");
  if (!in(s->beta1(), 0, 1, false, true)) return out_of_range("beta1", s->beta1(), "[0, 1)");
  if (!in(s->beta2(), 0, 1, false, true)) return out_of_range("beta2", s->beta2(), "[0, 1)");
  if (!in(s->tau(), 0, 1, true, false)) return out_of_range("tau", s->tau(), "(0, 1]");
  return absl::OkStatus();
}

// Fills in the robust aggregation defaults and refuses what mode SECURE
// cannot do.
absl::Status FinalizeRobustAggregation(v1::RobustAggregationConfig* r, v1::AggregationMode mode) {
  using Kind = v1::RobustAggregationConfig;
  if (r->kind() == Kind::KIND_UNSPECIFIED) r->set_kind(Kind::MEAN);
  if (mode == v1::SECURE && (r->kind() != Kind::MEAN || r->norm_bound() != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Kind::Kind_Name(r->kind()), r->norm_bound() != 0 ? " with norm_bound" : "",
        " needs each node's update, which the coordinator never sees in aggregation_mode "
        "SECURE (it learns only the sum); choose aggregation_mode TRUSTED explicitly to use it"));
  }
  if (r->trim_fraction() == 0) r->set_trim_fraction(0.1);
  if (!(r->trim_fraction() > 0 && r->trim_fraction() < 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trim_fraction: ", r->trim_fraction(), " is outside (0, 0.5)"));
  }
  if (r->byzantine_nodes() == 0) r->set_byzantine_nodes(1);
  if (r->byzantine_nodes() > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("byzantine_nodes: ", r->byzantine_nodes(), " is outside 1..100"));
  }
  if (!(std::isfinite(r->norm_bound()) && r->norm_bound() >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("norm_bound: ", r->norm_bound(), " must be 0 (off) or positive"));
  }
  if (r->max_memory_mib() == 0) r->set_max_memory_mib(4096);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::CoordinatorConfig> FinalizeCoordinatorConfig(v1::CoordinatorConfig c,
                                                                const std::string& source,
                                                                const std::string& base_dir) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", what));
  };
  if (c.listen_address().empty()) return bad("listen_address", "required, e.g. \"127.0.0.1:7443\"");
  for (auto [field, value] : {std::pair{"tls.ca_cert", c.mutable_tls()->mutable_ca_cert()},
                              std::pair{"tls.cert", c.mutable_tls()->mutable_cert()},
                              std::pair{"tls.key", c.mutable_tls()->mutable_key()},
                              std::pair{"signing_key", c.mutable_signing_key()},
                              std::pair{"registry_dir", c.mutable_registry_dir()},
                              std::pair{"state_dir", c.mutable_state_dir()}}) {
    if (value->empty()) return bad(field, "required");
    *value = Resolve(base_dir, *value);
  }
  if (!c.port_file().empty()) c.set_port_file(Resolve(base_dir, c.port_file()));
  if (!c.tls().crl().empty()) c.mutable_tls()->set_crl(Resolve(base_dir, c.tls().crl()));
  if (c.aggregation_mode() == v1::AGGREGATION_MODE_UNSPECIFIED) {
    c.set_aggregation_mode(v1::SECURE);
  }
  if (c.threads() > 256) return bad("threads", "must be 0 (every core) or 1..256");
  if (c.stream_idle_seconds() == 0) c.set_stream_idle_seconds(60);
  if (c.stream_idle_seconds() > 3600) {
    return bad("stream_idle_seconds",
               absl::StrCat("must be in 1..3600, found ", c.stream_idle_seconds()));
  }
  v1::ServerLimits* limits = c.mutable_limits();
  if (limits->max_threads() == 0) limits->set_max_threads(256);
  if (limits->max_threads() < 16 || limits->max_threads() > 4096) {
    return bad("limits.max_threads",
               absl::StrCat("must be in 16..4096, found ", limits->max_threads()));
  }
  if (limits->max_streams_per_connection() == 0) limits->set_max_streams_per_connection(32);
  if (limits->max_streams_per_connection() > 1000) {
    return bad("limits.max_streams_per_connection",
               absl::StrCat("must be in 1..1000, found ", limits->max_streams_per_connection()));
  }
  if (limits->max_calls_per_peer() == 0) limits->set_max_calls_per_peer(8);
  if (limits->max_calls_per_peer() < 2 || limits->max_calls_per_peer() > 1000) {
    return bad("limits.max_calls_per_peer",
               absl::StrCat("must be in 2..1000, found ", limits->max_calls_per_peer()));
  }
  if (c.tasks().empty()) return bad("tasks", "at least one task is required");
  std::set<std::string> names;
  for (int i = 0; i < c.tasks_size(); ++i) {
    v1::TaskConfig* t = c.mutable_tasks(i);
    const std::string prefix = absl::StrCat("tasks[", i, "]");
    if (absl::Status s = config::CheckTaskName(t->name()); !s.ok()) {
      return bad(prefix + ".name", std::string(s.message()));
    }
    if (!names.insert(t->name()).second) return bad(prefix + ".name", "duplicate task");
    if (t->min_nodes() == 0) t->set_min_nodes(c.aggregation_mode() == v1::SECURE ? 3 : 2);
    if (t->min_nodes() > 1000) return bad(prefix + ".min_nodes", "must be 1..1000");
    if (t->rounds() > 100000) return bad(prefix + ".rounds", "must be 0..100000 (0 = forever)");
    if (t->round_deadline_seconds() == 0) t->set_round_deadline_seconds(300);
    if (t->round_deadline_seconds() > 86400) {
      return bad(prefix + ".round_deadline_seconds", "must be 1..86400");
    }
    if (t->eval_deadline_seconds() == 0) t->set_eval_deadline_seconds(60);
    if (t->eval_deadline_seconds() > 86400) {
      return bad(prefix + ".eval_deadline_seconds", "must be 1..86400");
    }
    if (t->gather_seconds() > 3600) return bad(prefix + ".gather_seconds", "must be 0..3600");
    if (t->max_sample_count() == 0) t->set_max_sample_count(100000000);
    // Sample counts weight float32 sums and add up across nodes: beyond 2^53
    // they would no longer be exact (or could overflow).
    if (t->max_sample_count() > (uint64_t{1} << 53)) {
      return bad(
          prefix + ".max_sample_count",
          absl::StrCat("must be at most 2^53 (9007199254740992), found ", t->max_sample_count()));
    }
    if (t->max_nodes() == 0) t->set_max_nodes(std::max<uint32_t>(100, t->min_nodes()));
    if (t->max_nodes() < t->min_nodes() || t->max_nodes() > 1000) {
      return bad(prefix + ".max_nodes", absl::StrCat("must be in min_nodes..1000 (", t->min_nodes(),
                                                     "..1000), found ", t->max_nodes()));
    }
    if (t->max_train_rows() == 0) t->set_max_train_rows(10000000);
    if (t->max_train_rows() > (uint64_t{1} << 53)) {
      return bad(
          prefix + ".max_train_rows",
          absl::StrCat("must be at most 2^53 (9007199254740992), found ", t->max_train_rows()));
    }
    // W, the rows of a secure round's nodes, is a 32-bit word of the masked
    // layout: max_nodes nodes at the cap must fit it.
    constexpr uint64_t kMaxSecureWeight = (uint64_t{1} << 32) - 1;
    if (c.aggregation_mode() == v1::SECURE &&
        t->max_train_rows() > kMaxSecureWeight / t->max_nodes()) {
      return bad(
          prefix + ".max_train_rows",
          absl::StrCat(t->max_train_rows(), " x max_nodes ", t->max_nodes(),
                       " exceeds 2^32 - 1, the largest total weight of a secure round; "
                       "lower either (at most ",
                       kMaxSecureWeight / t->max_nodes(), " rows for ", t->max_nodes(), " nodes)"));
    }
    for (const auto& [node, cap] : t->max_train_rows_by_node()) {
      if (cap == 0 || cap > t->max_train_rows()) {
        return bad(
            absl::StrCat(prefix, ".max_train_rows_by_node[\"", node, "\"]"),
            absl::StrCat("must be in 1..max_train_rows (", t->max_train_rows(), "), found ", cap));
      }
    }
    v1::PublishGate* gate = t->mutable_publish_gate();
    if (gate->max_relative_change() == 0) gate->set_max_relative_change(50);
    if (!(std::isfinite(gate->max_relative_change()) && gate->max_relative_change() > 0)) {
      return bad(prefix + ".publish_gate.max_relative_change",
                 absl::StrCat("must be a positive number, found ", gate->max_relative_change()));
    }
    if (gate->min_reports() == 0) gate->set_min_reports(t->min_nodes());
    if (gate->min_reports() > t->max_nodes()) {
      return bad(prefix + ".publish_gate.min_reports",
                 absl::StrCat("must be in 1..max_nodes (", t->max_nodes(), "), found ",
                              gate->min_reports()));
    }
    if (gate->has_max_pr_auc_drop() &&
        !(gate->max_pr_auc_drop() >= 0 && gate->max_pr_auc_drop() <= 1)) {
      return bad(prefix + ".publish_gate.max_pr_auc_drop",
                 absl::StrCat("must be in [0, 1], found ", gate->max_pr_auc_drop()));
    }
    v1::SecureAggregationConfig* sa = t->mutable_secure_aggregation();
    if (sa->threshold_fraction() == 0) sa->set_threshold_fraction(2.0 / 3.0);
    if (!(sa->threshold_fraction() >= 0.5 && sa->threshold_fraction() < 1)) {
      return bad(
          prefix + ".secure_aggregation.threshold_fraction",
          absl::StrCat(sa->threshold_fraction(),
                       " is unsafe or impossible: it must be in [0.5, 1) so that the "
                       "threshold t = floor(fraction * n) + 1 exceeds n/2 and is at most n"));
    }
    if (sa->clip() == 0) sa->set_clip(4.0);
    if (!(std::isfinite(sa->clip()) && sa->clip() > 0 && sa->clip() <= 1e6)) {
      return bad(prefix + ".secure_aggregation.clip", "must be in (0, 1e6]");
    }
    if (sa->phase_deadline_seconds() == 0) sa->set_phase_deadline_seconds(30);
    if (sa->phase_deadline_seconds() > 86400) {
      return bad(prefix + ".secure_aggregation.phase_deadline_seconds", "must be 1..86400");
    }
    if (absl::Status s = FinalizeStrategy(t->mutable_strategy()); !s.ok()) {
      return bad(prefix + ".strategy", std::string(s.message()));
    }
    if (absl::Status s =
            FinalizeRobustAggregation(t->mutable_robust_aggregation(), c.aggregation_mode());
        !s.ok()) {
      return bad(prefix + ".robust_aggregation", std::string(s.message()));
    }
    if (const v1::RobustAggregationConfig& r = t->robust_aggregation();
        (r.kind() == v1::RobustAggregationConfig::KRUM ||
         r.kind() == v1::RobustAggregationConfig::MULTI_KRUM) &&
        t->min_nodes() <= 2 * r.byzantine_nodes() + 2) {
      return bad(prefix + ".min_nodes",
                 absl::StrCat(t->min_nodes(), " is too few for ",
                              v1::RobustAggregationConfig::Kind_Name(r.kind()),
                              " with byzantine_nodes ", r.byzantine_nodes(),
                              ": it needs more than ", 2 * r.byzantine_nodes() + 2, " updates"));
    }
    if (c.aggregation_mode() == v1::SECURE && t->min_nodes() < 3) {
      return bad(prefix + ".min_nodes",
                 absl::StrCat(t->min_nodes(),
                              " is below 3 in mode SECURE: with two nodes each learns the "
                              "other's update from the published model (and nodes refuse "
                              "rounds of fewer than 3 by default)"));
    }
    if (absl::Status s = task::FinalizeTaskModel(t); !s.ok()) {
      // The message starts with the model config's field name.
      return absl::Status(s.code(), absl::StrCat(source, ": ", prefix, ".", s.message()));
    }
    // Boosted trees sum histograms, not updates: neither DP-SGD nor a robust
    // rule over updates applies, and neither may be believed to.
    if (t->model().kind() == v1::RiskModelConfig::BOOSTED_TREES && t->kind() == v1::TASK_RISK) {
      if (t->privacy().mode() == v1::PrivacyConfig::DP_SGD) {
        return bad(prefix + ".privacy.mode",
                   "DP_SGD does not apply to model kind BOOSTED_TREES (no differential privacy "
                   "for boosted trees yet)");
      }
      const v1::RobustAggregationConfig::Kind rule = t->robust_aggregation().kind();
      if (rule != v1::RobustAggregationConfig::KIND_UNSPECIFIED &&
          rule != v1::RobustAggregationConfig::MEAN) {
        return bad(prefix + ".robust_aggregation.kind",
                   absl::StrCat(v1::RobustAggregationConfig::Kind_Name(rule),
                                " does not apply to model kind BOOSTED_TREES (its sums are of "
                                "histograms, not updates)"));
      }
    }
    if (t->kind() != v1::TASK_XRAY) {
      if (t->schema_file().empty()) return bad(prefix + ".schema_file", "required");
      t->set_schema_file(Resolve(base_dir, t->schema_file()));
    }
    if (absl::Status s = task::FinalizeTrainingConfig(t->mutable_training()); !s.ok()) {
      return bad(prefix + ".training", std::string(s.message()));
    }
    // X-ray images need no standardization statistics (the model encodes
    // pixels with fixed constants): no statistics query to account.
    if (absl::Status s =
            privacy::FinalizePrivacyConfig(t->mutable_privacy(), t->max_train_rows(), t->rounds(),
                                           /*numeric_statistics=*/t->kind() != v1::TASK_XRAY);
        !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(source, ": ", prefix, ".", s.message()));
    }
  }
  return c;
}

absl::StatusOr<v1::CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  v1::CoordinatorConfig config;
  if (absl::Status s = config::LoadProtoJson(path, &config); !s.ok()) return s;
  return FinalizeCoordinatorConfig(std::move(config), path,
                                   std::filesystem::path(path).parent_path().string());
}

}  // namespace fedcustoms::coordinator
