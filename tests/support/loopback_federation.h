#pragma once
// Helpers shared by the federation tests: the TLS identities of a development
// PKI (pki::InitDevPki), and coordinator and node configs on loopback.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/pki/dev_pki.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::testing_support {

// The TLS files of `name` ("coordinator", "EE", "analyst", ...) in the PKI at
// `pki_dir`.
inline v1::TlsFiles DevIdentity(const std::string& pki_dir, const std::string& name) {
  return pki::IdentityFiles(pki_dir, name);
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

// A node of administration `admin` in a federation directory `root` (PKI in
// root/pki, synthetic declarations in root/data/<admin>, see
// federation_dir.h) for `task` of the coordinator on localhost:`port`, its
// work directory root/<run>/node-<admin>; it exits when the task is finished
// and retries at most every 2 s. Not finalized, so callers adjust it first.
inline v1::NodeConfig LoopbackNodeConfig(const std::string& root, const std::string& admin,
                                         int port, const std::string& run,
                                         const std::string& task) {
  v1::NodeConfig n;
  n.set_coordinator_address(absl::StrCat("localhost:", port));
  *n.mutable_tls() = DevIdentity(root + "/pki", admin);
  n.set_coordinator_public_key(root + "/pki/coordinator-signing.pub");
  n.set_task(task);
  n.set_data_file(absl::StrCat(root, "/data/", admin, "/declarations.csv"));
  n.set_schema_file(absl::StrCat(root, "/data/", admin, "/declarations.schema.json"));
  n.set_work_dir(absl::StrCat(root, "/", run, "/node-", admin));
  n.set_exit_when_finished(true);
  n.set_max_backoff_seconds(2);
  return n;
}

}  // namespace fedcustoms::testing_support
