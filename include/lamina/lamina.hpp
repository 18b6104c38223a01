// Lamina: a deep-learning library in C++20. This header includes everything.
//
//   tensor.hpp    Shape, Tensor (float32, contiguous) and seeded creation
//   random.hpp    Generator, manual_seed
//   autograd.hpp  define-by-run graphs, backward(), NoGradGuard
//   ops.hpp       matmul, broadcasting arithmetic, reductions, activations, softmax
//   losses.hpp    MSE, MAE, binary / categorical / sparse categorical cross-entropy
//
//   #include <lamina/lamina.hpp>
//   using namespace lamina;
//   Tensor w = Tensor::randn({3, 1}).requires_grad_();
//   Tensor loss = mean_squared_error(y, matmul(x, w));
//   loss.backward();                 // w.grad()
#pragma once

#include "lamina/autograd.hpp"
#include "lamina/error.hpp"
#include "lamina/losses.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"
#include "lamina/tensor.hpp"
