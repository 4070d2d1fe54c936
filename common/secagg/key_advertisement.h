#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"
#include "common/pki/revocation_list.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/mask_generator.h"

namespace fedcustoms::secagg {

// The public terms of a secure round that every node must see alike: the
// threshold, W (the divisor of every node's weight) and the fixed-point
// encoding. Signed in every advertisement and with the survivor list: a
// coordinator that shows one node another W (to make that node's update
// dominate the sum) or another t breaks the signatures of the others, and
// the round stops before any masked input leaves.
struct RoundTerms {
  uint32_t threshold = 0;
  uint64_t total_weight = 0;
  double clip = 0;
  double scale = 0;
  uint32_t max_nodes = 0;
  bool operator==(const RoundTerms&) const = default;
};

// SHA-256 commitment to a node's self-mask seed for one round.
using SeedCommitment = std::array<uint8_t, 32>;

// The public keys a node advertises for one round of secure aggregation: one
// X25519 key to agree pairwise mask seeds, one to encrypt the shares it sends,
// and a commitment to its self-mask seed. They are signed with the node's
// certificate key and checked by every other node against the federation CA,
// so a coordinator that relays them cannot substitute its own keys (the
// signed-key variant of Bonawitz et al. 2017).
struct AdvertisedKeys {
  std::string task;
  uint64_t round_id = 0;
  std::string node;  // the signer's certificate CN
  X25519PublicKey mask_key{};
  X25519PublicKey cipher_key{};
  SeedCommitment seed_commitment{};
  // Not sent: each verifier fills in the terms it was given, so a signature
  // made over other terms does not verify.
  RoundTerms terms;
};

// The exact bytes that are signed: a fixed label, then each field prefixed by
// its length, so no two different advertisements share a payload.
std::string AdvertisementPayload(const AdvertisedKeys& keys);

// The commitment an advertisement carries: SHA-256 over a fixed label, task,
// round, node and the seed. The seed is 32 random bytes, so the commitment
// tells nothing of it; the seed reconstructed from shares must match it.
SeedCommitment CommitToSeed(const std::string& task, uint64_t round_id, const std::string& node,
                            const MaskSeed& seed);

// SHA-256 (raw bytes) over the advertisement payloads of a round's U1, in
// node order: what binds a survivor-list signature to one run of a round, so
// that a signature from another run under the same round id (other keys)
// does not verify. Each entry's terms must be the ones the verifier holds.
std::string AdvertisedKeysDigest(const std::vector<AdvertisedKeys>& u1_by_node);

// What a survivor signs, besides task, round and its own name (the
// consistency check of the active-adversary protocol): the list U3, the
// round's terms, and the digest of the round's advertised keys.
struct SurvivorList {
  std::set<std::string> u3;
  RoundTerms terms;
  std::string u1_digest;  // AdvertisedKeysDigest
};

// The bytes signed: a fixed label, task, round, signer, the terms, the U1
// digest and every member of U3 in order, each length-prefixed.
std::string SurvivorListPayload(const std::string& task, uint64_t round_id,
                                const std::string& signer, const SurvivorList& list);

// What a sender signs with each sealed share message: a fixed label, task,
// round, sender, receiver, the digest of the U1 it dealt its shares for
// (AdvertisedKeysDigest: it fixes every node's share index x), SHA-256 of
// the sealed bytes and the commitment to the key they are sealed under,
// each length-prefixed. With it a receiver can show a third party (the
// coordinator) what the sender sent; and a receiver shown another U1 than
// its sender (so another x) finds that the signature does not verify and
// refuses the round, instead of revealing the key of a good message.
std::string SealedSharePayload(const std::string& task, uint64_t round_id, const std::string& from,
                               const std::string& to, std::string_view u1_digest,
                               std::string_view sealed, std::string_view key_commitment);

// Signs advertisements with the node's TLS private key (RSA-PSS with SHA-256
// for RSA keys, ECDSA with SHA-256 for EC keys, Ed25519 as is).
class KeyAdvertisementSigner {
 public:
  // Reads the PEM private key at `private_key_path` (the node's tls.key).
  static absl::StatusOr<std::unique_ptr<KeyAdvertisementSigner>> Create(
      const std::string& private_key_path);
  absl::StatusOr<std::string> Sign(const AdvertisedKeys& keys) const;
  // Signs any payload (SurvivorListPayload) the same way.
  absl::StatusOr<std::string> SignPayload(std::string_view payload) const;

 private:
  explicit KeyAdvertisementSigner(crypto::EvpPkeyPtr key) : key_(std::move(key)) {}
  crypto::EvpPkeyPtr key_;
};

// Checks another node's advertisement: its certificate chains to the
// federation CA (dates included), is not on the revocation list in force, is
// a node certificate whose CN is the advertised node, and its key signed
// exactly these keys for this task and round. Every failure is
// PermissionDenied "keys advertised for <node>: ..." saying which check
// failed; a node refuses the round on any of them. Not thread-safe while
// UseRevocationList may be called.
class KeyAdvertisementVerifier {
 public:
  // Reads the federation CA certificate(s) at `ca_cert_path`, and the CRL at
  // `crl_path` unless it is empty (RevocationList::Load's checks).
  static absl::StatusOr<std::unique_ptr<KeyAdvertisementVerifier>> Create(
      const std::string& ca_cert_path, const std::string& crl_path = "");
  // On success, `*certificate` (if given) receives the parsed certificate,
  // for checking the node's later signatures without parsing it again.
  absl::Status Verify(const AdvertisedKeys& keys, std::string_view cert_pem,
                      std::string_view signature, crypto::X509Ptr* certificate = nullptr) const;
  // Any other payload a node signs with its certificate key (a boosting
  // session's key, common/boosting/boosting_keys.h): the same checks as
  // Verify on `cert_pem` (chain, revocation, role node, CN = `node`) and the
  // signature over exactly `payload`. PermissionDenied "<what>: ..." naming
  // the failed check; `*certificate` as in Verify.
  absl::Status VerifyNodeSignature(const std::string& node, std::string_view cert_pem,
                                   std::string_view payload, std::string_view signature,
                                   std::string_view what,
                                   crypto::X509Ptr* certificate = nullptr) const;
  // `signer`'s signature on `list`, with the certificate it advertised keys
  // with (already verified by Verify). PermissionDenied "survivor list signed
  // by <signer>: ..." otherwise.
  absl::Status VerifySurvivorList(const std::string& task, uint64_t round_id,
                                  const std::string& signer, const SurvivorList& list,
                                  std::string_view cert_pem, std::string_view signature) const;
  // The same with the certificate already parsed (a node checks t of them
  // per round: parsing each PEM again would cost more than the signature).
  absl::Status VerifySurvivorList(const std::string& task, uint64_t round_id,
                                  const std::string& signer, const SurvivorList& list, X509* cert,
                                  std::string_view signature) const;

  // `from`'s signature on one sealed share message (SealedSharePayload), with
  // the certificate it advertised keys with. PermissionDenied "share from
  // <from> to <to>: ..." otherwise.
  absl::Status VerifySealedShare(const std::string& task, uint64_t round_id,
                                 const std::string& from, const std::string& to,
                                 std::string_view u1_digest, std::string_view sealed,
                                 std::string_view key_commitment, X509* cert,
                                 std::string_view signature) const;

  // A revocation list relayed by the coordinator (PEM): used instead of the
  // one in force when the CA signed it, it is not stale, and it was issued
  // later. Returns whether it was taken; InvalidArgument when it does not
  // verify (the caller refuses the round: the coordinator relayed junk).
  absl::StatusOr<bool> UseRevocationList(std::string_view crl_pem);

 private:
  KeyAdvertisementVerifier(std::vector<crypto::X509Ptr> cas, std::string ca_path,
                           std::shared_ptr<const pki::RevocationList> crl)
      : cas_(std::move(cas)), ca_path_(std::move(ca_path)), crl_(std::move(crl)) {}
  std::vector<crypto::X509Ptr> cas_;
  std::string ca_path_;
  std::shared_ptr<const pki::RevocationList> crl_;  // may be null
};

}  // namespace fedcustoms::secagg
