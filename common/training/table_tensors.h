#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/data/declaration_table.h"

namespace fedcustoms::training {

// Tensors built from a DeclarationTable for the models. Each returns an owning
// CPU tensor (a copy; the table may go away afterwards). The `rows` overloads
// gather those rows in the given order; the others take every row.
// Preconditions: CheckTableShape(table) is OK and every row index is in
// [0, table.rows); violations throw c10::Error.

// [n, numeric_width] float32.
at::Tensor NumericTensor(const data::DeclarationTable& table);
at::Tensor NumericTensor(const data::DeclarationTable& table, std::span<const int64_t> rows);

// [n, categorical_width] int64 bucket ids.
at::Tensor CategoricalTensor(const data::DeclarationTable& table);
at::Tensor CategoricalTensor(const data::DeclarationTable& table, std::span<const int64_t> rows);

// [n] float32 labels 0/1. Requires table.has_labels().
at::Tensor LabelTensor(const data::DeclarationTable& table);
at::Tensor LabelTensor(const data::DeclarationTable& table, std::span<const int64_t> rows);

// OK when the table's vectors have the sizes its row count and widths imply
// (numeric, categorical, buckets, and labels when present); otherwise an
// InvalidArgument error naming the field.
absl::Status CheckTableShape(const data::DeclarationTable& table);

// OK when the table fits a model with `numeric_width` numeric features and
// `buckets` (same widths and bucket counts), CheckTableShape passes, and for
// each of `rows`: the index is in range, numeric values are finite, bucket ids
// are in [0, buckets[j]) and, when `need_labels`, the label is 0 or 1. The
// error names the row and feature, e.g. "row 17, numeric feature \"value\" is
// nan".
absl::Status CheckRows(const data::DeclarationTable& table, int64_t numeric_width,
                       const std::vector<uint32_t>& buckets, std::span<const int64_t> rows,
                       bool need_labels);

}  // namespace fedcustoms::training
