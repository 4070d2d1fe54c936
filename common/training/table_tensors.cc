#include "common/training/table_tensors.h"

#include <torch/torch.h>

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::training {
namespace {

// A non-owning [rows, width] view of a row-major table column block; only
// ever read (index_select / clone copy out of it).
template <typename T>
at::Tensor View(const std::vector<T>& values, int64_t rows, int64_t width, at::ScalarType dtype) {
  TORCH_CHECK(values.size() == static_cast<size_t>(rows * width), "table holds ", values.size(),
              " values, expected ", rows, " x ", width);
  if (values.empty()) return torch::empty({rows, width}, torch::dtype(dtype));
  return torch::from_blob(const_cast<T*>(values.data()), {rows, width}, torch::dtype(dtype));
}

at::Tensor Gather(const at::Tensor& view, std::span<const int64_t> rows) {
  const auto n = static_cast<int64_t>(rows.size());
  if (n == 0 || view.numel() == 0) {
    for (int64_t r : rows) {
      TORCH_CHECK(r >= 0 && r < view.size(0), "row index ", r, " out of range");
    }
    std::vector<int64_t> shape = view.sizes().vec();
    shape[0] = n;
    return torch::empty(shape, view.options());
  }
  at::Tensor index =
      torch::from_blob(const_cast<int64_t*>(rows.data()), {n}, torch::dtype(torch::kInt64));
  return view.index_select(0, index);  // checks the range; copies
}

at::Tensor NumericView(const data::DeclarationTable& table) {
  return View(table.numeric, static_cast<int64_t>(table.rows),
              static_cast<int64_t>(table.numeric_width()), torch::kFloat32);
}

at::Tensor CategoricalView(const data::DeclarationTable& table) {
  return View(table.categorical, static_cast<int64_t>(table.rows),
              static_cast<int64_t>(table.categorical_width()), torch::kInt64);
}

at::Tensor LabelView(const data::DeclarationTable& table) {
  TORCH_CHECK(table.has_labels(), "the table has no labels");
  return View(table.labels, static_cast<int64_t>(table.rows), 1, torch::kFloat32);
}

}  // namespace

at::Tensor NumericTensor(const data::DeclarationTable& table) { return NumericView(table).clone(); }
at::Tensor NumericTensor(const data::DeclarationTable& table, std::span<const int64_t> rows) {
  return Gather(NumericView(table), rows);
}

at::Tensor CategoricalTensor(const data::DeclarationTable& table) {
  return CategoricalView(table).clone();
}
at::Tensor CategoricalTensor(const data::DeclarationTable& table, std::span<const int64_t> rows) {
  return Gather(CategoricalView(table), rows);
}

at::Tensor LabelTensor(const data::DeclarationTable& table) {
  return LabelView(table).clone().squeeze(1);
}
at::Tensor LabelTensor(const data::DeclarationTable& table, std::span<const int64_t> rows) {
  return Gather(LabelView(table), rows).squeeze(1);
}

absl::Status CheckTableShape(const data::DeclarationTable& table) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (table.numeric.size() != table.rows * table.numeric_width()) {
    return bad("table.numeric has ", table.numeric.size(), " values, expected ", table.rows,
               " rows x ", table.numeric_width(), " features");
  }
  if (table.categorical.size() != table.rows * table.categorical_width()) {
    return bad("table.categorical has ", table.categorical.size(), " values, expected ", table.rows,
               " rows x ", table.categorical_width(), " features");
  }
  if (table.buckets.size() != table.categorical_width()) {
    return bad("table.buckets has ", table.buckets.size(), " entries, expected ",
               table.categorical_width());
  }
  if (table.has_labels() && table.labels.size() != table.rows) {
    return bad("table.labels has ", table.labels.size(), " values, expected ", table.rows);
  }
  return absl::OkStatus();
}

absl::Status CheckRows(const data::DeclarationTable& table, int64_t numeric_width,
                       const std::vector<uint32_t>& buckets, std::span<const int64_t> rows,
                       bool need_labels) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (absl::Status s = CheckTableShape(table); !s.ok()) return s;
  const size_t fn = table.numeric_width();
  const size_t fc = table.categorical_width();
  if (static_cast<int64_t>(fn) != numeric_width) {
    return bad("the table has ", fn, " numeric features, the model ", numeric_width);
  }
  if (fc != buckets.size()) {
    return bad("the table has ", fc, " categorical features, the model ", buckets.size());
  }
  for (size_t j = 0; j < fc; ++j) {
    if (table.buckets[j] != buckets[j]) {
      return bad("categorical feature \"", table.categorical_names[j], "\" has ", table.buckets[j],
                 " buckets in the table, ", buckets[j], " in the model");
    }
  }
  if (need_labels && !table.has_labels()) return bad("the table has no labels");
  for (int64_t r : rows) {
    if (r < 0 || static_cast<uint64_t>(r) >= table.rows) {
      return bad("row index ", r, " is out of range (the table has ", table.rows, " rows)");
    }
    const float* numeric = table.numeric.data() + r * fn;
    for (size_t k = 0; k < fn; ++k) {
      if (!std::isfinite(numeric[k])) {
        return bad("row ", r, ", numeric feature \"", table.numeric_names[k], "\" is ", numeric[k]);
      }
    }
    const int64_t* ids = table.categorical.data() + r * fc;
    for (size_t j = 0; j < fc; ++j) {
      if (ids[j] < 0 || ids[j] >= static_cast<int64_t>(buckets[j])) {
        return bad("row ", r, ", categorical feature \"", table.categorical_names[j],
                   "\" has bucket ", ids[j], ", not in [0, ", buckets[j], ")");
      }
    }
    if (need_labels && table.labels[r] != 0.0f && table.labels[r] != 1.0f) {
      return bad("row ", r, ": label ", table.labels[r], " is not 0 or 1");
    }
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::training
