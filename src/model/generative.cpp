// Generative models (include/lamina/generative.hpp): the GAN's training step, sampling from a
// generator or a VAE's prior, and the decoder cut out of a VAE's graph.
#include "lamina/generative.hpp"

#include <cmath>
#include <map>

#include "lamina/autograd.hpp"
#include "lamina/layers/sampling.hpp"
#include "lamina/losses.hpp"

namespace lamina {

namespace {

std::string model_text(const Model& m) { return "model '" + m.name() + "'"; }

// The classes of a label input: the input_dim of an Embedding that reads it, else 0.
int64_t classes_read_from(const Model& model, int tensor) {
  for (const Model::Node& n : model.nodes())
    for (int t : n.inputs)
      if (t == tensor && n.layer->class_name() == "Embedding") return n.layer->config().value("input_dim", int64_t{0});
  return 0;
}

bool is_label_shape(const Shape& s) { return s.numel() == 1 && s.rank() <= 1; }

}  // namespace

GeneratorInputs generator_inputs_of(const Model& g) {
  const std::vector<Shape> shapes = g.input_shapes();
  const std::string at = model_text(g);
  auto describe = [&] {
    std::string s;
    for (const Shape& sh : shapes) s += (s.empty() ? "" : ", ") + sh.str();
    return s;
  };
  GeneratorInputs out;
  if (shapes.empty() || shapes.size() > 2)
    throw ValueError(at + ": a generator takes a latent vector (d,), and for a conditional one a (1,) class label, "
                          "got inputs " + describe());
  out.latent = -1;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (shapes.size() == 2 && is_label_shape(shapes[i]) && out.label < 0) {
      out.label = static_cast<int>(i);
    } else if (shapes[i].rank() == 1 && out.latent < 0) {
      out.latent = static_cast<int>(i);
    }
  }
  if (out.latent < 0 || (shapes.size() == 2 && out.label < 0))
    throw ValueError(at + ": a generator takes a latent vector (d,), and for a conditional one a (1,) class label, "
                          "got inputs " + describe());
  out.latent_dim = shapes[static_cast<size_t>(out.latent)][0];
  if (out.label >= 0) out.num_classes = classes_read_from(g, g.input_ids()[static_cast<size_t>(out.label)]);
  return out;
}

// --- GAN ------------------------------------------------------------------------------------------

GAN::GAN(Options options) : Model(options.name), options_(std::move(options)) {
  const std::string at = "GAN '" + name_ + "'";
  if (!options_.generator || !options_.discriminator) throw ValueError(at + ": needs a generator and a discriminator");
  Model& g = *options_.generator;
  Model& d = *options_.discriminator;
  if (!g.built() || !d.built() || g.input_shapes().empty() || d.input_shapes().empty())
    throw ValueError(at + ": build the generator and the discriminator first (a Functional model is built when made)");
  inputs_ = generator_inputs_of(g);
  const GeneratorInputs& gi = inputs_;
  const bool conditional = options_.num_classes > 0;
  if (conditional != (gi.label >= 0))
    throw ValueError(at + ": num_classes = " + std::to_string(options_.num_classes) + " but generator " +
                     model_text(g) + (gi.label >= 0 ? " takes a label input" : " takes no label input"));
  if (conditional && gi.num_classes > 0 && gi.num_classes != options_.num_classes)
    throw ValueError(at + ": num_classes = " + std::to_string(options_.num_classes) + " but the generator's label "
                          "Embedding takes " + std::to_string(gi.num_classes) + " classes");
  const std::vector<Shape> d_in = d.input_shapes();
  if (d_in.size() != (conditional ? 2u : 1u) || (conditional && !is_label_shape(d_in[1])))
    throw ValueError(at + ": discriminator " + model_text(d) + " must take " +
                     (conditional ? "[sample, label (1,)]" : "one input, the sample") + ", it has " +
                     std::to_string(d_in.size()) + " inputs");
  if (g.output_shape() != d_in[0])
    throw ShapeError(at + ": the generator " + model_text(g) + " makes samples of shape " + g.output_shape().str() +
                     ", the discriminator " + model_text(d) + " takes " + d_in[0].str());
  if (d.output_shape().numel() != 1)
    throw ShapeError(at + ": the discriminator " + model_text(d) + " must give one logit per sample, it gives " +
                     d.output_shape().str());
  if (!(options_.label_smoothing >= 0.f && options_.label_smoothing < 1.f))
    throw ValueError(at + ": label_smoothing must be in [0, 1), got " + std::to_string(options_.label_smoothing));
  auto default_adam = [] { return std::make_shared<Adam>(Adam::Options{.learning_rate = 2e-4, .beta_1 = 0.5}); };
  if (!options_.generator_optimizer) options_.generator_optimizer = default_adam();
  if (!options_.discriminator_optimizer) options_.discriminator_optimizer = default_adam();
  gen_.seed_(options_.seed ? *options_.seed : default_generator().next());
}

Tensor GAN::noise(int64_t n) { return Tensor::randn({n, inputs_.latent_dim}, gen_); }

Tensor GAN::checked_labels(const data::Batch& batch) const {
  const int64_t n = batch.x.at(0).dim(0);
  if (options_.num_classes == 0) return {};
  if (batch.y.empty() || batch.y[0].numel() != n)
    throw ValueError("GAN '" + name_ + "': a conditional GAN needs one class label per sample as the targets");
  const Tensor& y = batch.y[0];
  for (int64_t i = 0; i < n; ++i) {
    const float v = y.data()[i];
    if (!(v >= 0.f && v < static_cast<float>(options_.num_classes)) || v != std::floor(v))
      throw ValueError("GAN '" + name_ + "': label " + std::to_string(v) + " of sample " + std::to_string(i) +
                       " in the batch is not a class index in [0, " + std::to_string(options_.num_classes) + ")");
  }
  return reshape(y, Shape{n, 1});
}

std::vector<Tensor> GAN::generator_inputs(int64_t n, const Tensor& labels) {
  if (options_.num_classes == 0) return {noise(n)};
  std::vector<Tensor> in(2);
  in[static_cast<size_t>(inputs_.latent)] = noise(n);
  in[static_cast<size_t>(inputs_.label)] = labels;
  return in;
}

std::vector<Tensor> GAN::discriminator_inputs(const Tensor& samples, const Tensor& labels) const {
  if (options_.num_classes == 0) return {samples};
  return {samples, labels};
}

Logs GAN::train_step(const data::Batch& batch) {
  const Tensor& real = batch.x.at(0);
  const int64_t n = real.dim(0);
  const Tensor labels = checked_labels(batch);
  Model& g = *options_.generator;
  Model& d = *options_.discriminator;
  const Tensor real_target = Tensor::full({n, 1}, 1.f - options_.label_smoothing);
  const Tensor fake_target = Tensor::zeros({n, 1}), ones = Tensor::ones({n, 1});

  // The discriminator: reals towards 1, fakes (detached: no gradient reaches G) towards 0.
  const Tensor fake = g.call(generator_inputs(n, labels), true)[0].detach();
  const Tensor real_logits = reshape(d.call(discriminator_inputs(real, labels), true)[0], Shape{n, 1});
  const Tensor fake_logits = reshape(d.call(discriminator_inputs(fake, labels), true)[0], Shape{n, 1});
  Tensor d_loss = binary_crossentropy(real_target, real_logits, true) + binary_crossentropy(fake_target, fake_logits, true);
  if (const Tensor penalty = d.regularization_loss(); penalty.defined()) d_loss = d_loss + penalty;
  const std::vector<Tensor> dw = d.trainable_weights();
  options_.discriminator_optimizer->apply_gradients(grad(d_loss, dw), dw);
  d.apply_constraints();

  // The generator: fresh fakes that D should call real; only G's weights move.
  const Tensor fooled = reshape(d.call(discriminator_inputs(g.call(generator_inputs(n, labels), true)[0], labels), true)[0],
                                Shape{n, 1});
  Tensor g_loss = binary_crossentropy(ones, fooled, true);
  if (const Tensor penalty = g.regularization_loss(); penalty.defined()) g_loss = g_loss + penalty;
  const std::vector<Tensor> gw = g.trainable_weights();
  options_.generator_optimizer->apply_gradients(grad(g_loss, gw), gw);
  g.apply_constraints();

  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) right += (real_logits.data()[i] > 0.f) + (fake_logits.data()[i] <= 0.f);
  d_loss_.update_state(d_loss.item(), static_cast<double>(n));
  g_loss_.update_state(g_loss.item(), static_cast<double>(n));
  d_accuracy_.update_state(static_cast<double>(right) / static_cast<double>(2 * n), static_cast<double>(n));
  Logs logs;
  for (Metric* m : metrics()) logs.set(m->name(), m->result());
  return logs;
}

Logs GAN::test_step(const data::Batch& batch) {
  NoGradGuard no_grad;
  const Tensor& real = batch.x.at(0);
  const int64_t n = real.dim(0);
  const Tensor labels = checked_labels(batch);
  Model& d = *options_.discriminator;
  const Tensor fake = options_.generator->call(generator_inputs(n, labels), false)[0];
  const Tensor real_logits = reshape(d.call(discriminator_inputs(real, labels), false)[0], Shape{n, 1});
  const Tensor fake_logits = reshape(d.call(discriminator_inputs(fake, labels), false)[0], Shape{n, 1});
  const Tensor d_loss = binary_crossentropy(Tensor::ones({n, 1}), real_logits, true) +
                        binary_crossentropy(Tensor::zeros({n, 1}), fake_logits, true);
  const Tensor g_loss = binary_crossentropy(Tensor::ones({n, 1}), fake_logits, true);
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) right += (real_logits.data()[i] > 0.f) + (fake_logits.data()[i] <= 0.f);
  d_loss_.update_state(d_loss.item(), static_cast<double>(n));
  g_loss_.update_state(g_loss.item(), static_cast<double>(n));
  d_accuracy_.update_state(static_cast<double>(right) / static_cast<double>(2 * n), static_cast<double>(n));
  Logs logs;
  for (Metric* m : metrics()) logs.set(m->name(), m->result());
  return logs;
}

// --- sampling --------------------------------------------------------------------------------------

namespace {

const Model::Node* sampling_node(const Model& model) {
  const Model::Node* found = nullptr;
  for (const Model::Node& n : model.nodes())
    if (dynamic_cast<const layers::Sampling*>(n.layer.get())) {
      if (found)
        throw ValueError(model_text(model) + " has more than one Sampling layer ('" + found->layer->name() + "', '" +
                         n.layer->name() + "'); which one is the prior's is ambiguous");
      found = &n;
    }
  return found;
}

}  // namespace

Model vae_decoder(const Model& model) {
  const Model::Node* s = sampling_node(model);
  if (!s) throw ValueError(model_text(model) + " has no Sampling layer, so it has no decoder to sample from");
  std::map<int, KerasTensor> known;
  KerasTensor z = Input(model.tensor_shapes().at(static_cast<size_t>(s->output)), "z");
  known[s->output] = z;
  bool after = false;
  for (const Model::Node& n : model.nodes()) {
    if (&n == s) {
      after = true;
      continue;
    }
    if (!after) continue;
    std::vector<KerasTensor> in;
    for (int t : n.inputs)
      if (const auto it = known.find(t); it != known.end()) in.push_back(it->second);
    if (in.size() != n.inputs.size()) continue;  // not (only) downstream of z
    const KerasTensor out = (*n.layer)(in);
    for (int k = 0; k < n.output_count; ++k) known[n.output + k] = out.output(static_cast<size_t>(k));
  }
  std::vector<KerasTensor> outputs;
  for (size_t i = 0; i < model.output_ids().size(); ++i) {
    const auto it = known.find(model.output_ids()[i]);
    if (it == known.end())
      throw ValueError(model_text(model) + ": output '" + model.output_names()[i] + "' does not depend on the Sampling layer '" +
                       s->layer->name() + "' alone, so the decoder cannot be cut out at z");
    outputs.push_back(it->second);
  }
  return Model({z}, outputs, model.name() + "_decoder");
}

Tensor sample_generator(Model& model, const SampleOptions& o) {
  if (o.count < 1) throw ValueError("sample_generator: count must be >= 1, got " + std::to_string(o.count));
  Generator gen(o.seed ? *o.seed : default_generator().next());
  if (sampling_node(model)) {
    if (o.label)
      throw ValueError(model_text(model) + " is a VAE, which samples from its prior without a label; drop the label");
    Model decoder = vae_decoder(model);
    const Shape latent = decoder.input_shapes().at(0);
    std::vector<int64_t> dims{o.count};
    dims.insert(dims.end(), latent.begin(), latent.end());
    return decoder.predict(Tensor::randn(Shape(dims), gen), 256);
  }
  const GeneratorInputs gi = generator_inputs_of(model);
  std::vector<Tensor> in(gi.label >= 0 ? 2 : 1);
  in[static_cast<size_t>(gi.latent)] = Tensor::randn({o.count, gi.latent_dim}, gen);
  if (gi.label >= 0) {
    if (!o.label)
      throw ValueError(model_text(model) + " is a conditional generator: give the class to draw (--label K" +
                       (gi.num_classes ? ", 0 <= K < " + std::to_string(gi.num_classes) : std::string()) + ")");
    if (*o.label < 0 || (gi.num_classes > 0 && *o.label >= gi.num_classes))
      throw ValueError(model_text(model) + ": label " + std::to_string(*o.label) + " is out of range: the generator takes " +
                       (gi.num_classes ? "classes 0 to " + std::to_string(gi.num_classes - 1) : std::string("labels >= 0")));
    in[static_cast<size_t>(gi.label)] = Tensor::full({o.count, 1}, static_cast<float>(*o.label));
  } else if (o.label) {
    throw ValueError(model_text(model) + " is not conditional (one input, the latent vector): it takes no label");
  }
  return model.predict_all(in, 256).at(0);
}

}  // namespace lamina
