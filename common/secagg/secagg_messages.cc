#include "common/secagg/secagg_messages.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace fedcustoms::secagg {
namespace {

// Bounds on what one node may make the coordinator store and relay to every
// other node: one certificate, one signature, and shares of 32-byte secrets.
constexpr size_t kMaxCertificatePemBytes = 16 * 1024;
constexpr size_t kMaxSignatureBytes = 512;
constexpr size_t kSecretBytes = 32;

absl::StatusOr<X25519PublicKey> Bytes32From(const std::string& bytes, const std::string& field,
                                            const std::string& node) {
  X25519PublicKey key{};
  if (bytes.size() != key.size()) {
    return absl::InvalidArgumentError(absl::StrCat("keys of ", node, ": ", field, " has ",
                                                   bytes.size(), " bytes, expected ", key.size()));
  }
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

std::string BytesOf(const X25519PublicKey& key) { return std::string(key.begin(), key.end()); }

void AddShares(const std::map<std::string, ShamirShare>& shares,
               google::protobuf::RepeatedPtrField<v1::RevealedShare>* out) {
  for (const auto& [owner, share] : shares) {
    v1::RevealedShare* r = out->Add();
    r->set_owner(owner);
    r->set_x(share.x);
    r->mutable_y()->Assign(share.y.begin(), share.y.end());
  }
}

absl::Status ReadShares(const google::protobuf::RepeatedPtrField<v1::RevealedShare>& in,
                        const char* field, std::map<std::string, ShamirShare>* out) {
  for (const v1::RevealedShare& r : in) {
    if (r.owner().empty() || r.x() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": every share needs an owner and x > 0"));
    }
    if (static_cast<size_t>(r.y_size()) != LimbCount(kSecretBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": the share of ", r.owner(), " has ",
                                                     r.y_size(), " y values, expected ",
                                                     LimbCount(kSecretBytes)));
    }
    for (uint64_t y : r.y()) {
      if (y >= field::kPrime) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": the share of ", r.owner(),
                                                       " has a y value outside GF(2^61 - 1)"));
      }
    }
    ShamirShare share{r.x(), std::vector<uint64_t>(r.y().begin(), r.y().end())};
    if (!out->emplace(r.owner(), std::move(share)).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": two shares of ", r.owner()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

v1::SignedKeys ToProto(const SignedAdvertisement& advertisement) {
  v1::SignedKeys out;
  out.set_node(advertisement.keys.node);
  out.set_mask_public_key(BytesOf(advertisement.keys.mask_key));
  out.set_cipher_public_key(BytesOf(advertisement.keys.cipher_key));
  out.set_certificate_pem(advertisement.cert_pem);
  out.set_signature(advertisement.signature);
  out.set_seed_commitment(BytesOf(advertisement.keys.seed_commitment));
  return out;
}

absl::StatusOr<SignedAdvertisement> FromProto(const v1::SignedKeys& keys, const std::string& task,
                                              uint64_t round_id) {
  if (keys.node().empty() || keys.certificate_pem().empty() || keys.signature().empty()) {
    return absl::InvalidArgumentError("signed keys need node, certificate_pem and signature");
  }
  if (keys.certificate_pem().size() > kMaxCertificatePemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("keys of ", keys.node(), ": certificate_pem has ",
                     keys.certificate_pem().size(), " bytes, at most ", kMaxCertificatePemBytes));
  }
  if (keys.signature().size() > kMaxSignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat("keys of ", keys.node(), ": signature has ",
                                                   keys.signature().size(), " bytes, at most ",
                                                   kMaxSignatureBytes));
  }
  SignedAdvertisement out;
  out.keys.task = task;
  out.keys.round_id = round_id;
  out.keys.node = keys.node();
  absl::StatusOr<X25519PublicKey> mask =
      Bytes32From(keys.mask_public_key(), "mask_public_key", keys.node());
  if (!mask.ok()) return mask.status();
  absl::StatusOr<X25519PublicKey> cipher =
      Bytes32From(keys.cipher_public_key(), "cipher_public_key", keys.node());
  if (!cipher.ok()) return cipher.status();
  absl::StatusOr<X25519PublicKey> commitment =
      Bytes32From(keys.seed_commitment(), "seed_commitment", keys.node());
  if (!commitment.ok()) return commitment.status();
  out.keys.mask_key = *mask;
  out.keys.cipher_key = *cipher;
  out.keys.seed_commitment = *commitment;
  out.cert_pem = keys.certificate_pem();
  out.signature = keys.signature();
  return out;
}

RoundTerms TermsOf(const v1::SecureRound& params) {
  return {params.threshold(), params.total_weight(), params.clip(), params.scale(),
          params.max_nodes()};
}

v1::SealedShare ToProto(const SealedShares& shares) {
  v1::SealedShare out;
  out.set_from_node(shares.from);
  out.set_to_node(shares.to);
  out.set_sealed(shares.sealed);
  out.set_key_commitment(shares.key_commitment);
  out.set_signature(shares.signature);
  return out;
}

SealedShares FromProto(const v1::SealedShare& shares) {
  return SealedShares{shares.from_node(), shares.to_node(), shares.sealed(),
                      shares.key_commitment(), shares.signature()};
}

v1::ShareComplaint ToProto(const ShareComplaint& complaint) {
  v1::ShareComplaint out;
  *out.mutable_share() = ToProto(complaint.share);
  out.set_share_key(complaint.share_key);
  return out;
}

absl::StatusOr<ShareComplaint> FromProto(const v1::ShareComplaint& complaint) {
  if (!complaint.share_key().empty() && complaint.share_key().size() != sizeof(SharedKey)) {
    return absl::InvalidArgumentError(
        absl::StrCat("complaints.share_key: ", complaint.share_key().size(),
                     " bytes, expected 0 or ", sizeof(SharedKey)));
  }
  return ShareComplaint{FromProto(complaint.share()), complaint.share_key(), ""};
}

void ToProto(const UnmaskShares& shares, v1::UnmaskRequest* request) {
  AddShares(shares.self_mask_seeds, request->mutable_self_mask_seeds());
  AddShares(shares.mask_keys, request->mutable_mask_keys());
}

absl::StatusOr<UnmaskShares> FromProto(const v1::UnmaskRequest& request) {
  UnmaskShares out;
  if (absl::Status s =
          ReadShares(request.self_mask_seeds(), "self_mask_seeds", &out.self_mask_seeds);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadShares(request.mask_keys(), "mask_keys", &out.mask_keys); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace fedcustoms::secagg
