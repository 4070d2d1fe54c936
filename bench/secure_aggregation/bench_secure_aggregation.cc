// bench/secure_aggregation: rounds of secure aggregation (common/secagg/) among
// n nodes in one process and one thread: each node's time per phase, the
// coordinator's, and the bytes each node sends, next to the same round in
// trusted mode. Then mask expansion next to `openssl speed -evp aes-128-ctr`,
// and Flower's SecAgg+ and FedAvg figures from its own benchmark. Everything is
// measured in this run. Exits non-zero if a round fails or a secure result is
// further from the weighted mean than the fixed-point codec's error bound.
//
//   build/bin/bench_secure_aggregation [--nodes 5,10,50] [--params 100000,1000000]
//       [--dropout 0,10,30] [--repeats 3] [--quick] [--flower DIR]
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_authority.h"
#include "common/secagg/fixed_point.h"
#include "common/secagg/key_advertisement.h"
#include "common/secagg/mask_generator.h"
#include "common/secagg/secagg_round.h"

// Set by CMakeLists.txt; Flower's benchmark is at <repo>/../shared/peers/flower.
#ifndef FEDCUSTOMS_SOURCE_DIR
#define FEDCUSTOMS_SOURCE_DIR "."
#endif

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using secagg::FixedPointCodec;
using secagg::KeyAdvertisementSigner;
using secagg::KeyAdvertisementVerifier;
using secagg::SealedShares;
using secagg::SecAggNodeRound;
using secagg::SignedAdvertisement;
using secagg::UnmaskShares;

constexpr char kTask[] = "bench";
constexpr char kPython[] = "/usr/bin/python3";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// "N001", "N002", ...: certificate CNs that sort in node order.
std::string NodeName(uint32_t index) {
  const std::string digits = std::to_string(index + 1);
  return "N" + std::string(digits.size() < 3 ? 3 - digits.size() : 0, '0') + digits;
}

// A throwaway federation PKI: a CA and one node certificate per node (ECDSA
// P-256, as the development PKI). The signers read their keys from files, so
// they live in a private temporary directory, removed with the object.
class BenchPki {
 public:
  static absl::StatusOr<std::unique_ptr<BenchPki>> Create(uint32_t nodes) {
    std::unique_ptr<BenchPki> out(new BenchPki(
        fs::temp_directory_path() / absl::StrCat("fedcustoms-bench-secagg-", ::getpid())));
    std::error_code error;
    fs::remove_all(out->dir_, error);
    if (!fs::create_directory(out->dir_, error)) {
      return absl::InternalError(absl::StrCat("cannot create ", out->dir_, ": ", error.message()));
    }
    fs::permissions(out->dir_, fs::perms::owner_all, error);
    absl::StatusOr<pki::KeyAndCertificate> ca =
        pki::GenerateCa("fedcustoms bench CA", std::chrono::hours(24));
    if (!ca.ok()) return ca.status();
    const std::string ca_path = out->dir_ + "/ca.pem";
    if (absl::Status s = pki::WritePemFiles(*ca, ca_path, out->dir_ + "/ca.key"); !s.ok()) {
      return s;
    }
    absl::StatusOr<std::unique_ptr<KeyAdvertisementVerifier>> verifier =
        KeyAdvertisementVerifier::Create(ca_path);
    if (!verifier.ok()) return verifier.status();
    out->verifier_ = *std::move(verifier);
    for (uint32_t i = 0; i < nodes; ++i) {
      pki::IssueOptions options;
      options.common_name = NodeName(i);
      absl::StatusOr<pki::KeyAndCertificate> leaf = pki::IssueCertificate(*ca, options);
      if (!leaf.ok()) return leaf.status();
      const std::string path = absl::StrCat(out->dir_, "/", options.common_name);
      if (absl::Status s = pki::WritePemFiles(*leaf, path + ".pem", path + ".key"); !s.ok()) {
        return s;
      }
      absl::StatusOr<std::unique_ptr<KeyAdvertisementSigner>> signer =
          KeyAdvertisementSigner::Create(path + ".key");
      if (!signer.ok()) return signer.status();
      out->signers_.push_back(*std::move(signer));
      out->cert_pems_.push_back(crypto::CertificateToPem(leaf->cert.get()));
    }
    return out;
  }

  ~BenchPki() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  BenchPki(const BenchPki&) = delete;
  BenchPki& operator=(const BenchPki&) = delete;

  const KeyAdvertisementVerifier& verifier() const { return *verifier_; }
  const KeyAdvertisementSigner& signer(uint32_t node) const { return *signers_[node]; }
  const std::string& cert_pem(uint32_t node) const { return cert_pems_[node]; }

 private:
  explicit BenchPki(std::string dir) : dir_(std::move(dir)) {}

  const std::string dir_;
  std::unique_ptr<KeyAdvertisementVerifier> verifier_;
  std::vector<std::unique_ptr<KeyAdvertisementSigner>> signers_;
  std::vector<std::string> cert_pems_;
};

// What the nodes bring to a round: float32 updates and sample counts.
struct Workload {
  std::vector<std::string> names;
  std::vector<std::vector<float>> updates;  // uniform in [-0.5, 0.5)
  std::vector<uint32_t> samples;            // uniform in [50, 500)
  uint64_t total_samples = 0;               // W, announced: node i's weight is n_i / W
};

Workload MakeWorkload(uint32_t nodes, size_t params) {
  std::mt19937 rng(static_cast<uint32_t>(nodes * 7919 + params));
  std::uniform_real_distribution<float> value(-0.5f, 0.5f);
  std::uniform_int_distribution<uint32_t> samples(50, 499);
  Workload w;
  for (uint32_t i = 0; i < nodes; ++i) {
    w.names.push_back(NodeName(i));
    w.updates.emplace_back(params);
    for (float& v : w.updates.back()) v = value(rng);
    w.samples.push_back(samples(rng));
    w.total_samples += w.samples.back();
  }
  return w;
}

// The nodes that vanish after sharing keys: `percent` of n rounded to the
// nearest node, picked by a seeded shuffle.
std::vector<bool> ChooseDropped(uint32_t nodes, uint32_t percent) {
  const auto count = static_cast<uint32_t>(std::lround(nodes * (percent / 100.0)));
  std::vector<uint32_t> order(nodes);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(nodes * 101 + percent));
  std::vector<bool> dropped(nodes, false);
  for (uint32_t i = 0; i < std::min(count, nodes); ++i) dropped[order[i]] = true;
  return dropped;
}

// Σ n_i Δ_i / Σ n_i over the survivors, in double: what a round must return.
std::vector<double> ExactMean(const Workload& w, const std::vector<bool>& dropped) {
  std::vector<double> mean(w.updates[0].size(), 0.0);
  double total = 0;
  for (size_t u = 0; u < w.updates.size(); ++u) {
    if (dropped[u]) continue;
    const double n = w.samples[u];
    total += n;
    const std::vector<float>& update = w.updates[u];
    for (size_t i = 0; i < mean.size(); ++i) mean[i] += n * update[i];
  }
  for (double& m : mean) m /= total;
  return mean;
}

// sum[i] += words[i] mod 2^32 (unsigned arithmetic wraps): the coordinator's
// accumulation of masked inputs as they arrive.
void AddWords(std::span<uint32_t> sum, std::span<const uint32_t> words) {
  uint32_t* __restrict s = sum.data();
  const uint32_t* __restrict w = words.data();
  for (size_t i = 0; i < sum.size(); ++i) s[i] += w[i];
}

// sum[i] += weight * update[i] in float32: FedAvg's fold in trusted mode.
void FoldWeighted(std::span<float> sum, std::span<const float> update, float weight) {
  float* __restrict s = sum.data();
  const float* __restrict x = update.data();
  for (size_t i = 0; i < sum.size(); ++i) s[i] += weight * x[i];
}

// Bytes of an unmasking response: for each revealed share, the name of the
// node it belongs to, x, the limb count and the limbs.
size_t UnmaskBytes(const UnmaskShares& response) {
  size_t bytes = 0;
  for (const auto* shares : {&response.self_mask_seeds, &response.mask_keys}) {
    for (const auto& [node, share] : *shares) bytes += node.size() + 4 + 4 + 8 * share.y.size();
  }
  return bytes;
}

// Time per phase of one secure round, ms. Node phases are sums over the nodes
// that ran them.
struct SecureTimes {
  // confirm: signing U3; verify: checking the survivors' signatures, which
  // unmask includes (timed apart to show the consistency check's cost).
  double advertise = 0, share = 0, masked = 0, confirm = 0, verify = 0, unmask = 0;
  // Signing the n-1 sealed shares a node sends and verifying the n-1 it
  // receives: inside share and masked, timed apart.
  double share_signatures = 0;
  double relay = 0, accumulate = 0, unmask_sum = 0, decode = 0;

  double Nodes() const { return advertise + share + masked + confirm + unmask; }
  double Coordinator() const { return relay + accumulate + unmask_sum + decode; }
  // Best of the repeats phase by phase, as Flower's benchmark times its stages.
  void KeepBest(const SecureTimes& o) {
    for (auto field : {&SecureTimes::advertise, &SecureTimes::share, &SecureTimes::masked,
                       &SecureTimes::confirm, &SecureTimes::verify, &SecureTimes::unmask,
                       &SecureTimes::share_signatures, &SecureTimes::relay,
                       &SecureTimes::accumulate, &SecureTimes::unmask_sum, &SecureTimes::decode}) {
      this->*field = std::min(this->*field, o.*field);
    }
  }
};

// Bytes one node sends, mean over the nodes that sent them. Payloads only: the
// proto framing (names, round ids, tags) adds a few dozen bytes per message.
struct SecureBytes {
  double advertise = 0;  // two X25519 public keys, certificate PEM, signature
  double shares = 0;     // the n-1 sealed share pairs
  double masked = 0;     // 4 (P + 1): the masked update and sample-count word
  double unmask = 0;     // see UnmaskBytes
  double Total() const { return advertise + shares + masked + unmask; }
};

struct SecureRound {
  SecureTimes times;
  SecureBytes bytes;
  double max_error = 0;        // max |DecodeMean's float32 - exact mean|
  double max_fixed_error = 0;  // the same for the unmasked sum decoded in double
  double bound = 0;            // FixedPointCodec::ErrorBound of the survivors' weight
  bool within_bound = false;   // see the check at the end of RunSecureRound
};

// One secure round: every node advertises and shares keys, the dropped ones
// then vanish, the survivors send masked inputs and unmask; the coordinator
// relays, accumulates, unmasks and decodes. The encoded update has one word
// more than the model, the node's sample count, so that the coordinator learns
// Σ n_i of the survivors (exact below 2^32) and from it their total weight
// Σ n_i / W, which decoding needs.
absl::StatusOr<SecureRound> RunSecureRound(const BenchPki& pki, const Workload& w,
                                           const std::vector<bool>& dropped,
                                           const std::vector<double>& exact, uint64_t round_id) {
  const auto n = static_cast<uint32_t>(w.names.size());
  const size_t params = w.updates[0].size();
  const uint32_t threshold = 2 * n / 3 + 1;  // the default threshold_fraction 2/3
  FixedPointCodec::Options options;
  options.max_nodes = n;
  absl::StatusOr<FixedPointCodec> codec = FixedPointCodec::Create(options);
  if (!codec.ok()) return codec.status();
  SecureRound out;
  SecureTimes& t = out.times;

  // Advertise keys.
  std::vector<std::unique_ptr<SecAggNodeRound>> rounds(n);
  for (uint32_t u = 0; u < n; ++u) {
    const auto start = Clock::now();
    absl::StatusOr<std::unique_ptr<SecAggNodeRound>> round =
        SecAggNodeRound::Create({kTask, round_id, w.names[u], threshold, 3, 2.0 / 3.0},
                                pki.signer(u), pki.verifier(), pki.cert_pem(u));
    t.advertise += MsSince(start);
    if (!round.ok()) return round.status();
    rounds[u] = *std::move(round);
    const SignedAdvertisement& ad = rounds[u]->advertisement();
    out.bytes.advertise += ad.keys.mask_key.size() + ad.keys.cipher_key.size() +
                           ad.cert_pem.size() + ad.signature.size();
  }
  auto start = Clock::now();
  std::vector<SignedAdvertisement> u1;
  std::map<std::string, secagg::AdvertisedKeys> u1_keys;
  for (const auto& round : rounds) {
    u1.push_back(round->advertisement());
    u1_keys[round->advertisement().keys.node] = round->advertisement().keys;
  }
  t.relay += MsSince(start);

  // Share keys: every node does, so U2 is all of them.
  std::map<std::string, std::vector<SealedShares>> inbox;
  for (uint32_t u = 0; u < n; ++u) {
    start = Clock::now();
    absl::StatusOr<std::vector<SealedShares>> shares = rounds[u]->ShareKeys(u1);
    t.share += MsSince(start);
    if (!shares.ok()) return shares.status();
    for (const SealedShares& s : *shares) out.bytes.shares += s.sealed.size();
    start = Clock::now();
    for (SealedShares& s : *shares) inbox[s.to].push_back(std::move(s));
    t.relay += MsSince(start);
  }
  const std::set<std::string> u2(w.names.begin(), w.names.end());

  // Masked input from the survivors, accumulated as it arrives into a sum the
  // coordinator allocates (and touches) when the round opens.
  std::vector<uint32_t> sum(params + 1, 0);
  std::set<std::string> u3;
  uint64_t survivor_samples = 0;
  for (uint32_t u = 0; u < n; ++u) {
    if (dropped[u]) continue;
    const std::vector<SealedShares>& received = inbox[w.names[u]];
    start = Clock::now();
    std::vector<uint32_t> encoded(params + 1);
    const double weight = static_cast<double>(w.samples[u]) / static_cast<double>(w.total_samples);
    absl::StatusOr<uint64_t> clipped =
        codec->Encode(w.updates[u], weight, std::span(encoded).first(params));
    if (!clipped.ok()) return clipped.status();
    encoded[params] = w.samples[u];
    absl::StatusOr<fedcustoms::secagg::MaskedInputResult> masked =
        rounds[u]->MaskedInput(received, encoded);
    t.masked += MsSince(start);
    if (!masked.ok()) return masked.status();
    if (!masked->complaints.empty()) return absl::InternalError("an honest share was refused");
    out.bytes.masked = static_cast<double>(sizeof(uint32_t) * masked->masked.size());
    start = Clock::now();
    AddWords(sum, masked->masked);
    t.accumulate += MsSince(start);
    u3.insert(w.names[u]);
    survivor_samples += w.samples[u];
  }

  // The consistency check: every survivor signs U3.
  std::map<std::string, std::string> signatures;
  for (uint32_t u = 0; u < n; ++u) {
    if (dropped[u]) continue;
    start = Clock::now();
    absl::StatusOr<std::string> signature = rounds[u]->ConfirmSurvivors(u3);
    t.confirm += MsSince(start);
    if (!signature.ok()) return signature.status();
    signatures[w.names[u]] = *std::move(signature);
  }
  // What each node's Unmask spends verifying them (with the certificates it
  // parsed when it checked the advertisements), timed apart once.
  std::vector<fedcustoms::crypto::X509Ptr> certs;
  std::map<std::string, uint32_t> index_of;
  for (uint32_t u = 0; u < n; ++u) {
    auto parsed = fedcustoms::crypto::CertificatesFromPem(pki.cert_pem(u), "bench");
    if (!parsed.ok()) return parsed.status();
    certs.push_back(std::move(parsed->front()));
    index_of[w.names[u]] = u;
  }
  // The sealed shares' signatures, timed apart once: every message signed by
  // its sender. Receivers verify one only when it does not open (the
  // complaint path), and the coordinator's check at ShareKeys is its own
  // cost, so an honest round's node pays for signing alone.
  start = Clock::now();
  for (const auto& [receiver, messages] : inbox) {
    for (const SealedShares& m : messages) {
      const uint32_t from = index_of.at(m.from);
      const std::string& digest = rounds[index_of.at(receiver)]->u1_digest();
      absl::StatusOr<std::string> signature =
          pki.signer(from).SignPayload(fedcustoms::secagg::SealedSharePayload(
              kTask, round_id, m.from, m.to, digest, m.sealed, m.key_commitment));
      if (!signature.ok()) return signature.status();
    }
  }
  t.share_signatures += MsSince(start);
  start = Clock::now();
  for (uint32_t u = 0; u < n; ++u) {
    if (dropped[u]) continue;
    absl::Status s = pki.verifier().VerifySurvivorList(kTask, round_id, w.names[u],
                                                       {u3, {}, rounds[u]->u1_digest()},
                                                       certs[u].get(), signatures[w.names[u]]);
    if (!s.ok()) return s;
  }
  t.verify += MsSince(start) * static_cast<double>(u3.size());  // every survivor verifies all

  // Unmasking.
  std::map<std::string, UnmaskShares> responses;
  for (uint32_t u = 0; u < n; ++u) {
    if (dropped[u]) continue;
    start = Clock::now();
    absl::StatusOr<UnmaskShares> response = rounds[u]->Unmask(u3, signatures);
    t.unmask += MsSince(start);
    if (!response.ok()) return response.status();
    out.bytes.unmask += static_cast<double>(UnmaskBytes(*response));
    responses[w.names[u]] = *std::move(response);
  }
  start = Clock::now();
  absl::StatusOr<std::vector<uint32_t>> unmasked =
      secagg::UnmaskSum(kTask, round_id, threshold, u1_keys, u2, u3, std::move(sum), responses);
  t.unmask_sum = MsSince(start);
  if (!unmasked.ok()) return unmasked.status();

  start = Clock::now();
  const double total_weight =
      static_cast<double>((*unmasked)[params]) / static_cast<double>(w.total_samples);
  std::vector<float> mean(params);
  absl::Status decoded = codec->DecodeMean(std::span(*unmasked).first(params), total_weight, mean);
  t.decode = MsSince(start);
  if (!decoded.ok()) return decoded;
  if ((*unmasked)[params] != survivor_samples) {
    return absl::DataLossError(absl::StrCat("the unmasked sample count is ", (*unmasked)[params],
                                            ", not ", survivor_samples));
  }

  // The unmasked sum decoded in double must be within the codec's bound; the
  // float32 DecodeMean returns may add half an ulp of rounding.
  out.bound = codec->ErrorBound(total_weight);
  out.within_bound = true;
  const double unit = codec->options().scale * total_weight;
  for (size_t i = 0; i < params; ++i) {
    const double fixed_error = std::abs(static_cast<int32_t>((*unmasked)[i]) / unit - exact[i]);
    const double error = std::abs(mean[i] - exact[i]);
    out.max_fixed_error = std::max(out.max_fixed_error, fixed_error);
    out.max_error = std::max(out.max_error, error);
    if (fixed_error > out.bound || error > out.bound + std::abs(exact[i]) * 0x1p-24) {
      out.within_bound = false;
    }
  }
  out.bytes.advertise /= n;
  out.bytes.shares /= n;
  out.bytes.unmask /= static_cast<double>(u3.size());
  return out;
}

// The trusted-mode reference covers only what trusted mode computes beyond the
// work both modes share (training, TLS, framing, hashing, validation): each
// survivor serializes its float32 update (a copy of 4P bytes into a wire
// buffer) and the coordinator folds Σ n_i Δ_i in float32 into a running sum
// allocated when the round opens, as FedAvg::Add does. It leaves out the
// division by Σ n_i, which FedAvg::Apply fuses with adding the mean to the
// global model; the secure side's decode includes its division. Dropped nodes
// send nothing, as in the secure round.
struct TrustedRound {
  double serialize = 0;  // ms, sum over the survivors
  double fold = 0;       // ms
  double max_error = 0;  // of Σ n_i Δ_i / Σ n_i against the exact mean

  double Total() const { return serialize + fold; }
  void KeepBest(const TrustedRound& o) {
    serialize = std::min(serialize, o.serialize);
    fold = std::min(fold, o.fold);
    max_error = std::max(max_error, o.max_error);
  }
};

TrustedRound RunTrustedRound(const Workload& w, const std::vector<bool>& dropped,
                             const std::vector<double>& exact) {
  const size_t params = w.updates[0].size();
  TrustedRound out;
  std::vector<float> sum(params, 0.0f);
  uint64_t samples = 0;
  for (size_t u = 0; u < w.updates.size(); ++u) {
    if (dropped[u]) continue;
    auto start = Clock::now();
    const std::vector<float> wire(w.updates[u]);
    out.serialize += MsSince(start);
    start = Clock::now();
    FoldWeighted(sum, wire, static_cast<float>(w.samples[u]));
    out.fold += MsSince(start);
    samples += w.samples[u];
  }
  for (size_t i = 0; i < params; ++i) {
    out.max_error = std::max(out.max_error, std::abs(sum[i] / samples - exact[i]));
  }
  return out;
}

// ApplyMasks of `masks` masks over `words` words already in memory: best of
// five runs after a warm-up, in GB/s of mask applied (masks x words x 4 bytes).
absl::StatusOr<double> MaskGBps(size_t words, size_t masks) {
  std::vector<uint32_t> data(words, 0);
  std::vector<secagg::SignedMask> seeds(masks);
  for (size_t m = 0; m < masks; ++m) {  // public: only the speed matters
    std::iota(seeds[m].seed.begin(), seeds[m].seed.end(), static_cast<uint8_t>(m + 1));
    seeds[m].sign = m % 2 ? secagg::MaskSign::kSubtract : secagg::MaskSign::kAdd;
  }
  double best = std::numeric_limits<double>::infinity();
  for (int run = 0; run < 6; ++run) {
    const auto start = Clock::now();
    absl::Status s = secagg::ApplyMasks(seeds, data);
    const double ms = MsSince(start);
    if (!s.ok()) return s;
    if (run > 0) best = std::min(best, ms);
  }
  return sizeof(uint32_t) * static_cast<double>(words * masks) / (best * 1e6);
}

struct OpensslSpeed {
  std::string block;  // the largest block size, e.g. "16384"
  double gbps = 0;
};

// `openssl speed -elapsed -evp aes-128-ctr` (one core): the column of the
// largest block size, converted from 1000s of bytes per second to GB/s.
absl::StatusOr<OpensslSpeed> OpensslAes128Ctr(int seconds) {
  std::string command = "openssl speed -elapsed -evp aes-128-ctr";
  if (seconds > 0) absl::StrAppend(&command, " -seconds ", seconds);
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run `", command, "`"));
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) text.append(buffer, n);
  if (const int status = pclose(pipe); status != 0) {
    return absl::UnavailableError(absl::StrCat("`", command, "` failed (status ", status, ")"));
  }
  // "type  16 bytes ... 16384 bytes", then "AES-128-CTR  920657.98k ... 9900572.67k".
  OpensslSpeed out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 3) continue;
    if (fields[0] == "type") {
      out.block = fields[fields.size() - 2];
    } else if (absl::EqualsIgnoreCase(fields[0], "aes-128-ctr")) {
      double kilobytes = 0;
      if (!absl::SimpleAtod(absl::StripSuffix(fields.back(), "k"), &kilobytes)) {
        return absl::InternalError(absl::StrCat("`", command, "`: cannot read \"", line, "\""));
      }
      out.gbps = kilobytes * 1000 / 1e9;
    }
  }
  if (out.gbps <= 0) {
    return absl::InternalError(absl::StrCat("`", command, "` printed no AES-128-CTR figures"));
  }
  return out;
}

std::string LastLine(absl::string_view text) {
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  return lines.empty() ? "" : std::string(absl::StripAsciiWhitespace(lines.back()));
}

// Runs Flower's own benchmark (`bench_flower.py --quick`) in `dir` and returns
// its JSON, or why it could not (e.g. a missing python3-numpy).
absl::StatusOr<json> RunFlower(const std::string& dir) {
  const std::string script = dir + "/bench_flower.py";
  if (!fs::exists(script)) return absl::NotFoundError(absl::StrCat("no ", script));
  if (::access(kPython, X_OK) != 0) return absl::NotFoundError(absl::StrCat("no ", kPython));
  const std::string base =
      fs::temp_directory_path() / absl::StrCat("fedcustoms-bench-flower-", ::getpid());
  if (absl::StrContains(script + base, "'")) {
    return absl::InvalidArgumentError(absl::StrCat("a quote in the path ", script));
  }
  const std::string out_path = base + ".json", log_path = base + ".log";
  const int status = std::system(absl::StrCat(kPython, " '", script, "' --quick --out '", out_path,
                                              "' >/dev/null 2>'", log_path, "'")
                                     .c_str());
  const absl::StatusOr<std::string> log = io::ReadFile(log_path);
  const absl::StatusOr<std::string> text = io::ReadFile(out_path);
  std::error_code ignored;
  fs::remove(out_path, ignored);
  fs::remove(log_path, ignored);
  if (status != 0) {
    const std::string last = log.ok() ? LastLine(*log) : "";
    return absl::UnavailableError(
        !last.empty() ? last
                      : absl::StrCat(script, " exited with status ",
                                     WIFEXITED(status) ? WEXITSTATUS(status) : status));
  }
  if (!text.ok()) return text.status();
  json parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::DataLossError("its --out file is not JSON");
  return parsed;
}

// The number at `path` in `j`, NaN if absent.
double Number(const json& j, std::initializer_list<const char*> path) {
  const json* node = &j;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return kNaN;
    node = &(*node)[key];
  }
  return node->is_number() ? node->get<double>() : kNaN;
}

struct ConfigResult {
  uint32_t nodes = 0;
  size_t params = 0;
  uint32_t dropout_percent = 0;
  uint32_t dropped = 0;
  SecureRound secure;  // best time of each phase over the repeats, worst error
  TrustedRound trusted;
};

const ConfigResult* Find(const std::vector<ConfigResult>& results, double nodes, double params,
                         double dropped) {
  for (const ConfigResult& r : results) {
    if (r.nodes == nodes && r.params == params && r.dropped == dropped) return &r;
  }
  return nullptr;
}

void PrintTables(const std::vector<ConfigResult>& results, int repeats) {
  std::printf(
      "\nSecure aggregation rounds, ms, one thread, best of %d rounds phase by phase. t = "
      "floor(2n/3)+1; dropped nodes vanish after sharing keys. Node: mean over the nodes that ran "
      "the phase (masked incl. fixed-point encoding; confirm = signing U3; unmask incl. "
      "verifying the survivors' signatures, of which verify). Total compute: all nodes' phases + "
      "the coordinator; trusted: the nodes' serialization + the coordinator's float fold. drop: "
      "percent asked (nodes dropped). shsig: signing the sealed shares a node sends (inside share; "
      "receivers verify only a share that does not open). check%%: confirm + verify + shsig as a "
      "share "
      "of a node's compute.\n",
      repeats);
  std::printf("%4s %8s %9s | %9s %7s %8s %7s %7s %7s %7s %6s | %7s %8s %8s %7s | %9s %8s %7s\n",
              "n", "P", "drop", "advertise", "share", "masked", "confirm", "verify", "unmask",
              "shsig", "check%", "relay", "accum", "unmask", "decode", "secure", "trusted",
              "ratio");
  for (const ConfigResult& r : results) {
    const SecureTimes& t = r.secure.times;
    const double active = r.nodes - r.dropped;
    const double secure = t.Nodes() + t.Coordinator();
    const double node_compute =
        t.advertise / r.nodes + t.share / r.nodes + (t.masked + t.confirm + t.unmask) / active;
    std::printf(
        "%4u %8zu %3u%% (%2u) | %9.3f %7.3f %8.3f %7.3f %7.3f %7.4f %7.3f %5.1f%% | %7.4f %8.3f "
        "%8.3f "
        "%7.3f | %9.2f %8.3f %6.1fx\n",
        r.nodes, r.params, r.dropout_percent, r.dropped, t.advertise / r.nodes, t.share / r.nodes,
        t.masked / active, t.confirm / active, t.verify / active, t.unmask / active,
        t.share_signatures / r.nodes,
        100 * ((t.confirm + t.verify) / active + t.share_signatures / r.nodes) / node_compute,
        t.relay, t.accumulate, t.unmask_sum, t.decode, secure, r.trusted.Total(),
        secure / r.trusted.Total());
  }
  std::printf(
      "\nBytes sent per node (payloads; mean over the nodes that sent them) against the trusted "
      "upload 4P, and accuracy: max |result - exact weighted mean| of the unmasked sum decoded "
      "in double (must be <= FixedPointCodec::ErrorBound) and of DecodeMean's float32 (may add "
      "half an ulp).\n");
  std::printf("%4s %8s %9s | %9s %8s %9s %6s %9s | %9s %5s | %9s %9s %9s %4s\n", "n", "P", "drop",
              "advertise", "shares", "masked", "unmask", "total", "trusted", "ratio", "err fixed",
              "bound", "err f32", "");
  for (const ConfigResult& r : results) {
    const SecureBytes& b = r.secure.bytes;
    const double trusted = 4.0 * static_cast<double>(r.params);
    std::printf(
        "%4u %8zu %3u%% (%2u) | %9.0f %8.0f %9.0f %6.0f %9.0f | %9.0f %5.3f | %9.2e "
        "%9.2e %9.2e %4s\n",
        r.nodes, r.params, r.dropout_percent, r.dropped, b.advertise, b.shares, b.masked, b.unmask,
        b.Total(), trusted, b.Total() / trusted, r.secure.max_fixed_error, r.secure.bound,
        r.secure.max_error, r.secure.within_bound ? "ok" : "FAIL");
  }
}

// A number for the Flower table: "-" if absent, tiny errors in e-notation.
std::string Cell(double v) {
  if (std::isnan(v)) return "-";
  char text[32];
  const double magnitude = std::abs(v);
  std::snprintf(text, sizeof(text),
                magnitude > 0 && magnitude < 1e-3 ? "%.2e" : (magnitude >= 1e4 ? "%.0f" : "%.4g"),
                v);
  return text;
}

// 100000 as "1e5"; other counts as they are.
std::string Count(double v) {
  const double exponent = std::log10(v);
  if (v >= 1000 && exponent == std::round(exponent)) return absl::StrCat("1e", exponent);
  return absl::StrCat(v);
}

void PrintFlowerRow(const std::string& what, const char* unit, double flower, double ours,
                    const std::string& ours_from) {
  const std::string ratio = std::isnan(flower) || std::isnan(ours) || ours <= 0
                                ? "-"
                                : Cell(std::round(flower / ours * 10) / 10) + "x";
  std::printf("  %-42s %-5s %10s %10s %8s   %s\n", what.c_str(), unit, Cell(flower).c_str(),
              Cell(ours).c_str(), ratio.c_str(), ours_from.c_str());
}

// Flower's figures from its JSON beside ours for the same n, P and dropped
// count ("-" where this run has no such configuration).
void PrintFlower(const json& flower, const std::vector<ConfigResult>& results) {
  std::printf(
      "\nFlower %s (Python/NumPy; bench_flower.py --quick, run now; best of 3, stages 0 and 1 "
      "median) beside ours. Its masks come from MT19937 seeded with 32 bits, its keys are P-384 "
      "and unsigned, its upload int64; ours AES-128-CTR, X25519 keys signed with the node "
      "certificate, uint32.\n",
      flower.value(json::json_pointer("/meta/flower_version_in_pyproject"), std::string("?"))
          .c_str());
  std::printf("  %-42s %-5s %10s %10s %8s   %s\n", "", "", "Flower", "ours", "Flower/",
              "ours from");
  std::printf("  %-42s %-5s %10s %10s %8s\n", "", "", "", "", "ours");
  constexpr double kMs = 1000;
  if (flower.contains("fedavg")) {
    for (const json& e : flower["fedavg"]) {
      const double n = Number(e, {"N"}), p = Number(e, {"P"});
      const ConfigResult* r = Find(results, n, p, 0);
      PrintFlowerRow(absl::StrCat("FedAvg aggregate_inplace N=", n, " P=", Count(p)), "ms",
                     Number(e, {"aggregate_inplace", "best_s"}) * kMs,
                     r ? r->trusted.Total() : kNaN,
                     "trusted total (serialize + fold; Flower: np.load + fold)");
    }
  }
  // One SecAgg+ node with k neighbours, beside our nodes in a round of k + 1.
  for (const auto& [section, entries] : flower.items()) {
    if (!absl::StartsWith(section, "secaggplus_client")) continue;
    for (const json& e : entries) {
      const double k = Number(e, {"k_neighbours"});
      const double p = std::round(Number(e, {"quantize_plus_mask_plus_mod", "params_per_s"}) *
                                  Number(e, {"quantize_plus_mask_plus_mod", "best_s"}));
      const ConfigResult* r = Find(results, k + 1, p, 0);
      const std::string what = absl::StrCat("SecAgg+ node k=", k, " P=", Count(p), ": ");
      const std::string ours = absl::StrCat("node mean, n=", k + 1, ", no dropout");
      PrintFlowerRow(what + "stage 0 keys", "ms", Number(e, {"stage0_setup_keygen_s_median"}) * kMs,
                     r ? r->secure.times.advertise / r->nodes : kNaN, ours);
      PrintFlowerRow(what + "stage 1 share keys", "ms",
                     Number(e, {"stage1_share_keys_s_median"}) * kMs,
                     r ? r->secure.times.share / r->nodes : kNaN, ours);
      PrintFlowerRow(what + "masked input", "ms",
                     Number(e, {"collect_masked_vectors_end_to_end", "best_s"}) * kMs,
                     r ? r->secure.times.masked / r->nodes : kNaN, ours);
      PrintFlowerRow(what + "masked upload", "bytes", Number(e, {"masked_upload_bytes"}),
                     r ? r->secure.bytes.masked : kNaN, ours);
    }
  }
  for (const auto& [section, entries] : flower.items()) {
    if (!absl::StartsWith(section, "secaggplus_server")) continue;
    for (const json& e : entries) {
      const double n = Number(e, {"N"}), p = Number(e, {"P"}), drop = Number(e, {"dropouts"});
      const double shares = Number(e, {"num_shares"});
      const ConfigResult* r = Find(results, n, p, drop);
      const std::string what =
          absl::StrCat("SecAgg+ server N=", n, " P=", Count(p), " drop ", drop,
                       shares < n ? absl::StrCat(" k=", shares - 1) : "", ": ");
      const std::string ours = absl::StrCat("n=", n, ", ", drop, " dropped, all-to-all: ");
      PrintFlowerRow(what + "collect", "ms",
                     Number(e, {"server_collect_masked_vectors_stage", "best_s"}) * kMs,
                     r ? r->secure.times.accumulate : kNaN, ours + "accumulate");
      PrintFlowerRow(what + "unmask", "ms", Number(e, {"server_unmask_stage", "best_s"}) * kMs,
                     r ? r->secure.times.unmask_sum + r->secure.times.decode : kNaN,
                     ours + "UnmaskSum + decode");
      PrintFlowerRow(what + "max error", "", Number(e, {"max_abs_err_vs_float64_weighted_mean"}),
                     r ? r->secure.max_error : kNaN, ours + "vs the exact weighted mean");
    }
  }
}

int Run(int argc, char** argv) {
  CLI::App app{"Secure aggregation round cost, next to trusted mode, openssl and Flower"};
  std::vector<uint32_t> nodes = {5, 10, 50};
  std::vector<size_t> params = {100000, 1000000};
  std::vector<uint32_t> dropouts = {0, 10, 30};
  int repeats = 3;
  bool quick = false;
  std::string flower_dir = FEDCUSTOMS_SOURCE_DIR "/../shared/peers/flower";
  app.add_option("--nodes", nodes, "node counts n")->delimiter(',')->check(CLI::Range(2, 999));
  app.add_option("--params", params, "parameter counts P")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000000));
  app.add_option("--dropout", dropouts, "percent of the nodes that drop after sharing keys")
      ->delimiter(',')
      ->check(CLI::Range(0, 99));
  app.add_option("--repeats", repeats, "rounds per configuration; the best time is kept")
      ->check(CLI::Range(1, 100));
  app.add_flag("--quick", quick, "n = 5,10 and P = 1e5 unless given; a shorter openssl run");
  app.add_option("--flower", flower_dir, "directory of Flower's bench_flower.py");
  CLI11_PARSE(app, argc, argv);
  if (quick && app.count("--nodes") == 0) nodes = {5, 10};
  if (quick && app.count("--params") == 0) params = {100000};

  std::printf(
      "Mask expansion (secagg::ApplyMasks: AES-128-CTR keystream + add mod 2^32 into data in "
      "memory), one core, best of 5, GB/s of mask applied:\n");
  absl::StatusOr<OpensslSpeed> openssl = OpensslAes128Ctr(quick ? 1 : 0);
  // One mask (the memory pass is paid by one keystream) and ten (a node of
  // n = 10: self mask + 9 pairwise masks in one pass).
  for (size_t masks : {size_t{1}, size_t{10}}) {
    for (size_t words : {size_t{1000000}, size_t{4000000}}) {
      absl::StatusOr<double> gbps = MaskGBps(words, masks);
      if (!gbps.ok()) {
        std::fprintf(stderr, "ApplyMasks: %s\n", std::string(gbps.status().message()).c_str());
        return 1;
      }
      std::printf("  %2zu mask%s x %7zu words: %6.2f GB/s", masks, masks == 1 ? " " : "s", words,
                  *gbps);
      if (openssl.ok()) std::printf(" = %3.0f%% of openssl", 100 * *gbps / openssl->gbps);
      std::printf("\n");
    }
  }
  if (openssl.ok()) {
    std::printf(
        "  reference: openssl speed -elapsed -evp aes-128-ctr, %s-byte blocks: %.2f GB/s "
        "(target: ours >= 70%%)\n",
        openssl->block.c_str(), openssl->gbps);
  } else {
    std::printf("  reference: openssl speed not run (%s)\n",
                std::string(openssl.status().message()).c_str());
  }
  std::fflush(stdout);

  absl::StatusOr<std::unique_ptr<BenchPki>> pki =
      BenchPki::Create(*std::max_element(nodes.begin(), nodes.end()));
  if (!pki.ok()) {
    std::fprintf(stderr, "test PKI: %s\n", std::string(pki.status().message()).c_str());
    return 1;
  }
  std::vector<ConfigResult> results;
  bool all_within_bound = true;
  uint64_t round_id = 0;
  for (uint32_t n : nodes) {
    for (size_t p : params) {
      const Workload workload = MakeWorkload(n, p);
      for (uint32_t percent : dropouts) {
        const auto start = Clock::now();
        const std::vector<bool> dropped = ChooseDropped(n, percent);
        ConfigResult r;
        r.nodes = n;
        r.params = p;
        r.dropout_percent = percent;
        r.dropped = static_cast<uint32_t>(std::count(dropped.begin(), dropped.end(), true));
        if (n - r.dropped < 2 * n / 3 + 1 || n < 3) {
          std::printf("n=%u drop %u%%: %u survivors, below the threshold %u; not run\n", n, percent,
                      n - r.dropped, 2 * n / 3 + 1);
          continue;
        }
        const std::vector<double> exact = ExactMean(workload, dropped);
        for (int repeat = 0; repeat < repeats; ++repeat) {
          absl::StatusOr<SecureRound> secure =
              RunSecureRound(**pki, workload, dropped, exact, ++round_id);
          if (!secure.ok()) {
            std::fprintf(stderr, "n=%u P=%zu drop %u%%: %s\n", n, p, percent,
                         std::string(secure.status().message()).c_str());
            return 1;
          }
          const TrustedRound trusted = RunTrustedRound(workload, dropped, exact);
          if (repeat == 0) {
            r.secure = *secure;
            r.trusted = trusted;
            continue;
          }
          r.secure.times.KeepBest(secure->times);
          r.secure.max_error = std::max(r.secure.max_error, secure->max_error);
          r.secure.max_fixed_error = std::max(r.secure.max_fixed_error, secure->max_fixed_error);
          r.secure.within_bound = r.secure.within_bound && secure->within_bound;
          r.trusted.KeepBest(trusted);
        }
        if (!r.secure.within_bound) all_within_bound = false;
        if (r.trusted.max_error > 1e-5) {
          std::fprintf(stderr, "n=%u P=%zu: the trusted reference is off by %g\n", n, p,
                       r.trusted.max_error);
          return 1;
        }
        std::fprintf(stderr, "n=%u P=%zu drop %u%%: %d rounds in %.1f s\n", n, p, percent, repeats,
                     MsSince(start) / 1000);
        results.push_back(r);
      }
    }
  }
  PrintTables(results, repeats);

  absl::StatusOr<json> flower = RunFlower(flower_dir);
  if (flower.ok()) {
    PrintFlower(*flower, results);
  } else {
    std::printf("\nFlower: not run (%s)\n", std::string(flower.status().message()).c_str());
  }
  if (!all_within_bound) {
    std::fprintf(stderr, "a secure result is outside the fixed-point error bound (FAIL above)\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  try {
    return fedcustoms::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_secure_aggregation: %s\n", e.what());
    return 1;
  }
}
