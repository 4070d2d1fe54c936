#include "node/secure/secure_aggregation_session.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/pki/peer_identity.h"
#include "common/secagg/masked_update.h"
#include "common/secagg/secagg_messages.h"
#include "node/config/node_config.h"

namespace fedcustoms::node {

absl::StatusOr<std::unique_ptr<SecureAggregationSession>> SecureAggregationSession::Create(
    const v1::TlsFiles& tls, Options options) {
  absl::StatusOr<std::string> cert_pem = io::ReadFile(tls.cert());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<pki::PeerIdentity> identity = pki::PeerIdentityFromPem(*cert_pem, tls.cert());
  if (!identity.ok()) return identity.status();
  auto signer = secagg::KeyAdvertisementSigner::Create(tls.key());
  if (!signer.ok()) return signer.status();
  auto verifier = secagg::KeyAdvertisementVerifier::Create(tls.ca_cert(), tls.crl());
  if (!verifier.ok()) return verifier.status();
  absl::StatusOr<v1::NodeSecureAggregationConfig> guarantees =
      FinalizeNodeSecureAggregation(options.guarantees, "node config");
  if (!guarantees.ok()) return guarantees.status();
  options.guarantees = *std::move(guarantees);
  if (options.record_path.empty()) {
    return absl::InvalidArgumentError(
        "secure aggregation needs a path for its contribution record");
  }
  auto record = ContributionRecord::Open(options.record_path,
                                         options.guarantees.max_contributions_per_model());
  if (!record.ok()) return record.status();
  return std::unique_ptr<SecureAggregationSession>(
      new SecureAggregationSession(identity->common_name, *std::move(cert_pem), std::move(options),
                                   *std::move(signer), *std::move(verifier), *std::move(record)));
}

void SecureAggregationSession::Forget() {
  round_.reset();  // wipes the round's secrets
  advertised_.reset();
  shared_.reset();
  confirmed_.reset();
  revealed_.reset();
}

absl::StatusOr<secagg::SecAggNodeRound*> SecureAggregationSession::RoundOf(
    const v1::TaskAssignment& a) {
  if (!round_ || task_ != a.task() || round_id_ != a.round_id()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no secure-aggregation keys for ", a.task(), " round ", a.round_id(),
                     " (this node did not advertise keys for it, or restarted since)"));
  }
  if (secagg::TermsOf(a.secure()) != terms_) {
    Forget();
    return absl::PermissionDeniedError(
        absl::StrCat("round ", a.round_id(),
                     ": the coordinator changed the round's terms (threshold, total "
                     "weight or encoding) after this node advertised its keys"));
  }
  return round_.get();
}

absl::StatusOr<v1::AdvertiseKeysRequest> SecureAggregationSession::AdvertiseKeys(
    const v1::TaskAssignment& a) {
  if (round_ && task_ == a.task() && round_id_ == a.round_id() && advertised_) {
    return *advertised_;
  }
  Forget();
  const v1::NodeSecureAggregationConfig& floor = options_.guarantees;
  const secagg::RoundTerms terms = secagg::TermsOf(a.secure());
  auto round =
      secagg::SecAggNodeRound::Create({a.task(), a.round_id(), self_, terms.threshold,
                                       floor.min_peers(), floor.threshold_fraction(), terms},
                                      *signer_, *verifier_, cert_pem_);
  if (!round.ok()) return round.status();
  task_ = a.task();
  round_id_ = a.round_id();
  terms_ = terms;
  model_sha256_.clear();
  round_ = *std::move(round);
  v1::AdvertiseKeysRequest request;
  request.set_task(a.task());
  request.set_round_id(a.round_id());
  *request.mutable_keys() = secagg::ToProto(round_->advertisement());
  advertised_ = request;
  return request;
}

absl::StatusOr<v1::ShareKeysRequest> SecureAggregationSession::ShareKeys(
    const v1::TaskAssignment& a) {
  absl::StatusOr<secagg::SecAggNodeRound*> round = RoundOf(a);
  if (!round.ok()) return round.status();
  if (shared_) return *shared_;
  // A newer list the CA signed, relayed by the coordinator, revokes too; one
  // that does not verify means the coordinator relays junk.
  if (!a.secure().crl_pem().empty()) {
    absl::StatusOr<bool> taken = verifier_->UseRevocationList(a.secure().crl_pem());
    if (!taken.ok()) {
      Forget();
      return absl::PermissionDeniedError(taken.status().message());
    }
  }
  std::vector<secagg::SignedAdvertisement> u1;
  for (const v1::SignedKeys& keys : a.secure().advertisements()) {
    absl::StatusOr<secagg::SignedAdvertisement> ad =
        secagg::FromProto(keys, a.task(), a.round_id());
    if (!ad.ok()) {
      Forget();
      return ad.status();
    }
    u1.push_back(*std::move(ad));
  }
  absl::StatusOr<std::vector<secagg::SealedShares>> shares = (*round)->ShareKeys(u1);
  if (!shares.ok()) {
    Forget();
    return shares.status();
  }
  v1::ShareKeysRequest request;
  request.set_task(a.task());
  request.set_round_id(a.round_id());
  for (const secagg::SealedShares& s : *shares) *request.add_shares() = secagg::ToProto(s);
  shared_ = request;
  return request;
}

absl::Status SecureAggregationSession::CheckMayContribute(const v1::TaskAssignment& a,
                                                          const std::string& model_sha256) const {
  return record_->CheckAllowed({a.task(), a.model_version(), model_sha256, a.round_id()});
}

absl::StatusOr<SecureAggregationSession::MaskedUpdate> SecureAggregationSession::MaskUpdate(
    const v1::TaskAssignment& a, const std::string& model_sha256,
    std::span<const UpdatePiece> update, uint64_t samples) {
  absl::StatusOr<secagg::SecAggNodeRound*> round = RoundOf(a);
  if (!round.ok()) return round.status();
  const ContributionRecord::Entry contribution{a.task(), a.model_version(), model_sha256,
                                               a.round_id()};
  const v1::SecureRound& params = a.secure();
  if (samples == 0 || samples > params.total_weight()) {
    Forget();
    return absl::FailedPreconditionError(absl::StrCat(
        "this node's ", samples, " training samples are outside 1..", params.total_weight(),
        ", the round's announced total; the coordinator's weights do not fit"));
  }
  absl::StatusOr<secagg::MaskedUpdate> codec = secagg::MaskedUpdate::Create(params);
  if (!codec.ok()) {
    Forget();
    return absl::FailedPreconditionError(
        absl::StrCat("the round's fixed-point parameters are unsafe: ", codec.status().message()));
  }
  absl::StatusOr<secagg::MaskedUpdate::Encoded> encoded = codec->Encode(update, samples);
  if (!encoded.ok()) return encoded.status();
  std::vector<secagg::SealedShares> received;
  for (const v1::SealedShare& s : params.shares()) received.push_back(secagg::FromProto(s));
  absl::StatusOr<secagg::MaskedInputResult> masked =
      (*round)->MaskedInput(received, encoded->words);
  std::fill(encoded->words.begin(), encoded->words.end(), 0u);
  if (!masked.ok()) {
    Forget();
    return masked.status();
  }
  // On disk before the masked input can leave: a crash after this line and
  // before the upload costs a contribution, never the other way round.
  if (absl::Status s = record_->Record(contribution); !s.ok()) {
    std::fill(masked->masked.begin(), masked->masked.end(), 0u);
    Forget();
    return s;
  }
  model_version_ = a.model_version();
  model_sha256_ = model_sha256;
  MaskedUpdate out{std::move(masked->masked), encoded->clipped, {}};
  for (secagg::ShareComplaint& complaint : masked->complaints) {
    spdlog::warn("round {}: the share {} sent cannot be used ({}); reported to the coordinator",
                 a.round_id(), complaint.share.from, complaint.reason);
    out.complaints.push_back(secagg::ToProto(complaint));
    OPENSSL_cleanse(complaint.share_key.data(), complaint.share_key.size());
  }
  return out;
}

absl::StatusOr<v1::ConfirmSurvivorsRequest> SecureAggregationSession::ConfirmSurvivors(
    const v1::TaskAssignment& a) {
  absl::StatusOr<secagg::SecAggNodeRound*> round = RoundOf(a);
  if (!round.ok()) return round.status();
  if (confirmed_) return *confirmed_;
  std::set<std::string> u3(a.secure().masked_input_from().begin(),
                           a.secure().masked_input_from().end());
  absl::StatusOr<std::string> signature = (*round)->ConfirmSurvivors(u3);
  if (!signature.ok()) {
    Forget();
    return signature.status();
  }
  // On record before the signature leaves: this node helps unmask at most one
  // list per model.
  ContributionRecord::Entry confirmation{
      a.task(), model_version_, model_sha256_, a.round_id(), {u3.begin(), u3.end()}};
  if (absl::Status s = record_->RecordConfirmation(confirmation); !s.ok()) {
    Forget();
    return s;
  }
  v1::ConfirmSurvivorsRequest request;
  request.set_task(a.task());
  request.set_round_id(a.round_id());
  request.set_signature(*std::move(signature));
  confirmed_ = request;
  return request;
}

absl::StatusOr<v1::UnmaskRequest> SecureAggregationSession::Unmask(const v1::TaskAssignment& a) {
  absl::StatusOr<secagg::SecAggNodeRound*> round = RoundOf(a);
  if (!round.ok()) return round.status();
  if (revealed_) return *revealed_;
  std::set<std::string> u3(a.secure().masked_input_from().begin(),
                           a.secure().masked_input_from().end());
  std::map<std::string, std::string> signatures;
  for (const v1::SurvivorSignature& s : a.secure().survivor_signatures()) {
    if (!signatures.emplace(s.node(), s.signature()).second) {
      Forget();
      return absl::PermissionDeniedError(
          absl::StrCat("round ", a.round_id(), ": two survivor-list signatures from ", s.node()));
    }
  }
  absl::StatusOr<secagg::UnmaskShares> shares = (*round)->Unmask(u3, signatures);
  if (!shares.ok()) {
    Forget();
    return shares.status();
  }
  v1::UnmaskRequest request;
  request.set_task(a.task());
  request.set_round_id(a.round_id());
  secagg::ToProto(*shares, &request);
  revealed_ = request;
  return request;
}

}  // namespace fedcustoms::node
