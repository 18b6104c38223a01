// Weight initializers in Keras' names and formulas, all drawing from a seeded Generator.
// Fans: a Dense kernel (in, units) has fan_in = in, fan_out = units; a Conv2D kernel
// (KH, KW, C, F) has fan_in = KH KW C, fan_out = KH KW F (Keras' receptive-field rule).
//
//   Dense({.units = 64, .kernel_initializer = Initializer::he_normal()});
//   Initializer::from_config(json)   // "glorot_uniform", {"class_name": "VarianceScaling", ...}
#pragma once

#include <string>

#include "lamina/json.hpp"
#include "lamina/random.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

struct Initializer {
  enum class Kind { zeros, ones, constant, random_normal, random_uniform, truncated_normal, variance_scaling, orthogonal };
  enum class Mode { fan_in, fan_out, fan_avg };
  enum class Distribution { truncated_normal, untruncated_normal, uniform };

  Kind kind = Kind::zeros;
  float value = 0.f;                      // constant
  float mean = 0.f, stddev = 0.05f;       // random_normal, truncated_normal
  float minval = -0.05f, maxval = 0.05f;  // random_uniform
  float scale = 1.f;                      // variance_scaling
  float gain = 1.f;                       // orthogonal
  Mode mode = Mode::fan_in;
  Distribution distribution = Distribution::truncated_normal;
  std::string keras_name = "Zeros";       // the class name written back to JSON

  static Initializer zeros();
  static Initializer ones();
  static Initializer constant(float value);
  static Initializer random_normal(float mean = 0.f, float stddev = 0.05f);
  static Initializer random_uniform(float minval = -0.05f, float maxval = 0.05f);
  static Initializer truncated_normal(float mean = 0.f, float stddev = 0.05f);
  static Initializer variance_scaling(float scale, Mode mode, Distribution distribution);
  static Initializer glorot_uniform();  // U(+-sqrt(6 / (fan_in + fan_out)))
  static Initializer glorot_normal();   // truncated N(0, 2 / (fan_in + fan_out))
  static Initializer he_uniform();      // U(+-sqrt(6 / fan_in))
  static Initializer he_normal();       // truncated N(0, 2 / fan_in)
  static Initializer lecun_uniform();   // U(+-sqrt(3 / fan_in))
  static Initializer lecun_normal();    // truncated N(0, 1 / fan_in)
  // gain * an orthogonal matrix (Keras' Orthogonal, the recurrent kernels' default): the tensor
  // seen as (product of the leading axes, last axis) gets orthonormal rows or columns, whichever
  // are fewer, from the QR decomposition of a normal sample.
  static Initializer orthogonal(float gain = 1.f);

  // Fills `t`; its shape gives the fans: (..., in, out) has fan_in = in * receptive field,
  // fan_out = out * receptive field (the product of the leading axes); a vector has fan_in =
  // fan_out = its size.
  void fill(Tensor& t, Generator& gen) const;

  // Keras JSON: a name ("he_normal"), or {"class_name": ..., "config": {...}} in Keras 2 or 3
  // form. Unknown names throw ValueError listing the known ones.
  static Initializer from_config(const Json& j);
  Json config() const;  // {"class_name": ..., "config": {...}}
};

}  // namespace lamina
