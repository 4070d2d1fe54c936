// fedcustoms pull: fetch a signed global model with an analyst certificate.
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analyst/model/model_puller.h"
#include "common/pki/dev_pki.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {
namespace {

// One line on the privacy guarantee of a pulled version, from its signed
// manifest's "privacy" block.
std::string DescribePrivacy(const std::string& privacy_json) {
  const nlohmann::json p = nlohmann::json::parse(privacy_json, nullptr, false);
  if (!p.is_object() || p.value("mechanism", "") != "dp-sgd") {
    return "privacy: none (trained without differential privacy)";
  }
  if (!p.contains("epsilon") || !p["epsilon"].is_number()) {
    return absl::StrCat("privacy: DP-SGD, but no guarantee: ",
                        p.value("caveat", std::string("no epsilon stated")));
  }
  std::string line = absl::StrFormat(
      "privacy: DP-SGD, epsilon <= %.3g per declaration row at delta %g (clip norm %g)",
      p["epsilon"].get<double>(), p.value("delta", 0.0), p.value("clip_norm", 0.0));
  if (p.contains("administrations") && p["administrations"].is_object()) {
    std::vector<std::string> parts;
    for (const auto& [code, entry] : p["administrations"].items()) {
      if (entry.is_object() && entry.contains("epsilon") && entry["epsilon"].is_number()) {
        parts.push_back(absl::StrFormat("%s %.3g", code, entry["epsilon"].get<double>()));
      }
    }
    if (!parts.empty()) absl::StrAppend(&line, "; by administration: ", absl::StrJoin(parts, ", "));
  }
  return line;
}

}  // namespace

std::vector<Command> AddPullCommand(CLI::App& app) {
  struct Options {
    std::string task = "risk", version = "released", out = "model", coordinator = "localhost:7443",
                pki = "pki", identity = "analyst";
  };
  auto o = std::make_shared<Options>();
  auto* pull = app.add_subcommand("pull", "fetch a signed global model (analyst certificate)");
  pull->add_option("--task", o->task)->capture_default_str();
  pull->add_option("--version", o->version,
                   "\"released\" (the best on validation), \"latest\" or a version number")
      ->capture_default_str();
  pull->add_option("--out", o->out, "output directory")->capture_default_str();
  pull->add_option("--coordinator", o->coordinator, "coordinator address")->capture_default_str();
  pull->add_option("--pki", o->pki,
                   "directory with ca.pem, <identity>.pem/.key and coordinator-signing.pub")
      ->capture_default_str();
  pull->add_option("--identity", o->identity, "certificate name in --pki (analyst or admin)")
      ->capture_default_str();

  auto run = [o] {
    analyst::PullOptions options;
    options.coordinator_address = o->coordinator;
    options.tls = pki::IdentityFiles(o->pki, o->identity);
    options.coordinator_public_key = o->pki + "/coordinator-signing.pub";
    options.task = o->task;
    options.out_dir = o->out;
    options.released = o->version == "released";
    if (o->version != "latest" && o->version != "released") {
      try {
        options.version = std::stoull(o->version);
      } catch (const std::exception&) {
        spdlog::error("--version: expected a number, \"released\" or \"latest\", got \"{}\"",
                      o->version);
        return 2;
      }
    }
    auto m = analyst::PullModel(options);
    if (!m.ok()) return ExitCode(m.status());
    spdlog::info("pulled {} v{} into {} (signature and SHA-256 verified)", m->task, m->version,
                 o->out);
    spdlog::info("{}", DescribePrivacy(m->privacy_json));
    return 0;
  };
  return {{pull, run}};
}

}  // namespace fedcustoms::tools
