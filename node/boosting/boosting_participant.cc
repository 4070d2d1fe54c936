#include "node/boosting/boosting_participant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/boosting/boosting_keys.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/models/boosted_trees_state.h"
#include "common/pki/peer_identity.h"
#include "common/tensor/tensor_codec.h"
#include "common/trees/tree_ensemble.h"

namespace fedcustoms::node {
namespace {

using v1::BoostingStep;

absl::Status Refuse(const v1::TaskAssignment& a, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("boosting step ", a.boosting().step(), " of round ", a.round_id(), ": ", why));
}

absl::Status Malformed(const v1::TaskAssignment& a, absl::string_view field,
                       absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("boosting step ", a.boosting().step(),
                                                 " of round ", a.round_id(), ": field ", field,
                                                 ": ", why));
}

// Digests: each field length-prefixed or fixed-width, doubles by their bits.
class Digest {
 public:
  Digest& Text(std::string_view s) {
    U64(s.size());
    sha_.Update(s);
    return *this;
  }
  Digest& U64(uint64_t v) {
    sha_.Update(&v, sizeof v);
    return *this;
  }
  Digest& F64(double v) { return U64(std::bit_cast<uint64_t>(v)); }
  std::string Hex() {
    const crypto::Sha256Digest d = sha_.Final();
    return crypto::ToHex(d);
  }

 private:
  crypto::Sha256 sha_;
};

std::string BinsDigest(const trees::FeatureBins& bins, double base_score) {
  Digest d;
  d.Text("bins").F64(base_score).U64(bins.numeric_edges.size());
  for (const auto& edges : bins.numeric_edges) {
    d.U64(edges.size());
    for (float e : edges) d.U64(std::bit_cast<uint32_t>(e));
  }
  d.U64(bins.categorical_bins.size());
  for (uint32_t b : bins.categorical_bins) d.U64(b);
  return d.Hex();
}

std::string DataDigest(const data::DeclarationTable& table, const data::Split& split) {
  Digest d;
  d.Text("rows");
  for (const std::vector<int64_t>* rows : {&split.train, &split.validation}) {
    d.U64(rows->size());
    for (int64_t r : *rows) {
      const auto i = static_cast<size_t>(r);
      d.U64(std::bit_cast<uint32_t>(table.labels[i]));
      for (size_t j = 0; j < table.numeric_width(); ++j) {
        d.U64(std::bit_cast<uint32_t>(table.numeric[i * table.numeric_width() + j]));
      }
      for (size_t j = 0; j < table.categorical_width(); ++j) {
        d.U64(static_cast<uint64_t>(table.categorical[i * table.categorical_width() + j]));
      }
    }
  }
  return d.Hex();
}

}  // namespace

struct BoostingParticipant::Session {
  uint64_t round_id = 0;
  std::optional<secagg::X25519KeyPair> keys;
  v1::AdvertiseBoostingKeyRequest advertisement;
  double positive_weight = 0;
  std::unique_ptr<trees::BoostingRows> rows;
  // Set by the first LEVEL step; the rows keep a pointer to it.
  std::unique_ptr<trees::FeatureBins> bins;
  std::string bins_digest;
  uint64_t last_step = 0;
  uint32_t trees_done = 0;
  // The tree being grown as the last LEVEL step showed it, its open nodes
  // and how many levels it has had (empty between trees).
  bool tree_open = false;
  trees::Tree tree;
  std::vector<int32_t> open;
  uint32_t levels = 0;
  // The session's member list (serialized, pinned at the first vector step),
  // its sorted names and the masker made for it.
  std::string members_bytes;
  std::vector<std::string> member_names;
  std::optional<boosting::PairwiseMasker> masker;
  // The last vector step's content digest and what was sent for it, sent
  // again when the coordinator asks again (a reply lost on the way).
  std::string last_content;
  std::optional<Output> last_output;
  // The digest of every vector step's content so far: the masks of a step
  // are bound to the whole session, so a member shown another history (a
  // leaf value changed in an earlier tree) never cancels again.
  std::string transcript;
  // Open nodes of the current tree left out of this node's histograms
  // (small, or below a node left out): their children are left out too.
  std::set<int32_t> left_out;
};

namespace {

bool SameSplit(const trees::TreeNode& a, const trees::TreeNode& b) {
  return a.left == b.left && a.right == b.right && a.feature == b.feature &&
         a.categorical == b.categorical && a.threshold_bin == b.threshold_bin &&
         a.left_bins == b.left_bins;
}

// Whether `next` is `prev` grown by one level: the same splits where `prev`
// had them, new splits only at `prev_open` nodes, and every node after
// prev's a leaf (the children of those splits). `new_nodes` receives their
// indexes.
bool Extends(const trees::Tree& prev, const std::vector<int32_t>& prev_open,
             const trees::Tree& next, std::set<int32_t>* new_nodes) {
  if (next.nodes.size() < prev.nodes.size()) return false;
  const std::set<int32_t> open(prev_open.begin(), prev_open.end());
  for (size_t k = 0; k < prev.nodes.size(); ++k) {
    const trees::TreeNode& a = prev.nodes[k];
    const trees::TreeNode& b = next.nodes[k];
    if (!a.leaf()) {
      if (!SameSplit(a, b)) return false;
    } else if (!b.leaf() && !open.contains(static_cast<int32_t>(k))) {
      return false;
    }
  }
  for (size_t k = prev.nodes.size(); k < next.nodes.size(); ++k) {
    if (!next.nodes[k].leaf()) return false;
    new_nodes->insert(static_cast<int32_t>(k));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BoostingParticipant>> BoostingParticipant::Create(
    const v1::TlsFiles& tls, Options options, const data::DeclarationTable& table,
    const data::Split& split) {
  if (!table.has_labels()) {
    return absl::InvalidArgumentError("boosted trees learn from labels: the data has none");
  }
  absl::StatusOr<std::string> cert_pem = io::ReadFile(tls.cert());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<pki::PeerIdentity> identity = pki::PeerIdentityFromPem(*cert_pem, tls.cert());
  if (!identity.ok()) return identity.status();
  std::unique_ptr<secagg::KeyAdvertisementSigner> signer;
  std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier;
  std::unique_ptr<BoostingRecord> record;
  if (options.secure) {
    auto made_signer = secagg::KeyAdvertisementSigner::Create(tls.key());
    if (!made_signer.ok()) return made_signer.status();
    signer = *std::move(made_signer);
    auto made_verifier = secagg::KeyAdvertisementVerifier::Create(tls.ca_cert(), tls.crl());
    if (!made_verifier.ok()) return made_verifier.status();
    verifier = *std::move(made_verifier);
    if (options.record_path.empty()) {
      return absl::InvalidArgumentError("secure boosting needs a path for its record");
    }
    auto opened = BoostingRecord::Open(options.record_path);
    if (!opened.ok()) return opened.status();
    record = *std::move(opened);
  }
  return std::unique_ptr<BoostingParticipant>(new BoostingParticipant(
      identity->common_name, *std::move(cert_pem), std::move(options), table, split,
      std::move(signer), std::move(verifier), std::move(record)));
}

BoostingParticipant::BoostingParticipant(std::string self, std::string cert_pem, Options options,
                                         const data::DeclarationTable& table,
                                         const data::Split& split,
                                         std::unique_ptr<secagg::KeyAdvertisementSigner> signer,
                                         std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier,
                                         std::unique_ptr<BoostingRecord> record)
    : self_(std::move(self)),
      cert_pem_(std::move(cert_pem)),
      options_(std::move(options)),
      table_(table),
      split_(split),
      signer_(std::move(signer)),
      verifier_(std::move(verifier)),
      record_(std::move(record)) {}

BoostingParticipant::~BoostingParticipant() = default;

const std::string& BoostingParticipant::RowsDigest() {
  if (rows_digest_.empty()) rows_digest_ = DataDigest(table_, split_);
  return rows_digest_;
}

absl::StatusOr<BoostingParticipant::Output> BoostingParticipant::Step(const v1::TaskAssignment& a) {
  if (a.kind() != v1::TaskAssignment::BOOST || !a.has_boosting()) {
    return absl::InvalidArgumentError("not a BOOST assignment with a boosting step");
  }
  if (a.task() != options_.task)
    return Refuse(a, absl::StrCat("not this node's task ", options_.task));
  const BoostingStep& step = a.boosting();
  if (!session_ || session_->round_id != a.round_id()) {
    session_ = std::make_unique<Session>();  // the last session's key goes with it
    session_->round_id = a.round_id();
  }
  Session& s = *session_;
  Output out;
  if (step.kind() == BoostingStep::KEYS) {
    if (!options_.secure) return Refuse(a, "a node in mode TRUSTED has no session key");
    if (!s.keys) {
      absl::StatusOr<secagg::X25519KeyPair> keys = secagg::X25519KeyPair::Generate();
      if (!keys.ok()) return keys.status();
      absl::StatusOr<std::string> signature = signer_->SignPayload(
          boosting::BoostingKeyPayload(a.task(), a.round_id(), self_, keys->public_key()));
      if (!signature.ok()) return signature.status();
      s.keys = *std::move(keys);
      s.advertisement.set_task(a.task());
      s.advertisement.set_round_id(a.round_id());
      v1::BoostingKey* key = s.advertisement.mutable_key();
      key->set_node(self_);
      key->set_public_key(reinterpret_cast<const char*>(s.keys->public_key().data()),
                          s.keys->public_key().size());
      key->set_certificate_pem(cert_pem_);
      key->set_signature(*signature);
    }
    out.key = s.advertisement;
    return out;
  }
  // What every member of the step must have been shown alike; the masks are
  // derived from it.
  Digest content;
  content.Text("step").U64(static_cast<uint64_t>(step.kind())).U64(step.step()).U64(step.values());
  content.U64(static_cast<uint64_t>(step.grid_low_size()));
  for (double v : step.grid_low()) content.F64(v);
  content.U64(static_cast<uint64_t>(step.grid_high_size()));
  for (double v : step.grid_high()) content.F64(v);
  content.U64(step.grid_cells()).Text(step.ensemble()).U64(step.tree());
  content.U64(static_cast<uint64_t>(step.open_nodes_size()));
  for (int32_t n : step.open_nodes()) content.U64(static_cast<uint64_t>(static_cast<int64_t>(n)));
  content.F64(a.model().trees().positive_weight());
  for (const v1::BoostingKey& k : step.members()) content.Text(k.node()).Text(k.public_key());
  const std::string content_digest = content.Hex();
  if (step.step() == s.last_step && s.last_output && content_digest == s.last_content) {
    return *s.last_output;  // the same bytes again: nothing new leaves
  }
  if (step.step() <= s.last_step) {
    return Refuse(a, absl::StrCat("this node already took step ", s.last_step,
                                  " of this session; a step is taken once"));
  }
  std::vector<std::string> names;
  const boosting::PairwiseMasker* masker = nullptr;
  if (options_.secure) {
    absl::StatusOr<const boosting::PairwiseMasker*> made = MaskerFor(a, &names);
    if (!made.ok()) return made.status();
    masker = *made;
  }
  absl::StatusOr<std::vector<double>> vector = Compute(step, a);
  if (!vector.ok()) return vector.status();
  if (vector->size() != step.values()) {
    return Malformed(
        a, "values",
        absl::StrCat(step.values(), " announced, but the step's vector has ", vector->size()));
  }
  s.last_step = step.step();
  std::vector<uint32_t> words;
  if (options_.secure) {
    // Recorded before anything leaves: after a crash the node still knows
    // which members its rows were summed with.
    if (absl::Status r = record_->Record(a.task(), a.round_id(), RowsDigest(), names); !r.ok()) {
      return Refuse(a, r.message());
    }
    absl::StatusOr<std::vector<uint32_t>> encoded = boosting::EncodeValues(*vector);
    if (!encoded.ok()) return Refuse(a, encoded.status().message());
    words = *std::move(encoded);
    const std::string transcript = Digest().Text(s.transcript).Text(content_digest).Hex();
    if (absl::Status m = masker->Mask(step.step(), transcript, words); !m.ok()) return m;
    s.transcript = transcript;
  }
  for (uint64_t p = 0; p < boosting::PartsOf(vector->size()); ++p) {
    v1::SubmitBoostingVectorRequest& r = out.parts.emplace_back();
    r.set_task(a.task());
    r.set_round_id(a.round_id());
    r.set_step(step.step());
    r.set_part(static_cast<uint32_t>(p));
    const uint64_t begin = p * boosting::kPartValues;
    const uint64_t end = std::min<uint64_t>(vector->size(), begin + boosting::kPartValues);
    if (options_.secure) {
      r.set_masked_words(reinterpret_cast<const char*>(words.data() + begin * boosting::kDigits),
                         (end - begin) * boosting::kDigits * sizeof(uint32_t));
    } else {
      r.mutable_values()->Add(vector->begin() + static_cast<ptrdiff_t>(begin),
                              vector->begin() + static_cast<ptrdiff_t>(end));
    }
  }
  s.last_content = content_digest;
  s.last_output = out;
  return out;
}

absl::StatusOr<const boosting::PairwiseMasker*> BoostingParticipant::MaskerFor(
    const v1::TaskAssignment& a, std::vector<std::string>* names) {
  Session& s = *session_;
  if (!s.keys) return Refuse(a, "this node has no key for this session (it did not advertise one)");
  if (!a.boosting().crl_pem().empty()) {
    absl::StatusOr<bool> used = verifier_->UseRevocationList(a.boosting().crl_pem());
    if (!used.ok()) return Refuse(a, used.status().message());
    // A newer list is checked against every member again.
    if (*used) s.masker.reset();
  }
  std::string bytes;
  for (const v1::BoostingKey& k : a.boosting().members()) bytes += k.SerializeAsString() + "|";
  if (!s.members_bytes.empty() && bytes != s.members_bytes) {
    return Refuse(a, "the member list changed during the session");
  }
  if (s.masker) {
    *names = s.member_names;
    return &*s.masker;
  }
  const auto& members = a.boosting().members();
  if (static_cast<uint32_t>(members.size()) < options_.min_peers) {
    return Refuse(a, absl::StrCat("the session has ", members.size(),
                                  " members; this node sums with at least ", options_.min_peers));
  }
  if (static_cast<uint32_t>(members.size()) > boosting::kMaxMembers) {
    return Refuse(a, absl::StrCat("the session has ", members.size(), " members; at most ",
                                  boosting::kMaxMembers, " can be summed"));
  }
  std::vector<boosting::PairwiseMasker::Member> checked;
  std::set<std::string> seen;
  for (const v1::BoostingKey& k : members) {
    if (!seen.insert(k.node()).second) {
      return Refuse(a, absl::StrCat("member ", k.node().substr(0, 64), " appears twice"));
    }
    boosting::PairwiseMasker::Member m;
    m.node = k.node();
    if (k.public_key().size() != m.key.size()) {
      return Refuse(a, absl::StrCat("member ", m.node.substr(0, 64), "'s key is not 32 bytes"));
    }
    std::copy(k.public_key().begin(), k.public_key().end(), m.key.begin());
    if (m.node != self_) {
      if (absl::Status v = verifier_->VerifyNodeSignature(
              m.node, k.certificate_pem(),
              boosting::BoostingKeyPayload(a.task(), a.round_id(), m.node, m.key), k.signature(),
              absl::StrCat("boosting key of ", m.node.substr(0, 64)));
          !v.ok()) {
        return Refuse(a, v.message());
      }
    }
    checked.push_back(std::move(m));
  }
  absl::StatusOr<boosting::PairwiseMasker> masker =
      boosting::PairwiseMasker::Create(*s.keys, self_, checked, a.task(), a.round_id());
  if (!masker.ok()) return Refuse(a, masker.status().message());
  s.masker.reset();
  s.masker.emplace(*std::move(masker));
  s.members_bytes = std::move(bytes);
  s.member_names.assign(seen.begin(), seen.end());
  *names = s.member_names;
  return &*s.masker;
}

absl::StatusOr<std::vector<double>> BoostingParticipant::Compute(const BoostingStep& step,
                                                                 const v1::TaskAssignment& a) {
  Session& s = *session_;
  const double positive_weight = a.model().trees().positive_weight();
  if (!(positive_weight > 0 && positive_weight <= 1000)) {
    return Malformed(a, "model.trees.positive_weight", "not in (0, 1000]");
  }
  if (!s.rows) {
    s.positive_weight = positive_weight;
    s.rows = std::make_unique<trees::BoostingRows>(table_, split_.train, split_.validation,
                                                   positive_weight);
  } else if (positive_weight != s.positive_weight) {
    return Refuse(a, "the positive weight changed during the session");
  }
  const size_t width = table_.numeric_width();
  // The length is checked before anything is allocated for it.
  auto expect = [&](uint64_t values) -> absl::Status {
    if (step.values() == values) return absl::OkStatus();
    return Malformed(a, "values",
                     absl::StrCat(step.values(), " announced, but the step's vector has ", values));
  };
  switch (step.kind()) {
    case BoostingStep::MOMENTS:
      if (absl::Status e = expect(3 + 2 * width); !e.ok()) return e;
      return s.rows->Moments();
    case BoostingStep::SKETCH: {
      if (static_cast<size_t>(step.grid_low_size()) != width ||
          static_cast<size_t>(step.grid_high_size()) != width) {
        return Malformed(a, "grid_low/grid_high",
                         absl::StrCat("not one grid per numeric feature (", width, ")"));
      }
      if (step.grid_cells() < 2 || step.grid_cells() > 65536) {
        return Malformed(a, "grid_cells", "not in 2..65536");
      }
      if (absl::Status e = expect(width * step.grid_cells()); !e.ok()) return e;
      std::vector<trees::SketchGrid> grids(width);
      for (size_t j = 0; j < width; ++j) {
        const double low = step.grid_low(static_cast<int>(j));
        const double high = step.grid_high(static_cast<int>(j));
        if (!std::isfinite(low) || !std::isfinite(high) || !(low < high)) {
          return Malformed(a, "grid_low/grid_high",
                           absl::StrCat("grid ", j, " is not a finite interval"));
        }
        grids[j] = {low, high, step.grid_cells()};
      }
      return s.rows->Sketch(grids);
    }
    case BoostingStep::LEVEL:
    case BoostingStep::VALIDATION: {
      absl::StatusOr<tensor::NamedTensors> state = tensor::DecodeFromString(step.ensemble());
      if (!state.ok()) return Malformed(a, "ensemble", state.status().message());
      absl::StatusOr<trees::TreeEnsemble> ensemble = models::BoostedTreesFromState(*state);
      if (!ensemble.ok()) return Malformed(a, "ensemble", ensemble.status().message());
      if (ensemble->trees.size() != 1) {
        return Malformed(a, "ensemble", "does not hold exactly one tree");
      }
      if (ensemble->bins.numeric_width() != width ||
          ensemble->bins.categorical_bins.size() != table_.categorical_width()) {
        return Malformed(a, "ensemble", "its bins do not have this node's features");
      }
      const std::string bins_digest = BinsDigest(ensemble->bins, ensemble->base_score);
      if (!s.bins) {
        if (step.kind() != BoostingStep::LEVEL || step.tree() != 0) {
          return Refuse(a, "the session's first tree step must be a level of tree 0");
        }
        s.bins = std::make_unique<trees::FeatureBins>(ensemble->bins);
        s.bins_digest = bins_digest;
        s.rows->Start(*s.bins, ensemble->base_score);
      } else if (bins_digest != s.bins_digest) {
        return Refuse(a, "the bins or the base score changed during the session");
      }
      const trees::Tree& tree = ensemble->trees[0];
      if (step.tree() != s.trees_done) {
        return Refuse(a, absl::StrCat("tree ", step.tree(), " out of order: ", s.trees_done,
                                      " trees are finished"));
      }
      std::set<int32_t> grown;
      if (step.kind() == BoostingStep::VALIDATION) {
        if (!s.tree_open) return Refuse(a, "no tree is being grown");
        // The finished tree is the last level's, with the children of its
        // last splits as leaves and its leaf values set.
        if (!Extends(s.tree, s.open, tree, &grown)) {
          return Refuse(a, "the finished tree is not the tree this node helped grow");
        }
        if (absl::Status e = expect(2); !e.ok()) return e;
        s.rows->EndTree(tree);
        ++s.trees_done;
        s.tree_open = false;
        const auto [loss, rows] = s.rows->ValidationLoss();
        return std::vector<double>{loss, rows};
      }
      // Every level grows the last one by the children of its open nodes,
      // and asks for exactly those: no tree node escapes the small-cell
      // rule by being left out of the open list, and none is asked twice.
      const std::vector<int32_t> open(step.open_nodes().begin(), step.open_nodes().end());
      if (!s.tree_open) {
        if (tree.nodes.size() != 1 || open != std::vector<int32_t>{0}) {
          return Refuse(a, "a tree's first level must be its root alone");
        }
      } else {
        if (s.levels >= trees::kMaxTreeDepth) {
          return Refuse(a, absl::StrCat("more than ", trees::kMaxTreeDepth, " levels in one tree"));
        }
        if (!Extends(s.tree, s.open, tree, &grown) || grown.empty() ||
            std::set<int32_t>(open.begin(), open.end()) != grown || open.size() != grown.size()) {
          return Refuse(a,
                        "the level does not grow the last one by the children of its open "
                        "nodes, all of them open");
        }
      }
      const uint64_t cells = uint64_t{ensemble->bins.total_bins()} * 3;
      if (absl::Status e = expect(open.size() * cells); !e.ok()) return e;
      if (!s.tree_open) {
        s.rows->BeginTree();
        s.tree_open = true;
        s.levels = 0;
        s.left_out.clear();
      }
      std::vector<double> histogram =
          s.rows->LevelHistogram(tree, open, options_.min_cell_rows, &last_suppressed_);
      if (options_.min_cell_rows > 1) {
        // A node under one left out is left out too: a trivial split (all
        // of its rows on one side) would otherwise show the parent's
        // histogram, and with it the small sibling's by difference. A slot
        // without rows here (left out, or empty) counts as left out.
        std::vector<int32_t> parent(tree.nodes.size(), -1);
        for (size_t n = 0; n < tree.nodes.size(); ++n) {
          if (tree.nodes[n].leaf()) continue;
          parent[static_cast<size_t>(tree.nodes[n].left)] = static_cast<int32_t>(n);
          parent[static_cast<size_t>(tree.nodes[n].right)] = static_cast<int32_t>(n);
        }
        const size_t per_node = size_t{ensemble->bins.total_bins()} * 3;
        const uint32_t first_bins = ensemble->bins.features() > 0 ? ensemble->bins.bins(0) : 0;
        std::set<int32_t> left_out;
        for (size_t slot = 0; slot < open.size(); ++slot) {
          double* cells = histogram.data() + slot * per_node;
          double rows = 0;
          for (uint32_t b = 0; b < first_bins; ++b) rows += cells[b * 3 + 2];
          const int32_t p = parent[static_cast<size_t>(open[slot])];
          if (p >= 0 && s.left_out.contains(p)) {
            std::fill(cells, cells + per_node, 0.0);
            rows = 0;
          }
          if (rows == 0) left_out.insert(open[slot]);
        }
        s.left_out = std::move(left_out);
      }
      s.tree = tree;
      s.open = open;
      ++s.levels;
      return histogram;
    }
    default:
      return Malformed(a, "kind",
                       absl::StrCat(static_cast<int>(step.kind()), " is not a vector step"));
  }
}

}  // namespace fedcustoms::node
