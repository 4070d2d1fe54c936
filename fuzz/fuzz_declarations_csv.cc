// The declarations CSV reader on arbitrary file contents, with a schema that
// has every column role, under both bad-row policies. It must return an error
// or a table whose shape matches the schema and whose values are in range,
// never crash. The bytes go to a memfd, read through /proc/self/fd like any
// file.
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"
#include "tests/support/small_declaration_schema.h"

namespace {

constexpr const char* kSchemaJson = fedcustoms::testing_support::kSmallSchemaJson;

void CheckTable(const fedcustoms::data::DeclarationTable& t) {
  const size_t n = t.rows;
  if (n == 0 || t.numeric.size() != n * 2 || t.categorical.size() != n * 2 ||
      t.labels.size() != n || t.days.size() != n || t.ids.size() != n) {
    std::abort();
  }
  for (float v : t.numeric) {
    if (!std::isfinite(v)) std::abort();
  }
  for (size_t i = 0; i < t.categorical.size(); ++i) {
    const int64_t bucket = t.categorical[i];
    if (bucket < 0 || bucket >= static_cast<int64_t>(t.buckets[i % 2])) std::abort();
  }
  for (float label : t.labels) {
    if (label != 0 && label != 1) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fedcustoms::v1::DeclarationSchema schema = [] {
    spdlog::set_level(spdlog::level::off);  // the SKIP policy logs every bad row
    auto parsed = fedcustoms::data::ParseDeclarationSchema(kSchemaJson, "fuzz schema");
    if (!parsed.ok()) std::abort();
    return *parsed;
  }();
  static const int fd = ::memfd_create("fuzz.csv", 0);
  static const std::string path = absl::StrCat("/proc/self/fd/", fd);
  if (fd < 0 || ::ftruncate(fd, 0) != 0) std::abort();
  if (size > 0 && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  for (auto policy : {fedcustoms::v1::FAIL, fedcustoms::v1::SKIP}) {
    auto table = fedcustoms::data::ReadDeclarationsCsv(path, schema, policy);
    if (table.ok()) CheckTable(*table);
  }
  return 0;
}
