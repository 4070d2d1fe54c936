#pragma once
// Helpers shared by the federation tests: the TLS identities of a development
// PKI (pki::InitDevPki) and a coordinator config on loopback.
#include <string>

#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::testing_support {

// The TLS files of `name` ("coordinator", "EE", "analyst", ...) in the PKI at
// `pki_dir`.
inline v1::TlsFiles DevIdentity(const std::string& pki_dir, const std::string& name) {
  v1::TlsFiles tls;
  tls.set_ca_cert(pki_dir + "/ca.pem");
  tls.set_cert(pki_dir + "/" + name + ".pem");
  tls.set_key(pki_dir + "/" + name + ".key");
  return tls;
}

// A coordinator on 127.0.0.1:0 (a free port) with the PKI's coordinator
// identity and signing key, registry and state under `dir`, and one task
// "risk" on `schema_file`; not finalized, so callers adjust it first.
inline v1::CoordinatorConfig LoopbackCoordinatorConfig(const std::string& pki_dir,
                                                       const std::string& dir,
                                                       const std::string& schema_file,
                                                       v1::AggregationMode mode) {
  v1::CoordinatorConfig c;
  c.set_listen_address("127.0.0.1:0");
  *c.mutable_tls() = DevIdentity(pki_dir, "coordinator");
  c.set_signing_key(pki_dir + "/coordinator-signing.key");
  c.set_registry_dir(dir + "/registry");
  c.set_state_dir(dir + "/state");
  c.set_aggregation_mode(mode);
  v1::TaskConfig* t = c.add_tasks();
  t->set_name("risk");
  t->set_schema_file(schema_file);
  return c;
}

}  // namespace fedcustoms::testing_support
