// bench/transfer: model download and update upload throughput through the real
// node service (a coordinator process, mutual TLS 1.3 on loopback), for 10, 100
// and 400 MB models, next to `openssl speed -evp aes-256-gcm` on one core
// measured in the same run, plus the peak resident memory of both processes
// (the coordinator's over the whole round: start, broadcast, upload,
// aggregation, publication).
//
//   build/bin/bench_transfer [--sizes-mb 10,100,400] [--downloads 3] [--workdir DIR]
#include <signal.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/transfer/raw_tls_stream.h"
#include "common/data/declaration_schema.h"
#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "common/tensor/tensor_codec.h"
#include "common/tls/credentials.h"
#include "node/client/coordinator_client.h"
#include "tools/demo/child_process.h"

namespace fs = std::filesystem;
using fedcustoms::tools::ChildProcess;
using nlohmann::json;

namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// VmHWM of a process in MiB.
double PeakRssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

// Single-core AES-256-GCM throughput at 16 KiB blocks, MB/s, from `openssl speed`.
double OpensslAesGcmMBps() {
  FILE* pipe = popen("openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2 2>/dev/null", "r");
  if (!pipe) return -1;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  pclose(pipe);
  // Last line: "AES-256-GCM  <rate>k" (1000s of bytes per second).
  std::istringstream lines(out);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (line.find("AES-256-GCM") != std::string::npos ||
        line.find("aes-256-gcm") != std::string::npos) {
      last = line;
    }
  }
  std::istringstream fields(last);
  std::string field, value;
  while (fields >> field) value = field;
  if (value.empty()) return -1;
  if (value.back() == 'k') value.pop_back();
  double kilobytes = 0;
  if (!absl::SimpleAtod(value, &kilobytes)) return -1;
  return kilobytes * 1000.0 / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint64_t> sizes_mb = {10, 100, 400};
  std::string workdir = fs::temp_directory_path() / absl::StrCat("fedcustoms-bench-", getpid());
  bool keep_workdir = false;  // a --workdir given by the user is kept (logs)
  int downloads = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--sizes-mb") {
      sizes_mb.clear();
      for (absl::string_view s : absl::StrSplit(argv[i + 1], ',')) {
        uint64_t v = 0;
        if (!absl::SimpleAtoi(s, &v)) {
          std::fprintf(stderr, "--sizes-mb: bad number \"%s\"\n", std::string(s).c_str());
          return 2;
        }
        sizes_mb.push_back(v);
      }
    } else if (flag == "--downloads") {
      if (!absl::SimpleAtoi(argv[i + 1], &downloads) || downloads < 1) {
        std::fprintf(stderr, "--downloads: expected a count >= 1\n");
        return 2;
      }
    } else if (flag == "--workdir") {
      workdir = argv[i + 1];
      keep_workdir = true;
    }
  }
  fs::remove_all(workdir);
  fs::create_directories(workdir);
  fedcustoms::pki::DevPkiOptions pki;
  pki.dir = workdir + "/pki";
  pki.admins = {"EE"};
  if (auto s = fedcustoms::pki::InitDevPki(pki); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  const double aes = OpensslAesGcmMBps();
  std::printf("reference: openssl speed -evp aes-256-gcm (1 core, 16 KiB blocks): %.0f MB/s\n",
              aes);
  std::vector<double> tls_runs;
  for (int i = 0; i < 3; ++i) {
    tls_runs.push_back(fedcustoms::bench::RawTlsLoopbackMBps(pki.dir, uint64_t{400} << 20));
  }
  std::sort(tls_runs.begin(), tls_runs.end());
  const double raw_tls = tls_runs[1];
  std::printf(
      "reference: bare TLS 1.3 stream over loopback, 400 MiB, no gRPC (2 threads, median "
      "of 3): %.0f MB/s\n",
      raw_tls);
  std::printf(
      "peak memory is the process high-water mark (VmHWM), LibTorch baseline included; "
      "this process before any model: %.0f MiB\n",
      PeakRssMiB(getpid()));
  std::printf("%8s %14s %14s %7s %7s %7s %7s %16s %16s\n", "model", "download MB/s", "upload MB/s",
              "dl/AES", "ul/AES", "dl/TLS", "ul/TLS", "coord peak MiB", "client peak MiB");

  const std::string bin = fedcustoms::tools::ExecutableDir();
  for (uint64_t mb : sizes_mb) {
    // A risk model dominated by one embedding table of the requested size:
    // buckets × 64 floats × 4 bytes.
    const uint64_t buckets = std::max<uint64_t>(2, mb * 1000 * 1000 / (64 * 4));
    const std::string dir = absl::StrCat(workdir, "/", mb, "mb");
    fs::create_directories(dir);
    json schema{{"columns",
                 {{{"name", "id"}, {"role", "ID"}},
                  {{"name", "value"}, {"role", "NUMERIC"}, {"log1p", true}},
                  {{"name", "code"}, {"role", "CATEGORICAL"}, {"hash_buckets", buckets}},
                  {{"name", "label"}, {"role", "LABEL"}}}}};
    (void)fedcustoms::io::WriteFileAtomically(dir + "/schema.json", schema.dump());
    json config{{"listen_address", "127.0.0.1:0"},
                {"tls",
                 {{"ca_cert", pki.dir + "/ca.pem"},
                  {"cert", pki.dir + "/coordinator.pem"},
                  {"key", pki.dir + "/coordinator.key"}}},
                {"signing_key", pki.dir + "/coordinator-signing.key"},
                {"registry_dir", dir + "/registry"},
                {"state_dir", dir + "/state"},
                {"port_file", dir + "/port"},
                {"tasks",
                 {{{"name", "risk"},
                   {"min_nodes", 1},
                   {"rounds", 1},
                   {"gather_seconds", 0},
                   {"round_deadline_seconds", 3600},
                   {"eval_deadline_seconds", 1},
                   {"schema_file", dir + "/schema.json"},
                   {"model", {{"hidden_units", {8}}, {"embedding_dim", 64}}}}}}};
    (void)fedcustoms::io::WriteFileAtomically(dir + "/coordinator.json", config.dump());
    auto coordinator = ChildProcess::Spawn(
        {bin + "/fedcustoms-coordinator", "--config", dir + "/coordinator.json"},
        dir + "/coordinator.log");
    if (!coordinator.ok()) return 1;
    std::string port;
    for (int i = 0; i < 1200 && port.empty(); ++i) {
      auto text = fedcustoms::io::ReadFile(dir + "/port");
      if (text.ok())
        port = *text;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if ((*coordinator)->Poll()) break;
    }
    if (port.empty()) {
      std::fprintf(stderr, "coordinator did not start; see %s/coordinator.log\n", dir.c_str());
      return 1;
    }
    fedcustoms::v1::NodeConfig node;
    node.set_coordinator_address("localhost:" + port);
    *node.mutable_tls() = fedcustoms::pki::IdentityFiles(pki.dir, "EE");
    auto client = fedcustoms::node::CoordinatorClient::Create(node);
    if (!client.ok()) return 1;
    auto loaded_schema = fedcustoms::data::LoadDeclarationSchema(dir + "/schema.json");
    if (!loaded_schema.ok()) return 1;
    fedcustoms::v1::JoinRequest join;
    join.add_tasks("risk");
    join.set_feature_schema_hash(fedcustoms::data::FeatureSchemaHash(*loaded_schema));
    join.mutable_data()->set_train_rows(1);
    if (auto joined = (*client)->Join(join); !joined.ok()) {
      std::fprintf(stderr, "%s\n", std::string(joined.status().message()).c_str());
      return 1;
    }
    fedcustoms::v1::TaskAssignment task;
    for (int i = 0; i < 60 && task.kind() != fedcustoms::v1::TaskAssignment::TRAIN; ++i) {
      auto a = (*client)->GetTask("risk", std::chrono::seconds(2));
      if (!a.ok()) {
        std::fprintf(stderr, "%s\n", std::string(a.status().message()).c_str());
        return 1;
      }
      task = *a;
    }
    fedcustoms::v1::DownloadModelRequest request;
    request.set_task("risk");
    request.set_round_id(task.round_id());
    request.set_model_version(task.model_version());
    // The download is repeated and the median taken: the machine is shared.
    std::vector<double> download_times;
    for (int i = 0; i < downloads; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto sha = (*client)->DownloadModel(request, dir + "/model.fct", 8ull << 30);
      download_times.push_back(Seconds(std::chrono::steady_clock::now() - t0));
      if (!sha.ok()) {
        std::fprintf(stderr, "%s\n", std::string(sha.status().message()).c_str());
        return 1;
      }
    }
    std::sort(download_times.begin(), download_times.end());
    const double download_s = download_times[download_times.size() / 2];
    const double bytes = static_cast<double>(fs::file_size(dir + "/model.fct"));
    double upload_s = 0;
    {
      // An update with exactly the model's layout (Δ = 0: the same bytes on
      // the wire as any update), written in the downloaded model's memory as a
      // node writes Δ in its trained model's.
      auto global = fedcustoms::tensor::DecodeFile(dir + "/model.fct");
      fs::remove(dir + "/model.fct");
      if (!global.ok()) return 1;
      fedcustoms::tensor::NamedTensors update;
      for (auto& [name, t] : *global) {
        if (fedcustoms::tensor::IsAggregatable(t)) update.emplace_back(name, t.zero_());
      }
      global->clear();
      fedcustoms::tensor::TensorEncoder encoder(update);
      fedcustoms::v1::UpdateHeader header;
      header.set_task("risk");
      header.set_round_id(task.round_id());
      header.set_model_version(task.model_version());
      header.set_sample_count(1);
      const auto t1 = std::chrono::steady_clock::now();
      auto sent = (*client)->UploadUpdate(header, encoder);
      upload_s = Seconds(std::chrono::steady_clock::now() - t1);
      if (!sent.ok()) {
        std::fprintf(stderr, "%s\n", std::string(sent.status().message()).c_str());
        return 1;
      }
    }
    // Let the coordinator finish the round (aggregate, write the candidate,
    // publish after the evaluation deadline) so its peak covers all of it.
    for (int i = 0; i < 600; ++i) {
      auto a = (*client)->GetTask("risk", std::chrono::seconds(2));
      if (!a.ok() || a->kind() == fedcustoms::v1::TaskAssignment::FINISHED) break;
    }
    const double coordinator_peak = PeakRssMiB((*coordinator)->pid());
    const double client_peak = PeakRssMiB(getpid());
    const double mbps_down = bytes / 1e6 / download_s;
    const double mbps_up = bytes / 1e6 / upload_s;
    std::printf("%5llu MB %14.1f %14.1f %6.0f%% %6.0f%% %6.0f%% %6.0f%% %16.0f %16.0f\n",
                static_cast<unsigned long long>(mb), mbps_down, mbps_up, 100 * mbps_down / aes,
                100 * mbps_up / aes, 100 * mbps_down / raw_tls, 100 * mbps_up / raw_tls,
                coordinator_peak, client_peak);
    std::fflush(stdout);
    (*coordinator)->Signal(SIGTERM);
    (*coordinator)->Wait();
  }
  if (!keep_workdir) fs::remove_all(workdir);
  return 0;
}
