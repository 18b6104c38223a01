// Lamina: a deep-learning library in C++20. This header includes everything.
//
//   tensor.hpp    Shape, Tensor (float32, contiguous) and seeded creation
//   random.hpp    Generator, manual_seed
//   autograd.hpp  define-by-run graphs, backward(), NoGradGuard
//   ops.hpp       matmul, broadcasting arithmetic, reductions, activations, softmax,
//                 conv2d, max / average pooling, batch_norm, dropout (images channels-last),
//                 rnn (SimpleRNN / LSTM / GRU cells on oneDNN)
//   losses.hpp    MSE, MAE, binary / categorical / sparse categorical cross-entropy
//   initializers.hpp, layers.hpp   Keras' initializers and layers (Dense, Flatten, Conv2D,
//                 MaxPooling2D, BatchNormalization, Dropout, Reshape, ...; layers/*.hpp:
//                 LayerNormalization, the merge layers, SimpleRNN / LSTM / GRU)
//   optimizers.hpp  SGD, Adam, AdamW, RMSprop, Adagrad
//   metrics.hpp   accuracy, precision, recall, F1, confusion matrix
//   generative_metrics.hpp  a generator judged by a frozen classifier: classifier score
//                 (Inception Score), class entropy ratio, Frechet distance (FID), as TF-GAN
//   callbacks.hpp progress bar, History, EarlyStopping, ModelCheckpoint, TerminateOnNaN,
//                 LambdaCallback
//   model.hpp     Model (Input, Model(inputs, outputs): graphs) and Sequential: compile,
//                 fit, evaluate, predict, summary, save, load,
//                 save_checkpoint / load_checkpoint (exact resume)
//   data.hpp      IDX / CSV readers, Dataset, MNIST / Fashion-MNIST / digits loaders,
//                 BatchSource (what fit reads)
//   pipeline.hpp  Pipeline: tf.data-style map / shuffle / batch / prefetch over datasets,
//                 generators and caller buffers; image augmentation (augment::)
//   io.hpp        safetensors files, atomic writes
//   image.hpp     PNG read / write (libpng), image_grid (torchvision's make_grid)
//   onnx.hpp      save_onnx: a model as an ONNX file; load_onnx: models from torch.onnx.export
//   runtime.hpp   set_num_threads
//
//   #include <lamina/lamina.hpp>
//   using namespace lamina;
//   Tensor w = Tensor::randn({3, 1}).requires_grad_();
//   Tensor loss = mean_squared_error(y, matmul(x, w));
//   loss.backward();                 // w.grad()
#pragma once

#include "lamina/autograd.hpp"
#include "lamina/callbacks.hpp"
#include "lamina/data.hpp"
#include "lamina/error.hpp"
#include "lamina/explain.hpp"
#include "lamina/generative_metrics.hpp"
#include "lamina/image.hpp"
#include "lamina/initializers.hpp"
#include "lamina/io.hpp"
#include "lamina/layers.hpp"
#include "lamina/layers/bidirectional.hpp"
#include "lamina/layers/conv1d.hpp"
#include "lamina/layers/conv_transpose.hpp"
#include "lamina/layers/embedding.hpp"
#include "lamina/layers/layer_normalization.hpp"
#include "lamina/layers/merge.hpp"
#include "lamina/layers/recurrent.hpp"
#include "lamina/layers/sampling.hpp"
#include "lamina/layers/resize.hpp"
#include "lamina/layers/sequence.hpp"
#include "lamina/losses.hpp"
#include "lamina/metrics.hpp"
#include "lamina/generative.hpp"
#include "lamina/model.hpp"
#include "lamina/onnx.hpp"
#include "lamina/ops.hpp"
#include "lamina/optimizers.hpp"
#include "lamina/pipeline.hpp"
#include "lamina/random.hpp"
#include "lamina/report.hpp"
#include "lamina/regularizers.hpp"
#include "lamina/runtime.hpp"
#include "lamina/tensor.hpp"
#include "lamina/text.hpp"
