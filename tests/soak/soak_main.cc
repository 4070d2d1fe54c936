// fedcustoms_soak: the soak test (ctest label "soak"; see docs/reliability.md). A real
// coordinator process and --nodes real node processes run --rounds rounds in
// mode SECURE while faults are injected at random (seeded): at every round
// that opens, each node with probability --fault-rate is killed with SIGKILL
// (and restarted a few seconds later, as its service manager would), stalled
// with SIGSTOP (and resumed 5-40 s later), or has its connection reset by a
// TCP proxy between the nodes and the coordinator. At the end it checks that
//   - every round in the ledger is completed or aborted, none left open, and
//     the configured number completed;
//   - every registry version verifies (signature, weights hash);
//   - the model improved: the last round's mean hold-out PR-AUC is above the
//     first completed round's;
//   - the coordinator's memory stayed flat (resident set of the last quarter
//     of rounds within 10 % + 16 MiB of the second quarter's; with fewer
//     than four rounds, the last round against the first half), no file
//     descriptor leaked (count once the nodes have gone against the count
//     before they came, slack 4), and no thread leaked (its own threads the
//     same before and after; the thread count under load not growing from
//     the same warmed-up window to the last, slack 4: gRPC's pools grow
//     with load to a bounded size and keep a few).
// It prints the figures and writes them to <workdir>/soak.json; the exit code
// is 0 only if every check passed.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/tls/credentials.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"
#include "tests/soak/fault_proxy.h"
#include "tools/demo/child_process.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms::soak {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  uint32_t nodes = 50;
  uint32_t rounds = 20;
  double fault_rate = 0.1;
  uint64_t seed = 1;
  uint64_t rows = 2000;
  std::string workdir = "soak";
};

// What /proc says of a process.
struct ProcessSample {
  uint64_t rss_kib = 0;
  uint32_t threads = 0;
  uint32_t fds = 0;
  // Threads by name (/proc/<pid>/task/*/comm), to tell a pool from a leak.
  std::map<std::string, int> thread_names;
};

ProcessSample Sample(pid_t pid) {
  ProcessSample s;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") status >> s.rss_kib;
    if (key == "Threads:") status >> s.threads;
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  for (auto it = fs::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::ifstream comm(it->path() / "comm");
    std::string name;
    std::getline(comm, name);
    ++s.thread_names[name];
  }
  return s;
}

// Administration codes AA, AB, ... (two letters each).
std::vector<std::string> Codes(uint32_t n) {
  std::vector<std::string> codes;
  for (uint32_t i = 0; i < n; ++i) {
    codes.push_back(std::string{static_cast<char>('A' + i / 26), static_cast<char>('A' + i % 26)});
  }
  return codes;
}

struct Node {
  std::string admin;
  std::string config;
  std::unique_ptr<tools::ChildProcess> process;
  int runs = 0;
  // A pending action: restart (after a kill) or SIGCONT (after a stall).
  enum class Pending { kNone, kRestart, kResume } pending = Pending::kNone;
  Clock::time_point due;
};

class Soak {
 public:
  explicit Soak(Options o) : o_(std::move(o)), rng_(o_.seed) {}

  // Runs the federation with faults; returns the process exit code.
  int Run() {
    if (absl::Status s = Setup(); !s.ok()) return Fail(s.ToString());
    if (absl::Status s = Drive(); !s.ok()) return Fail(s.ToString());
    return Check();
  }

 private:
  int Fail(const std::string& why) {
    std::fprintf(stderr, "soak: %s\n", why.c_str());
    return 1;
  }

  std::string Root() const { return fs::absolute(o_.workdir).string(); }

  absl::Status Setup() {
    const std::string root = Root();
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::create_directories(root + "/logs", ec);
    admins_ = Codes(o_.nodes);
    pki::DevPkiOptions pki;
    pki.dir = root + "/pki";
    pki.admins = admins_;
    if (absl::Status s = pki::InitDevPki(pki); !s.ok()) return s;
    synth::SynthOptions data;
    data.admins = admins_;
    data.rows = o_.rows;
    data.seed = o_.seed;
    data.out_dir = root + "/data";
    if (absl::Status s = synth::SynthesizeDeclarations(data); !s.ok()) return s;

    // A small model, so 50 nodes train on 2 cores; enough nodes per round
    // that 10 % faults rarely abort one, and deadlines that cut stalls.
    const uint32_t min_nodes = std::max<uint32_t>(3, o_.nodes * 6 / 10);
    json task{{"name", "risk"},
              {"schema_file", root + "/data/" + admins_[0] + "/declarations.schema.json"},
              {"min_nodes", min_nodes},
              {"rounds", o_.rounds},
              {"round_deadline_seconds", 90},
              {"eval_deadline_seconds", 45},
              {"gather_seconds", 3},
              {"training", {{"local_epochs", 2}, {"batch_size", 64}, {"learning_rate", 0.003}}},
              {"model", {{"hidden_units", {16}}, {"embedding_dim", 4}}}};
    json coordinator = tools::DevCoordinatorConfig(root + "/pki", root, json::array({task}));
    coordinator["stream_idle_seconds"] = 15;
    coordinator["threads"] = 1;
    if (absl::Status s = tools::WriteJsonFile(root + "/coordinator.json", coordinator); !s.ok())
      return s;
    auto running = tools::StartCoordinatorProcess(root + "/coordinator.json", root + "/state/port",
                                                  root + "/logs/coordinator.log");
    if (!running.ok()) return running.status();
    coordinator_ = std::move(running->process);
    coordinator_port_ = running->port;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    before_nodes_ = Sample(coordinator_->pid());

    auto proxy = FaultProxy::Start(std::stoi(coordinator_port_));
    if (!proxy.ok()) return proxy.status();
    proxy_ = *std::move(proxy);
    for (const std::string& admin : admins_) {
      const std::string dir = root + "/nodes/" + admin;
      fs::create_directories(dir, ec);
      json config = tools::DevNodeConfig(root + "/pki", admin,
                                         absl::StrCat("localhost:", proxy_->port()), "risk", dir);
      tools::AddDeclarationFiles(config, root + "/data", admin);
      config["max_backoff_seconds"] = 5;
      Node n;
      n.admin = admin;
      n.config = dir + "/node.json";
      if (absl::Status s = tools::WriteJsonFile(n.config, config); !s.ok()) return s;
      nodes_.push_back(std::move(n));
    }
    for (Node& n : nodes_) {
      if (absl::Status s = StartNode(n); !s.ok()) return s;
    }
    auto credentials = tls::MakeChannelCredentials(pki::IdentityFiles(root + "/pki", "admin"));
    if (!credentials.ok()) return credentials.status();
    admin_ = v1::AdminService::NewStub(
        grpc::CreateChannel("localhost:" + coordinator_port_, *credentials));
    return absl::OkStatus();
  }

  absl::Status StartNode(Node& n) {
    auto process = tools::ChildProcess::Spawn(
        {tools::ExecutableDir() + "/fedcustoms-node", "--config", n.config},
        absl::StrCat(Root(), "/logs/node-", n.admin, "-", ++n.runs, ".log"));
    if (!process.ok()) return process.status();
    n.process = *std::move(process);
    return absl::OkStatus();
  }

  // Faults for the round that just opened.
  void InjectFaults() {
    std::uniform_real_distribution<double> coin(0, 1);
    std::uniform_int_distribution<int> kind(0, 2);
    std::uniform_int_distribution<int> stall_seconds(5, 40);
    int resets = 0;
    for (Node& n : nodes_) {
      if (n.pending != Node::Pending::kNone || !n.process || n.process->Poll()) continue;
      if (coin(rng_) >= o_.fault_rate) continue;
      switch (kind(rng_)) {
        case 0:
          n.process->Signal(SIGKILL);
          n.process->Wait();
          n.pending = Node::Pending::kRestart;
          n.due = Clock::now() + std::chrono::seconds(3);
          ++kills_;
          break;
        case 1:
          n.process->Signal(SIGSTOP);
          n.pending = Node::Pending::kResume;
          n.due = Clock::now() + std::chrono::seconds(stall_seconds(rng_));
          ++stalls_;
          break;
        default:
          ++resets;
          break;
      }
    }
    resets_ += proxy_->ResetRandom(resets, rng_);
  }

  // Restarts killed nodes and resumes stalled ones whose time has come (all
  // of them when `all`).
  absl::Status SettlePending(bool all) {
    for (Node& n : nodes_) {
      if (n.pending == Node::Pending::kNone || (!all && Clock::now() < n.due)) continue;
      if (n.pending == Node::Pending::kRestart) {
        if (absl::Status s = StartNode(n); !s.ok()) return s;
      } else {
        n.process->Signal(SIGCONT);
      }
      n.pending = Node::Pending::kNone;
    }
    return absl::OkStatus();
  }

  absl::Status Drive() {
    const auto start = Clock::now();
    const auto give_up = start + std::chrono::seconds(240 * o_.rounds + 300);
    uint64_t seen_round = 0;
    uint32_t seen_finished_rounds = 0;
    while (true) {
      if (auto code = coordinator_->Poll()) {
        return absl::InternalError(absl::StrCat("the coordinator exited with code ", *code,
                                                "; see ", coordinator_->log_path()));
      }
      if (absl::Status s = SettlePending(false); !s.ok()) return s;
      for (Node& n : nodes_) {
        auto code =
            n.pending == Node::Pending::kNone && n.process ? n.process->Poll() : std::nullopt;
        if (code && *code != 0) {
          return absl::InternalError(absl::StrCat("node ", n.admin, " exited with code ", *code,
                                                  "; see ", n.process->log_path()));
        }
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::GetStatusResponse status;
      if (admin_->GetStatus(&context, v1::GetStatusRequest(), &status).ok() &&
          status.tasks_size() == 1) {
        const v1::TaskStatus& t = status.tasks(0);
        // Rounds can be short: faults go in as soon as a new round is seen,
        // whatever its phase (between rounds they hit polling nodes).
        if (t.round_id() > seen_round) {
          seen_round = t.round_id();
          InjectFaults();
        }
        const uint32_t finished = t.rounds_completed() + t.rounds_aborted();
        if (finished > seen_finished_rounds) {
          seen_finished_rounds = finished;
          samples_.push_back(Sample(coordinator_->pid()));
          std::printf(
              "round %llu: %u completed, %u aborted; faults so far %d kills, %d stalls, "
              "%d resets; coordinator %llu MiB, %u threads, %u fds\n",
              static_cast<unsigned long long>(t.round_id()), t.rounds_completed(),
              t.rounds_aborted(), kills_, stalls_, resets_,
              static_cast<unsigned long long>(samples_.back().rss_kib >> 10),
              samples_.back().threads, samples_.back().fds);
          std::fflush(stdout);
        }
        if (t.phase() == "finished") break;
      }
      if (Clock::now() > give_up) {
        return absl::DeadlineExceededError(
            absl::StrCat("the rounds did not finish; see ", Root(), "/logs"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // Every node comes back and exits once it sees the task finished.
    if (absl::Status s = SettlePending(true); !s.ok()) return s;
    for (Node& n : nodes_) {
      const std::optional<int> code = n.process->WaitFor(std::chrono::seconds(180));
      if (!code || *code != 0) {
        return absl::InternalError(
            absl::StrCat("node ", n.admin, " did not finish cleanly; see ", n.process->log_path()));
      }
    }
    seconds_ = std::chrono::duration<double>(Clock::now() - start).count();
    proxy_.reset();  // its connections go, as the nodes' did
    std::this_thread::sleep_for(std::chrono::seconds(5));
    after_nodes_ = Sample(coordinator_->pid());
    coordinator_->Signal(SIGTERM);
    const int code = coordinator_->Wait();
    if (code != 0) {
      return absl::InternalError(absl::StrCat("the coordinator exited with code ", code,
                                              " on SIGTERM; see ", coordinator_->log_path()));
    }
    return absl::OkStatus();
  }

  int Check() {
    const std::string root = Root();
    json report;
    std::vector<std::string> failures;
    auto check = [&](bool ok, const std::string& what) {
      std::printf("  [%s] %s\n", ok ? "ok" : "FAIL", what.c_str());
      if (!ok) failures.push_back(what);
    };

    auto ledger = coordinator::RoundLedger::Open(root + "/state/ledger.sqlite");
    if (!ledger.ok()) return Fail(ledger.status().ToString());
    auto rounds = (*ledger)->List("risk");
    auto open = (*ledger)->OpenRounds("risk");
    if (!rounds.ok() || !open.ok()) return Fail("cannot read the ledger");
    uint32_t completed = 0, aborted = 0;
    std::vector<double> pr_auc;
    for (const coordinator::RoundRecord& r : *rounds) {
      if (r.status == "completed") {
        ++completed;
        json m = json::parse(r.metrics_json, nullptr, false);
        if (m.is_object() && m.contains("pr_auc")) pr_auc.push_back(m["pr_auc"].get<double>());
      } else if (r.status == "aborted") {
        ++aborted;
        report["aborted_reasons"].push_back(r.reason);
      }
    }
    std::printf("soak: %u nodes, %u rounds in %.0f s; faults: %d kills, %d stalls, %d resets\n",
                o_.nodes, o_.rounds, seconds_, kills_, stalls_, resets_);
    check(open->empty() && completed + aborted == rounds->size(),
          absl::StrCat("every round is completed or aborted (", completed, " completed, ", aborted,
                       " aborted, ", open->size(), " left open)"));
    check(completed == o_.rounds, absl::StrCat(completed, " of ", o_.rounds, " rounds completed"));

    auto verifier = crypto::Ed25519Verifier::Create(root + "/pki/coordinator-signing.pub");
    if (!verifier.ok()) return Fail(verifier.status().ToString());
    auto registry = coordinator::ModelRegistry::Open(root + "/registry", nullptr, verifier->get());
    if (!registry.ok()) return Fail(registry.status().ToString());
    const std::vector<uint64_t> versions = (*registry)->Versions("risk");
    bool all_verify = true;
    for (uint64_t v : versions) all_verify = all_verify && (*registry)->LoadWeights("risk", v).ok();
    check(all_verify && versions.size() == completed + 1u,
          absl::StrCat(versions.size(), " registry versions, every one verifies"));

    const bool improved = pr_auc.size() >= 2 && pr_auc.back() > pr_auc.front();
    check(improved, absl::StrCat("the model improved: mean hold-out PR-AUC ",
                                 pr_auc.empty() ? 0.0 : pr_auc.front(), " after the first round, ",
                                 pr_auc.empty() ? 0.0 : pr_auc.back(), " after the last"));

    // Memory and threads compare a warmed-up window of rounds with the last
    // one: the second quarter against the last quarter, or with fewer than
    // four samples (--rounds 2 or 3) the first half against the last round.
    const size_t n = samples_.size();
    const size_t q = n / 4;
    const size_t warm_from = n >= 4 ? q : 0, warm_to = n >= 4 ? 2 * q : n / 2;
    const size_t late_from = n >= 4 ? 3 * q : (n == 0 ? 0 : n - 1);
    const bool windows = n >= 2;
    auto rounds_label = [](size_t from, size_t to) {
      return to == from + 1 ? absl::StrCat("round ", to)
                            : absl::StrCat("rounds ", from + 1, "-", to);
    };
    auto max_rss = [&](size_t from, size_t to) {
      uint64_t m = 0;
      for (size_t i = from; i < to && i < n; ++i) m = std::max(m, samples_[i].rss_kib);
      return m;
    };
    const uint64_t warm = max_rss(warm_from, warm_to);
    const uint64_t late = max_rss(late_from, n);
    check(windows && late <= warm + warm / 10 + (16u << 10),
          absl::StrCat("coordinator memory flat: ", warm >> 10, " MiB (",
                       rounds_label(warm_from, warm_to), "), ", late >> 10, " MiB (",
                       rounds_label(late_from, n), ")"));
    check(after_nodes_.fds <= before_nodes_.fds + 4,
          absl::StrCat("no file descriptor leaked: ", before_nodes_.fds, " before the nodes, ",
                       after_nodes_.fds, " after them"));
    // Threads: the coordinator's own (named after its binary) must be the
    // same before the nodes came and after they left; gRPC's pools (timer,
    // sync-server pollers) grow with load to a bounded size and may keep a
    // few, so under load the count must not grow from the second quarter of
    // rounds to the last: a leak would.
    auto own = [](const ProcessSample& s) {
      auto it = s.thread_names.find("fedcustoms-coor");
      return it == s.thread_names.end() ? 0 : it->second;
    };
    auto max_threads = [&](size_t from, size_t to) {
      uint32_t m = 0;
      for (size_t i = from; i < to && i < n; ++i) m = std::max(m, samples_[i].threads);
      return m;
    };
    check(own(after_nodes_) == own(before_nodes_),
          absl::StrCat("no coordinator thread leaked: ", own(before_nodes_),
                       " of its own before the nodes, ", own(after_nodes_), " after them (all: ",
                       before_nodes_.threads, " and ", after_nodes_.threads, ")"));
    check(windows && max_threads(late_from, n) <= max_threads(warm_from, warm_to) + 4,
          absl::StrCat("threads flat under load: ", max_threads(warm_from, warm_to), " (",
                       rounds_label(warm_from, warm_to), "), ", max_threads(late_from, n), " (",
                       rounds_label(late_from, n), ")"));

    report["nodes"] = o_.nodes;
    report["rounds"] = o_.rounds;
    report["fault_rate"] = o_.fault_rate;
    report["seed"] = o_.seed;
    report["seconds"] = seconds_;
    report["faults"] = {{"kills", kills_}, {"stalls", stalls_}, {"resets", resets_}};
    report["completed"] = completed;
    report["aborted"] = aborted;
    report["pr_auc_by_round"] = pr_auc;
    json rss = json::array();
    for (const ProcessSample& s : samples_) rss.push_back(s.rss_kib >> 10);
    report["coordinator_rss_mib_by_round"] = rss;
    report["coordinator_fds"] = {{"before_nodes", before_nodes_.fds},
                                 {"after_nodes", after_nodes_.fds}};
    report["coordinator_threads"] = {{"before_nodes", before_nodes_.threads},
                                     {"after_nodes", after_nodes_.threads}};
    report["coordinator_thread_names"] = {{"before_nodes", before_nodes_.thread_names},
                                          {"after_nodes", after_nodes_.thread_names}};
    report["failures"] = failures;
    if (absl::Status s = tools::WriteJsonFile(root + "/soak.json", report); !s.ok()) {
      return Fail(s.ToString());
    }
    std::printf("soak: %s (figures in %s/soak.json)\n", failures.empty() ? "passed" : "FAILED",
                root.c_str());
    return failures.empty() ? 0 : 1;
  }

  const Options o_;
  std::mt19937_64 rng_;
  std::vector<std::string> admins_;
  std::unique_ptr<tools::ChildProcess> coordinator_;
  std::string coordinator_port_;
  std::unique_ptr<FaultProxy> proxy_;
  std::vector<Node> nodes_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::vector<ProcessSample> samples_;
  ProcessSample before_nodes_;
  ProcessSample after_nodes_;
  int kills_ = 0;
  int stalls_ = 0;
  int resets_ = 0;
  double seconds_ = 0;
};

}  // namespace
}  // namespace fedcustoms::soak

int main(int argc, char** argv) {
  fedcustoms::soak::Options o;
  CLI::App app{"fedcustoms_soak: many nodes, many rounds, random faults; checks nothing leaks"};
  app.add_option("--nodes", o.nodes, "node processes (default 50)")->check(CLI::Range(3, 500));
  app.add_option("--rounds", o.rounds, "rounds to complete (default 20)")
      ->check(CLI::Range(2, 1000));
  app.add_option("--fault-rate", o.fault_rate, "per node and round (default 0.1)")
      ->check(CLI::Range(0.0, 0.5));
  app.add_option("--seed", o.seed, "faults and data (default 1)");
  app.add_option("--rows", o.rows, "rows of the largest administration (default 2000)")
      ->check(CLI::Range(200, 1000000));
  app.add_option("--workdir", o.workdir, "fresh directory for everything (default ./soak)");
  CLI11_PARSE(app, argc, argv);
  try {
    return fedcustoms::soak::Soak(o).Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
    return 1;
  }
}
