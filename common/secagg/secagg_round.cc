#include "common/secagg/secagg_round.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/secagg/share_cipher.h"

namespace fedcustoms::secagg {
namespace {

constexpr size_t kSecretBytes = 32;

// One key per direction: the key a receiver reveals to prove a bad message
// opens that message and not the ones it sent back.
std::string ShareKeyContext(const std::string& task, uint64_t round_id, const std::string& from,
                            const std::string& to) {
  return absl::StrCat("fedcustoms/v1 share-key|", task.size(), ":", task, "|", round_id, "|",
                      from.size(), ":", from, "|", to.size(), ":", to);
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// x, limb count, limbs (little-endian), for each of the two shares.
std::string SerializePair(const ShamirShare& seed, const ShamirShare& key) {
  std::string out;
  // Sized up front: a growing buffer would leave copies of the shares behind.
  out.reserve(2 * (8 + 8 * seed.y.size()));
  for (const ShamirShare* s : {&seed, &key}) {
    PutU32(out, s->x);
    PutU32(out, static_cast<uint32_t>(s->y.size()));
    for (uint64_t y : s->y) PutU64(out, y);
  }
  return out;
}

absl::StatusOr<std::pair<ShamirShare, ShamirShare>> ParsePair(std::string_view bytes) {
  size_t pos = 0;
  auto take = [&](size_t n) -> std::optional<uint64_t> {
    if (bytes.size() - pos < n) return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(bytes[pos + i])} << (8 * i);
    pos += n;
    return v;
  };
  std::pair<ShamirShare, ShamirShare> out;
  // A refused message may hold part of a real share: wiped before it goes.
  auto refuse = [&out](const char* why) {
    for (ShamirShare* s : {&out.first, &out.second}) {
      if (!s->y.empty()) OPENSSL_cleanse(s->y.data(), s->y.size() * sizeof(uint64_t));
    }
    return absl::InvalidArgumentError(why);
  };
  for (ShamirShare* s : {&out.first, &out.second}) {
    std::optional<uint64_t> x = take(4), count = take(4);
    if (!x || !count || *count != LimbCount(kSecretBytes)) {
      return refuse("share message is not a pair of 32-byte secret shares");
    }
    s->x = static_cast<uint32_t>(*x);
    s->y.reserve(*count);  // no reallocation leaves copies behind
    for (uint64_t i = 0; i < *count; ++i) {
      std::optional<uint64_t> y = take(8);
      if (!y) return refuse("share message is truncated");
      s->y.push_back(*y);
    }
  }
  if (pos != bytes.size()) return refuse("share message has trailing bytes");
  return out;
}

void Wipe(ShamirShare& share) {
  if (!share.y.empty()) OPENSSL_cleanse(share.y.data(), share.y.size() * sizeof(uint64_t));
}
void Wipe(std::vector<ShamirShare>& shares) {
  for (ShamirShare& share : shares) Wipe(share);
}

// Shamir x coordinate of `node`: its 1-based position among the sorted U1.
uint32_t XOf(const std::map<std::string, AdvertisedKeys>& u1, const std::string& node) {
  return static_cast<uint32_t>(std::distance(u1.begin(), u1.find(node))) + 1;
}

}  // namespace

std::string PairMaskContext(const std::string& task, uint64_t round_id, const std::string& a,
                            const std::string& b) {
  const auto& [low, high] = std::minmax(a, b);
  return absl::StrCat("fedcustoms/v1 mask|", task.size(), ":", task, "|", round_id, "|", low.size(),
                      ":", low, "|", high.size(), ":", high);
}

absl::StatusOr<std::unique_ptr<SecAggNodeRound>> SecAggNodeRound::Create(
    Params params, const KeyAdvertisementSigner& signer, const KeyAdvertisementVerifier& verifier,
    std::string own_cert_pem) {
  absl::StatusOr<X25519KeyPair> mask = X25519KeyPair::Generate();
  if (!mask.ok()) return mask.status();
  absl::StatusOr<X25519KeyPair> cipher = X25519KeyPair::Generate();
  if (!cipher.ok()) return cipher.status();
  MaskSeed seed{};
  if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "self-mask seed");
  }
  std::unique_ptr<SecAggNodeRound> round(new SecAggNodeRound(
      std::move(params), signer, verifier, *std::move(mask), *std::move(cipher), seed));
  OPENSSL_cleanse(seed.data(), seed.size());
  AdvertisedKeys& keys = round->advertisement_.keys;
  keys.task = round->params_.task;
  keys.round_id = round->params_.round_id;
  keys.node = round->params_.self;
  keys.mask_key = round->mask_.public_key();
  keys.cipher_key = round->cipher_.public_key();
  keys.seed_commitment = CommitToSeed(keys.task, keys.round_id, keys.node, round->self_seed_);
  keys.terms = round->params_.terms;
  absl::StatusOr<std::string> signature = signer.Sign(keys);
  if (!signature.ok()) return signature.status();
  round->advertisement_.signature = *std::move(signature);
  round->advertisement_.cert_pem = std::move(own_cert_pem);
  return round;
}

SecAggNodeRound::~SecAggNodeRound() {
  OPENSSL_cleanse(self_seed_.data(), self_seed_.size());
  ForgetHeldShares();
}

void SecAggNodeRound::ForgetHeldShares() {
  for (auto& [node, pair] : held_) {
    Wipe(pair.first);
    Wipe(pair.second);
  }
  held_.clear();
}

uint32_t SecAggNodeRound::Floor() const { return std::max(params_.threshold, params_.min_peers); }

absl::Status SecAggNodeRound::CheckFloor(size_t count, const char* what) const {
  if (count >= Floor()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("only ", count, " nodes ", what, " in round ", params_.round_id, "; ",
                   params_.self, " needs at least ", Floor(), " (threshold ", params_.threshold,
                   ", its own min_peers ", params_.min_peers, ")"));
}

absl::Status SecAggNodeRound::Refuse(absl::Status status) {
  refused_ = true;
  phase_ = Phase::kDone;
  ForgetHeldShares();
  OPENSSL_cleanse(self_seed_.data(), self_seed_.size());
  return status;
}

absl::StatusOr<std::vector<SealedShares>> SecAggNodeRound::ShareKeys(
    std::span<const SignedAdvertisement> u1) {
  if (phase_ != Phase::kAdvertised) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", params_.round_id, ": keys can be shared once, after advertising them"));
  }
  for (SignedAdvertisement ad : u1) {
    // Every signer must have been given the terms this node was given.
    ad.keys.terms = params_.terms;
    if (ad.keys.task != params_.task || ad.keys.round_id != params_.round_id) {
      return Refuse(absl::PermissionDeniedError(absl::StrCat(
          "keys advertised for ", ad.keys.node, " belong to task ", ad.keys.task, " round ",
          ad.keys.round_id, ", not ", params_.task, " round ", params_.round_id)));
    }
    // The parsed certificate is kept: Unmask checks survivor signatures
    // with it.
    crypto::X509Ptr certificate;
    if (absl::Status s = verifier_.Verify(ad.keys, ad.cert_pem, ad.signature, &certificate);
        !s.ok()) {
      return Refuse(s);
    }
    if (!u1_.emplace(ad.keys.node, ad.keys).second) {
      return Refuse(
          absl::PermissionDeniedError(absl::StrCat("node ", ad.keys.node, " is advertised twice")));
    }
    u1_certs_[ad.keys.node] = std::move(certificate);
  }
  auto own = u1_.find(params_.self);
  if (own == u1_.end() || own->second.mask_key != advertisement_.keys.mask_key ||
      own->second.cipher_key != advertisement_.keys.cipher_key) {
    return Refuse(absl::PermissionDeniedError(
        absl::StrCat("the relayed keys do not include ", params_.self, "'s own, unaltered")));
  }
  const uint32_t n = static_cast<uint32_t>(u1_.size());
  // More inputs than the encoding was sized for could wrap the 32-bit sum.
  if (params_.terms.max_nodes != 0 && n > params_.terms.max_nodes) {
    return Refuse(absl::FailedPreconditionError(
        absl::StrCat("round ", params_.round_id, " relays the keys of ", n,
                     " nodes; its encoding is sized for ", params_.terms.max_nodes)));
  }
  if (absl::Status s = CheckThreshold(params_.threshold, n); !s.ok()) {
    return Refuse(absl::FailedPreconditionError(
        absl::StrCat("round ", params_.round_id, " with ", n, " nodes: ", s.message())));
  }
  // The node's own floor: the coordinator chooses who is in the round and
  // announces t, so neither is taken on trust.
  if (absl::Status s = CheckFloor(n, "advertised keys"); !s.ok()) return Refuse(s);
  const auto own_threshold =
      std::min<uint32_t>(n, static_cast<uint32_t>(std::floor(params_.threshold_fraction * n)) + 1);
  if (params_.threshold < own_threshold) {
    return Refuse(absl::FailedPreconditionError(
        absl::StrCat("round ", params_.round_id, " announces threshold ", params_.threshold,
                     " for ", n, " nodes; ", params_.self, " requires at least ", own_threshold,
                     " (its threshold_fraction ", params_.threshold_fraction, ")")));
  }
  std::vector<AdvertisedKeys> by_node;
  for (const auto& [node, keys] : u1_) by_node.push_back(keys);
  u1_digest_ = AdvertisedKeysDigest(by_node);
  absl::StatusOr<std::array<uint8_t, kX25519KeyBytes>> secret_key = mask_.PrivateBytes();
  if (!secret_key.ok()) return Refuse(secret_key.status());
  absl::StatusOr<std::vector<ShamirShare>> seed_shares =
      SplitSecret(self_seed_, params_.threshold, n);
  absl::StatusOr<std::vector<ShamirShare>> key_shares =
      SplitSecret(*secret_key, params_.threshold, n);
  OPENSSL_cleanse(secret_key->data(), secret_key->size());
  if (!seed_shares.ok()) return Refuse(seed_shares.status());
  if (!key_shares.ok()) return Refuse(key_shares.status());
  // All n shares of both secrets are in memory here: wiped however this ends.
  struct WipeOnExit {
    std::vector<ShamirShare>& a;
    std::vector<ShamirShare>& b;
    ~WipeOnExit() {
      Wipe(a);
      Wipe(b);
    }
  } wipe{*seed_shares, *key_shares};

  std::vector<SealedShares> out;
  uint32_t index = 0;  // position in the sorted U1, the share's x - 1
  for (auto it = u1_.begin(); it != u1_.end(); ++it, ++index) {
    const auto& [node, keys] = *it;
    if (node == params_.self) {
      held_[node] = {(*seed_shares)[index], (*key_shares)[index]};
      continue;
    }
    absl::StatusOr<SharedKey> key = cipher_.Agree(
        keys.cipher_key, ShareKeyContext(params_.task, params_.round_id, params_.self, node));
    if (!key.ok()) return Refuse(key.status());
    std::string plaintext = SerializePair((*seed_shares)[index], (*key_shares)[index]);
    absl::StatusOr<std::string> sealed = SealShare(
        *key, plaintext,
        ShareAssociatedData(params_.task, params_.round_id, params_.self, node, u1_digest_));
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    std::string commitment = CommitToShareKey(*key);
    OPENSSL_cleanse(key->data(), key->size());
    if (!sealed.ok()) return Refuse(sealed.status());
    // Signed, so a receiver that cannot use it can show what was sent.
    absl::StatusOr<std::string> signature = signer_.SignPayload(SealedSharePayload(
        params_.task, params_.round_id, params_.self, node, u1_digest_, *sealed, commitment));
    if (!signature.ok()) return Refuse(signature.status());
    out.push_back(SealedShares{params_.self, node, *std::move(sealed), std::move(commitment),
                               *std::move(signature)});
  }
  phase_ = Phase::kShared;
  return out;
}

absl::StatusOr<MaskedInputResult> SecAggNodeRound::MaskedInput(
    std::span<const SealedShares> received, std::span<const uint32_t> encoded_update) {
  if (phase_ != Phase::kShared) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", params_.round_id, ": the masked input is sent once, after sharing keys"));
  }
  u2_ = {params_.self};
  const uint32_t x = XOf(u1_, params_.self);
  MaskedInputResult result;
  for (const SealedShares& message : received) {
    auto sender = u1_.find(message.from);
    if (message.to != params_.self || sender == u1_.end() || message.from == params_.self) {
      return Refuse(absl::PermissionDeniedError(
          absl::StrCat("a share message from ", message.from, " to ", message.to, " is not for ",
                       params_.self, " from a node of round ", params_.round_id)));
    }
    if (!u2_.insert(message.from).second) {
      return Refuse(
          absl::PermissionDeniedError(absl::StrCat("two share messages from ", message.from)));
    }
    absl::StatusOr<SharedKey> key =
        cipher_.Agree(sender->second.cipher_key,
                      ShareKeyContext(params_.task, params_.round_id, message.from, params_.self));
    if (!key.ok()) return Refuse(key.status());
    // A message that opens under the from -> to key came from the sender (no
    // one else holds the key) and needs nothing more; the signature is only
    // checked when the message cannot be used, which keeps it off the honest
    // path.
    absl::StatusOr<std::pair<ShamirShare, ShamirShare>> pair =
        OpenSharePair(params_.task, params_.round_id, u1_digest_, message, *key, x);
    if (pair.ok()) {
      OPENSSL_cleanse(key->data(), key->size());
      held_[message.from] = *std::move(pair);
      continue;
    }
    // Before anything is revealed about it, the message must be the one its
    // sender signed for this U1: otherwise the coordinator altered it or
    // showed the two nodes different keys (a key revealed then could open
    // genuine shares), and the round is refused.
    if (absl::Status s = verifier_.VerifySealedShare(
            params_.task, params_.round_id, message.from, message.to, u1_digest_, message.sealed,
            message.key_commitment, u1_certs_.at(message.from).get(), message.signature);
        !s.ok()) {
      OPENSSL_cleanse(key->data(), key->size());
      return Refuse(s);
    }
    // A bad message costs this node its share of the sender's secrets, not
    // the round: it is reported with the evidence, and the coordinator
    // drops the sender if the evidence holds.
    if (CommitToShareKey(*key) != message.key_commitment) {
      result.complaints.push_back(
          {message, "",
           absl::StrCat(message.from, " committed to a share key other than the one ", params_.self,
                        " derives from its advertised key")});
    } else {
      result.complaints.push_back(
          {message, std::string(key->begin(), key->end()), std::string(pair.status().message())});
    }
    OPENSSL_cleanse(key->data(), key->size());
  }
  if (absl::Status s = CheckFloor(u2_.size(), "shared keys"); !s.ok()) return Refuse(s);
  // The self mask and one pairwise mask per peer that shared keys, applied in
  // one pass over the update.
  std::vector<SignedMask> masks;
  masks.reserve(u2_.size());
  masks.push_back({self_seed_, MaskSign::kAdd});
  for (const std::string& peer : u2_) {
    if (peer == params_.self) continue;
    absl::StatusOr<SharedKey> seed = mask_.Agree(
        u1_.at(peer).mask_key, PairMaskContext(params_.task, params_.round_id, params_.self, peer));
    if (!seed.ok()) {
      WipeMasks(masks);
      return Refuse(seed.status());
    }
    masks.push_back({*seed, params_.self < peer ? MaskSign::kAdd : MaskSign::kSubtract});
    OPENSSL_cleanse(seed->data(), seed->size());
  }
  std::vector<uint32_t> masked(encoded_update.begin(), encoded_update.end());
  absl::Status applied = ApplyMasks(masks, masked);
  WipeMasks(masks);
  if (!applied.ok()) return Refuse(applied);
  OPENSSL_cleanse(self_seed_.data(), self_seed_.size());
  phase_ = Phase::kMasked;
  result.masked = std::move(masked);
  return result;
}

absl::StatusOr<std::string> SecAggNodeRound::ConfirmSurvivors(const std::set<std::string>& u3) {
  if (phase_ != Phase::kMasked) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", params_.round_id,
        ": the survivor list is signed once, after the masked input (never two lists)"));
  }
  for (const std::string& node : u3) {
    if (!u2_.contains(node)) {
      return Refuse(absl::PermissionDeniedError(absl::StrCat(
          "the survivor list names ", node, ", which did not share keys with ", params_.self)));
    }
  }
  if (!u3.contains(params_.self)) {
    return Refuse(absl::PermissionDeniedError(
        absl::StrCat("the survivor list leaves out ", params_.self, ", who is being asked")));
  }
  if (absl::Status s = CheckFloor(u3.size(), "sent masked input"); !s.ok()) return Refuse(s);
  absl::StatusOr<std::string> signature = signer_.SignPayload(SurvivorListPayload(
      params_.task, params_.round_id, params_.self, {u3, params_.terms, u1_digest_}));
  if (!signature.ok()) return Refuse(signature.status());
  u3_ = u3;
  phase_ = Phase::kConfirmed;
  return signature;
}

absl::StatusOr<UnmaskShares> SecAggNodeRound::Unmask(
    const std::set<std::string>& u3, const std::map<std::string, std::string>& signatures) {
  if (phase_ != Phase::kConfirmed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", params_.round_id,
        ": shares are revealed once, after confirming the survivor list (never both secrets of a "
        "node)"));
  }
  if (u3 != u3_) {
    return Refuse(absl::PermissionDeniedError(
        absl::StrCat("round ", params_.round_id, ": the coordinator asks to unmask a survivor list",
                     " other than the one ", params_.self, " confirmed")));
  }
  // Honest nodes sign one list each; t signatures on this list mean no other
  // list can also gather t (t > |U1|/2), so no node of U2 can be in U3 for
  // one revealer and dropped for another.
  size_t valid = 0;
  for (const auto& [signer, signature] : signatures) {
    if (!u3_.contains(signer)) {
      return Refuse(absl::PermissionDeniedError(
          absl::StrCat("round ", params_.round_id, ": a survivor-list signature from ", signer,
                       ", which is not in the list")));
    }
    if (absl::Status s = verifier_.VerifySurvivorList(params_.task, params_.round_id, signer,
                                                      {u3_, params_.terms, u1_digest_},
                                                      u1_certs_.at(signer).get(), signature);
        !s.ok()) {
      return Refuse(s);
    }
    ++valid;
  }
  if (absl::Status s = CheckFloor(valid, "confirmed the survivor list"); !s.ok()) {
    return Refuse(s);
  }
  UnmaskShares out;
  for (const std::string& node : u2_) {
    // No share from a node whose message was bad (complained about).
    auto held = held_.find(node);
    if (held == held_.end()) continue;
    const auto& [seed_share, key_share] = held->second;
    if (u3.contains(node)) {
      out.self_mask_seeds[node] = seed_share;
    } else {
      out.mask_keys[node] = key_share;
    }
  }
  ForgetHeldShares();
  phase_ = Phase::kDone;
  return out;
}

namespace {

// Tries of a reconstruction per unmasking (ReconstructVerified): bounds the
// coordinator's work when revealers lie.
constexpr size_t kMaxReconstructions = 20000;

// Reconstructs a 32-byte secret from some `threshold` of `shares` for which
// `matches` holds (the seed's commitment, the key's public key). Shamir
// sharing has no integrity, so a wrong share revealed by a lying node (or
// dealt by a lying owner) would otherwise spoil an honest node's secret;
// with t good shares among them some choice of t is right. Tried in this
// order: the first t; the first t without one, then without two of the
// first t + 2 (one or two liars are found in O(t^2) tries; callers put
// shares of revealers already caught lying last); then every choice of t in
// lexicographic order. Each try spends one of `*budget` (shared by a whole
// unmasking). On success, `*inconsistent` receives the indices of the
// shares that do not fit the secret found. Candidates are wiped unless
// returned.
absl::StatusOr<std::vector<uint8_t>> ReconstructVerified(
    const std::vector<ShamirShare>& shares, uint32_t threshold,
    const std::function<bool(const std::vector<uint8_t>&)>& matches, size_t* budget,
    std::vector<size_t>* inconsistent) {
  if (shares.size() < threshold || threshold == 0) {
    // ReconstructSecret says why in its own words.
    return ReconstructSecret(shares, threshold, kSecretBytes);
  }
  const size_t n = shares.size();
  size_t tries = 0;
  absl::Status last = absl::OkStatus();
  auto reconstruct = [&](const std::vector<size_t>& pick) -> std::optional<std::vector<uint8_t>> {
    std::vector<ShamirShare> chosen;
    chosen.reserve(pick.size());
    for (size_t i : pick) chosen.push_back(shares[i]);
    absl::StatusOr<std::vector<uint8_t>> secret =
        ReconstructSecret(chosen, threshold, kSecretBytes);
    Wipe(chosen);
    if (!secret.ok()) {
      last = secret.status();
      return std::nullopt;
    }
    if (matches(*secret)) return *std::move(secret);
    OPENSSL_cleanse(secret->data(), secret->size());
    return std::nullopt;
  };
  std::optional<std::vector<uint8_t>> found;
  std::vector<size_t> chosen;
  auto attempt = [&](const std::vector<size_t>& pick) {
    if (*budget == 0) return false;
    --*budget;
    ++tries;
    found = reconstruct(pick);
    if (found) chosen = pick;
    return found.has_value();
  };
  // The first t indices of [0, n) that are not in `skip`.
  auto first_without = [&](std::initializer_list<size_t> skip) {
    std::vector<size_t> pick;
    for (size_t i = 0; i < n && pick.size() < threshold; ++i) {
      if (std::find(skip.begin(), skip.end(), i) == skip.end()) pick.push_back(i);
    }
    return pick;
  };
  bool done = attempt(first_without({}));
  const size_t window = std::min(n, static_cast<size_t>(threshold) + 2);
  for (size_t a = 0; !done && n > threshold && a < window; ++a) {
    done = attempt(first_without({a}));
  }
  for (size_t a = 0; !done && n > threshold + 1 && a < window; ++a) {
    for (size_t b = a + 1; !done && b < window; ++b) done = attempt(first_without({a, b}));
  }
  std::vector<size_t> pick = first_without({});
  while (!done && *budget > 0) {
    // The next choice of t indices out of n, in lexicographic order.
    int i = static_cast<int>(threshold) - 1;
    while (i >= 0 && pick[i] == n - threshold + i) --i;
    if (i < 0) break;
    ++pick[i];
    for (size_t j = i + 1; j < threshold; ++j) pick[j] = pick[j - 1] + 1;
    done = attempt(pick);
  }
  if (!done) {
    return absl::DataLossError(absl::StrCat(
        "no ", threshold, " of the ", n, " revealed shares reconstruct it after ", tries,
        " tries (bad shares", last.ok() ? "" : absl::StrCat("; ", last.message()),
        *budget == 0 ? "; the unmasking's budget of tries is spent" : "", ")"));
  }
  // A share fits the secret when it can stand in for one of the chosen.
  for (size_t i = 0; i < n && inconsistent != nullptr; ++i) {
    if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) continue;
    std::vector<size_t> swapped = chosen;
    swapped.back() = i;
    std::optional<std::vector<uint8_t>> check = reconstruct(swapped);
    if (check) {
      OPENSSL_cleanse(check->data(), check->size());
    } else {
      inconsistent->push_back(i);
    }
  }
  return *std::move(found);
}

}  // namespace

uint32_t ShareIndex(const std::set<std::string>& u1, const std::string& node) {
  auto it = u1.find(node);
  return it == u1.end() ? 0 : static_cast<uint32_t>(std::distance(u1.begin(), it)) + 1;
}

absl::StatusOr<std::pair<ShamirShare, ShamirShare>> OpenSharePair(
    const std::string& task, uint64_t round_id, std::string_view u1_digest,
    const SealedShares& message, const SharedKey& key, uint32_t receiver_x) {
  absl::StatusOr<std::string> plaintext =
      OpenShare(key, message.sealed,
                ShareAssociatedData(task, round_id, message.from, message.to, u1_digest));
  if (!plaintext.ok()) {
    return absl::Status(plaintext.status().code(), absl::StrCat("shares from ", message.from, ": ",
                                                                plaintext.status().message()));
  }
  absl::StatusOr<std::pair<ShamirShare, ShamirShare>> pair = ParsePair(*plaintext);
  OPENSSL_cleanse(plaintext->data(), plaintext->size());
  if (!pair.ok() || pair->first.x != receiver_x || pair->second.x != receiver_x) {
    if (pair.ok()) {
      Wipe(pair->first);
      Wipe(pair->second);
    }
    return absl::InvalidArgumentError(absl::StrCat("shares from ", message.from,
                                                   " are not a pair of shares for ", message.to,
                                                   " (x ", receiver_x, ")"));
  }
  return pair;
}

absl::StatusOr<std::vector<uint32_t>> UnmaskSum(
    const std::string& task, uint64_t round_id, uint32_t threshold,
    const std::map<std::string, AdvertisedKeys>& u1, const std::set<std::string>& u2,
    const std::set<std::string>& u3, std::vector<uint32_t> masked_sum,
    const std::map<std::string, UnmaskShares>& responses,
    std::set<std::string>* inconsistent_revealers) {
  if (responses.size() < threshold) {
    return absl::FailedPreconditionError(absl::StrCat("only ", responses.size(),
                                                      " nodes answered the unmasking of round ",
                                                      round_id, "; the threshold is ", threshold));
  }
  if (absl::Status s = CheckThreshold(threshold, static_cast<uint32_t>(u1.size())); !s.ok()) {
    return s;
  }
  for (const std::string& node : u2) {
    if (!u1.contains(node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node, " shared keys but never advertised any"));
    }
  }
  for (const std::string& node : u3) {
    if (!u2.contains(node)) {
      return absl::InvalidArgumentError(absl::StrCat("survivor ", node, " did not share keys"));
    }
  }
  // The shares of one node's secret, from every response that holds one;
  // those of revealers already caught with a share that did not fit go
  // last, so that they are tried last.
  std::set<std::string> suspects;
  size_t budget = kMaxReconstructions;
  std::vector<std::string> revealers;  // of the shares shares_of returned last
  auto shares_of = [&](const std::string& node, bool seed) {
    std::vector<ShamirShare> shares;
    revealers.clear();
    for (bool suspected : {false, true}) {
      for (const auto& [responder, response] : responses) {
        if (suspects.contains(responder) != suspected) continue;
        const auto& from = seed ? response.self_mask_seeds : response.mask_keys;
        if (auto it = from.find(node); it != from.end()) {
          shares.push_back(it->second);
          revealers.push_back(responder);
        }
      }
    }
    return shares;
  };
  auto note_inconsistent = [&](const std::vector<size_t>& indices) {
    for (size_t i : indices) suspects.insert(revealers[i]);
  };
  // Every mask to remove, gathered first and applied in one pass over the sum:
  // each survivor's self mask, and the pairwise masks survivors added with
  // nodes that dropped after sharing keys. Wiped on every way out.
  std::vector<SignedMask> masks;
  struct Wiper {
    std::vector<SignedMask>& masks;
    ~Wiper() { WipeMasks(masks); }
  } wiper{masks};
  for (const std::string& node : u3) {
    std::vector<ShamirShare> shares = shares_of(node, true);
    std::vector<size_t> inconsistent;
    absl::StatusOr<std::vector<uint8_t>> seed = ReconstructVerified(
        shares, threshold,
        [&](const std::vector<uint8_t>& candidate) {
          MaskSeed s{};
          std::memcpy(s.data(), candidate.data(), s.size());
          const bool ok = CommitToSeed(task, round_id, node, s) == u1.at(node).seed_commitment;
          OPENSSL_cleanse(s.data(), s.size());
          return ok;
        },
        &budget, &inconsistent);
    Wipe(shares);
    note_inconsistent(inconsistent);
    if (!seed.ok()) {
      return absl::Status(seed.status().code(), absl::StrCat("the self-mask seed of ", node,
                                                             " does not match its commitment: ",
                                                             seed.status().message()));
    }
    SignedMask& mask = masks.emplace_back(SignedMask{{}, MaskSign::kSubtract});
    std::memcpy(mask.seed.data(), seed->data(), mask.seed.size());
    OPENSSL_cleanse(seed->data(), seed->size());
  }
  for (const std::string& dropped : u2) {
    if (u3.contains(dropped)) continue;
    std::vector<ShamirShare> shares = shares_of(dropped, false);
    std::vector<size_t> inconsistent;
    absl::StatusOr<std::vector<uint8_t>> secret = ReconstructVerified(
        shares, threshold,
        [&](const std::vector<uint8_t>& candidate) {
          absl::StatusOr<X25519KeyPair> pair = X25519KeyPair::FromPrivate(candidate);
          return pair.ok() && pair->public_key() == u1.at(dropped).mask_key;
        },
        &budget, &inconsistent);
    Wipe(shares);
    note_inconsistent(inconsistent);
    if (!secret.ok()) {
      return absl::Status(
          secret.status().code(),
          absl::StrCat("the mask key of dropped node ", dropped,
                       " does not match its advertised key: ", secret.status().message()));
    }
    absl::StatusOr<X25519KeyPair> key = X25519KeyPair::FromPrivate(*secret);
    OPENSSL_cleanse(secret->data(), secret->size());
    if (!key.ok()) return key.status();
    for (const std::string& survivor : u3) {
      absl::StatusOr<SharedKey> seed =
          key->Agree(u1.at(survivor).mask_key, PairMaskContext(task, round_id, survivor, dropped));
      if (!seed.ok()) return seed.status();
      // The survivor added its pair mask if its name sorts first: take it out.
      masks.push_back({*seed, survivor < dropped ? MaskSign::kSubtract : MaskSign::kAdd});
      OPENSSL_cleanse(seed->data(), seed->size());
    }
  }
  if (absl::Status s = ApplyMasks(masks, masked_sum); !s.ok()) return s;
  if (inconsistent_revealers != nullptr) *inconsistent_revealers = std::move(suspects);
  return masked_sum;
}

}  // namespace fedcustoms::secagg
