#include "common/secagg/key_advertisement.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <bit>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/pem.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_chain.h"
#include "common/pki/peer_identity.h"

namespace fedcustoms::secagg {
namespace {

constexpr char kSignatureMismatch[] = "the signature does not cover the signed payload";

std::string Field(std::string_view value) {
  return std::to_string(value.size()) + ":" + std::string(value);
}

std::string_view KeyBytes(const X25519PublicKey& key) {
  return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
}

// Digest and padding for `key`'s type, set on a DigestSign/DigestVerify
// context; Ed25519 signs the message itself (no digest).
bool InitForKey(EVP_MD_CTX* ctx, EVP_PKEY* key, bool sign) {
  const bool ed25519 = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  const EVP_MD* md = ed25519 ? nullptr : EVP_sha256();
  EVP_PKEY_CTX* pctx = nullptr;
  const int ok = sign ? EVP_DigestSignInit(ctx, &pctx, md, nullptr, key)
                      : EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, key);
  if (ok != 1) return false;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  return true;
}

// The terms as signed; doubles by their bit patterns (exact, and the same on
// every node).
std::string TermsText(const RoundTerms& terms) {
  auto bits = [](double v) { return std::to_string(std::bit_cast<uint64_t>(v)); };
  return "t=" + std::to_string(terms.threshold) + "|W=" + std::to_string(terms.total_weight) +
         "|clip=" + bits(terms.clip) + "|scale=" + bits(terms.scale) +
         "|n=" + std::to_string(terms.max_nodes);
}

// Whether `cert`'s key signed `payload` (the digest and padding of
// InitForKey).
bool SignatureVerifies(X509* cert, std::string_view payload, std::string_view signature) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx && key != nullptr && InitForKey(ctx.get(), key, /*sign=*/false) &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(payload.data()),
                       payload.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

std::string AdvertisementPayload(const AdvertisedKeys& keys) {
  return "fedcustoms/v1 secagg keys|" + Field(keys.task) + "|" + std::to_string(keys.round_id) +
         "|" + Field(keys.node) + "|" + Field(KeyBytes(keys.mask_key)) + "|" +
         Field(KeyBytes(keys.cipher_key)) + "|" + Field(KeyBytes(keys.seed_commitment)) + "|" +
         TermsText(keys.terms);
}

SeedCommitment CommitToSeed(const std::string& task, uint64_t round_id, const std::string& node,
                            const MaskSeed& seed) {
  crypto::Sha256 hash;
  hash.Update("fedcustoms/v1 secagg seed|" + Field(task) + "|" + std::to_string(round_id) + "|" +
              Field(node) + "|");
  hash.Update(seed.data(), seed.size());
  return hash.Final();
}

std::string AdvertisedKeysDigest(const std::vector<AdvertisedKeys>& u1_by_node) {
  crypto::Sha256 hash;
  hash.Update("fedcustoms/v1 secagg U1|" + std::to_string(u1_by_node.size()));
  for (const AdvertisedKeys& keys : u1_by_node)
    hash.Update("|" + Field(AdvertisementPayload(keys)));
  const crypto::Sha256Digest digest = hash.Final();
  return std::string(digest.begin(), digest.end());
}

std::string SurvivorListPayload(const std::string& task, uint64_t round_id,
                                const std::string& signer, const SurvivorList& list) {
  std::string out = "fedcustoms/v1 secagg survivors|" + Field(task) + "|" +
                    std::to_string(round_id) + "|" + Field(signer) + "|" + TermsText(list.terms) +
                    "|" + Field(list.u1_digest) + "|" + std::to_string(list.u3.size());
  for (const std::string& node : list.u3) out += "|" + Field(node);
  return out;
}

std::string SealedSharePayload(const std::string& task, uint64_t round_id, const std::string& from,
                               const std::string& to, std::string_view u1_digest,
                               std::string_view sealed, std::string_view key_commitment) {
  return "fedcustoms/v1 secagg sealed share|" + Field(task) + "|" + std::to_string(round_id) + "|" +
         Field(from) + "|" + Field(to) + "|" + Field(std::string(u1_digest)) + "|" +
         Field(crypto::Sha256Hex(sealed)) + "|" + Field(std::string(key_commitment));
}

absl::StatusOr<std::unique_ptr<KeyAdvertisementSigner>> KeyAdvertisementSigner::Create(
    const std::string& private_key_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(private_key_path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<crypto::EvpPkeyPtr> key = crypto::PrivateKeyFromPem(*pem, private_key_path);
  crypto::WipeString(*pem);
  if (!key.ok()) return key.status();
  return std::unique_ptr<KeyAdvertisementSigner>(new KeyAdvertisementSigner(*std::move(key)));
}

absl::StatusOr<std::string> KeyAdvertisementSigner::Sign(const AdvertisedKeys& keys) const {
  return SignPayload(AdvertisementPayload(keys));
}

absl::StatusOr<std::string> KeyAdvertisementSigner::SignPayload(std::string_view payload) const {
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (!ctx || !InitForKey(ctx.get(), key_.get(), /*sign=*/true) ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "sign secure-aggregation message");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "sign secure-aggregation message");
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::unique_ptr<KeyAdvertisementVerifier>> KeyAdvertisementVerifier::Create(
    const std::string& ca_cert_path, const std::string& crl_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(ca_cert_path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::vector<crypto::X509Ptr>> cas =
      crypto::CertificatesFromPem(*pem, ca_cert_path);
  if (!cas.ok()) return cas.status();
  std::shared_ptr<const pki::RevocationList> crl;
  if (!crl_path.empty()) {
    absl::StatusOr<std::shared_ptr<const pki::RevocationList>> loaded =
        pki::RevocationList::Load(crl_path, ca_cert_path);
    if (!loaded.ok()) return loaded.status();
    crl = *std::move(loaded);
  }
  return std::unique_ptr<KeyAdvertisementVerifier>(
      new KeyAdvertisementVerifier(*std::move(cas), ca_cert_path, std::move(crl)));
}

absl::StatusOr<bool> KeyAdvertisementVerifier::UseRevocationList(std::string_view crl_pem) {
  absl::StatusOr<std::shared_ptr<const pki::RevocationList>> relayed =
      pki::RevocationList::Parse(crl_pem, "the CRL relayed by the coordinator", cas_, ca_path_);
  if (!relayed.ok()) return relayed.status();
  if (crl_ != nullptr && !(*relayed)->IssuedAfter(*crl_)) return false;
  crl_ = *std::move(relayed);
  return true;
}

absl::Status KeyAdvertisementVerifier::Verify(const AdvertisedKeys& keys, std::string_view cert_pem,
                                              std::string_view signature,
                                              crypto::X509Ptr* certificate) const {
  absl::Status s =
      VerifyNodeSignature(keys.node, cert_pem, AdvertisementPayload(keys), signature,
                          absl::StrCat("keys advertised for ", keys.node), certificate);
  if (!s.ok() && absl::EndsWith(s.message(), kSignatureMismatch)) {
    return absl::PermissionDeniedError(
        absl::StrCat("keys advertised for ", keys.node,
                     ": the signature does not cover these keys for task ", keys.task, " round ",
                     keys.round_id, " (substituted key, replay from another round, or forgery)"));
  }
  return s;
}

absl::Status KeyAdvertisementVerifier::VerifyNodeSignature(
    const std::string& node, std::string_view cert_pem, std::string_view payload,
    std::string_view signature, std::string_view what, crypto::X509Ptr* certificate) const {
  const std::string who = std::string(what) + ": ";
  auto refuse = [&](absl::string_view why) {
    return absl::PermissionDeniedError(who + std::string(why));
  };
  absl::StatusOr<std::vector<crypto::X509Ptr>> chain =
      crypto::CertificatesFromPem(cert_pem, "advertised certificate");
  if (!chain.ok() || chain->empty()) return refuse("the certificate is not readable PEM");
  if (absl::Status s =
          pki::VerifyCertificateChain(cas_, *chain, X509_PURPOSE_SSL_CLIENT, "the federation CA");
      !s.ok()) {
    return refuse(s.message());
  }
  if (crl_ != nullptr) {
    if (absl::Status s = crl_->Check(cert_pem); !s.ok()) return refuse(s.message());
  }
  absl::StatusOr<pki::PeerIdentity> identity =
      pki::PeerIdentityFromCertificate(chain->front().get(), "advertised certificate");
  if (!identity.ok()) return refuse(identity.status().message());
  if (identity->role != pki::Role::kNode) {
    return refuse(
        absl::StrCat("the certificate's role is ", pki::RoleName(identity->role), ", not node"));
  }
  if (identity->common_name != node) {
    return refuse(absl::StrCat("the certificate is ", identity->common_name, "'s"));
  }
  if (!SignatureVerifies(chain->front().get(), payload, signature)) {
    return refuse(kSignatureMismatch);
  }
  if (certificate != nullptr) *certificate = std::move(chain->front());
  return absl::OkStatus();
}

absl::Status KeyAdvertisementVerifier::VerifySurvivorList(
    const std::string& task, uint64_t round_id, const std::string& signer, const SurvivorList& list,
    std::string_view cert_pem, std::string_view signature) const {
  absl::StatusOr<std::vector<crypto::X509Ptr>> chain =
      crypto::CertificatesFromPem(cert_pem, "advertised certificate");
  return VerifySurvivorList(task, round_id, signer, list,
                            chain.ok() && !chain->empty() ? chain->front().get() : nullptr,
                            signature);
}

absl::Status KeyAdvertisementVerifier::VerifySurvivorList(const std::string& task,
                                                          uint64_t round_id,
                                                          const std::string& signer,
                                                          const SurvivorList& list, X509* cert,
                                                          std::string_view signature) const {
  if (cert == nullptr ||
      !SignatureVerifies(cert, SurvivorListPayload(task, round_id, signer, list), signature)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "survivor list signed by ", signer, ": the signature does not cover this list of ",
        list.u3.size(), " nodes, these terms and these keys for task ", task, " round ", round_id,
        " (the coordinator showed nodes different lists, terms or keys, replayed another run, "
        "or forged a signature)"));
  }
  return absl::OkStatus();
}

absl::Status KeyAdvertisementVerifier::VerifySealedShare(
    const std::string& task, uint64_t round_id, const std::string& from, const std::string& to,
    std::string_view u1_digest, std::string_view sealed, std::string_view key_commitment,
    X509* cert, std::string_view signature) const {
  if (cert == nullptr ||
      !SignatureVerifies(
          cert, SealedSharePayload(task, round_id, from, to, u1_digest, sealed, key_commitment),
          signature)) {
    return absl::PermissionDeniedError(
        absl::StrCat("share from ", from, " to ", to, " for task ", task, " round ", round_id,
                     ": the signature of ", from,
                     " does not cover this message and these round keys "
                     "(altered in transit, forged, or the two nodes were shown different keys)"));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::secagg
