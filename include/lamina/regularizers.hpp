// Weight regularizers and constraints with Keras' names, defaults and formulas
// (keras.regularizers, keras.constraints). A regularizer adds a penalty to the training loss; a
// constraint projects a weight after each optimizer step. Layers take them in their Options:
//
//   layers::Dense({.units = 64, .kernel_regularizer = regularizers::L2(0.01f),
//                  .kernel_constraint = constraints::MaxNorm(2.f)});
//   Tensor penalty = model.regularization_loss();   // what fit adds to the loss
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

// Keras' L1, L2 and L1L2: penalty(w) = l1 * sum(|w|) + l2 * sum(w^2) (no 0.5 factor, as Keras).
struct Regularizer {
  float l1 = 0.f;
  float l2 = 0.f;
  // The penalty as a differentiable scalar (its gradient: l1 * sign(w) + 2 * l2 * w).
  Tensor operator()(const Tensor& w) const;
  // Keras 3's serialized form: {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, ...}.
  Json config() const;
  // From Keras 2 or 3 JSON: {"class_name": "L1" | "L2" | "L1L2", "config": {...}} or the names "l1",
  // "l2" (0.01, Keras' defaults); nullopt for null. ValueError for anything else, saying what it got.
  static std::optional<Regularizer> from_config(const Json& j);
  bool operator==(const Regularizer&) const = default;
};

namespace regularizers {
inline Regularizer L1(float l1 = 0.01f) { return {.l1 = l1}; }
inline Regularizer L2(float l2 = 0.01f) { return {.l2 = l2}; }
inline Regularizer L1L2(float l1 = 0.f, float l2 = 0.f) { return {.l1 = l1, .l2 = l2}; }
}  // namespace regularizers

// Keras' weight constraints (keras/src/constraints/constraints.py), applied in place after each
// optimizer step. `axis` lists the axes the norm runs over (Keras' axis: Dense's kernel
// (in, units) with axis 0 constrains each unit's incoming weights; Conv2D's (KH, KW, C, F) wants
// {0, 1, 2}); negative counts from the end. eps = 1e-7 (Keras' backend.epsilon()).
//   MaxNorm:    w * clip(norm, 0, max_value) / (eps + norm)
//   NonNeg:     w * (w >= 0)
//   UnitNorm:   w / (eps + norm)
//   MinMaxNorm: w * (rate * clip(norm, min_value, max_value) + (1 - rate) * norm) / (eps + norm)
struct Constraint {
  enum Kind { max_norm, non_neg, unit_norm, min_max_norm };
  Kind kind = non_neg;
  float min_value = 0.f, max_value = 2.f, rate = 1.f;
  std::vector<int64_t> axis{0};
  void apply(Tensor& w) const;  // in place, outside autograd
  Json config() const;          // Keras 3's serialized form
  // From Keras 2 or 3 JSON ({"class_name": "MaxNorm", "config": {...}}; the names "max_norm",
  // "non_neg", "unit_norm", "min_max_norm" with their defaults); nullopt for null.
  static std::optional<Constraint> from_config(const Json& j);
  bool operator==(const Constraint&) const = default;
};

namespace constraints {
inline Constraint MaxNorm(float max_value = 2.f, std::vector<int64_t> axis = {0}) {
  return {.kind = Constraint::max_norm, .max_value = max_value, .axis = std::move(axis)};
}
inline Constraint NonNeg() { return {.kind = Constraint::non_neg}; }
inline Constraint UnitNorm(std::vector<int64_t> axis = {0}) {
  return {.kind = Constraint::unit_norm, .axis = std::move(axis)};
}
inline Constraint MinMaxNorm(float min_value = 0.f, float max_value = 1.f, float rate = 1.f,
                             std::vector<int64_t> axis = {0}) {
  return {.kind = Constraint::min_max_norm, .min_value = min_value, .max_value = max_value, .rate = rate,
          .axis = std::move(axis)};
}
}  // namespace constraints

}  // namespace lamina
