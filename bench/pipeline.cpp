// bench_pipeline: what Pipeline::prefetch buys when loading is slow. A small MLP (784-256-10,
// Adam, batch 64, one compute thread) trains through Model::fit on MNIST read front to back from
// a gzip file (records of label + 784 pixel bytes, gunzipped sample by sample), each sample
// shifted by up to 2 pixels and rotated by up to 10 degrees, once inline and once with
// prefetch(2) (the loader on the second core). Prints min and median seconds per epoch of each
// and one JSON line. Timings belong here, never in unit tests.
//   bench_pipeline [--data DIR] [--samples N] [--runs R] [--hidden UNITS]
// DIR/mnist/train-images-idx3-ubyte[.gz] when present, else synthetic images.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "lamina/lamina.hpp"

using namespace lamina;

namespace {

constexpr int64_t kPixels = 28 * 28;

// Writes n records (label byte, 784 pixel bytes) as one gzip file; returns how many it wrote.
int64_t write_records(const std::string& data_dir, int64_t n, const std::string& path) {
  std::vector<uint8_t> images, labels;
  const std::string images_path = data::find_data_file(data_dir + "/mnist", "train-images-idx3-ubyte");
  const std::string labels_path = data::find_data_file(data_dir + "/mnist", "train-labels-idx1-ubyte");
  if (!images_path.empty() && !labels_path.empty()) {
    data::Idx x = data::read_idx(images_path), y = data::read_idx(labels_path);
    n = std::min<int64_t>(n, x.dims[0]);
    images.assign(x.bytes.begin(), x.bytes.begin() + n * kPixels);
    labels.assign(y.bytes.begin(), y.bytes.begin() + n);
    std::cerr << "bench_pipeline: " << n << " MNIST images from " << images_path << "\n";
  } else {  // a bright square per class at a class-dependent place, plus noise
    Generator gen(1);
    images.resize(static_cast<size_t>(n * kPixels));
    labels.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<uint8_t>(i % 10);
      for (int64_t p = 0; p < kPixels; ++p) {
        const int64_t r = p / 28, c = p % 28, top = 2 + 2 * (i % 10);
        const bool on = r >= top && r < top + 6 && c >= 8 && c < 20;
        images[i * kPixels + p] = static_cast<uint8_t>((on ? 200 : 0) + gen.below(50));
      }
    }
    std::cerr << "bench_pipeline: no MNIST under " << data_dir << "/mnist; " << n << " synthetic images\n";
  }
  gzFile f = gzopen(path.c_str(), "wb6");
  if (f == nullptr) throw IoError("bench_pipeline: cannot write " + path);
  for (int64_t i = 0; i < n; ++i) {
    gzwrite(f, &labels[i], 1);
    gzwrite(f, images.data() + i * kPixels, kPixels);
  }
  gzclose(f);
  return n;
}

// A sequential generator over the records: reopens the file at sample 0 of each epoch.
data::SampleGenerator gzip_reader(const std::string& path) {
  std::shared_ptr<gzFile> file(new gzFile(nullptr), [](gzFile* f) {
    if (*f) gzclose(*f);
    delete f;
  });
  return [file, path](int64_t i, Generator&) -> std::optional<data::Sample> {
    if (i == 0) {
      if (*file) gzclose(*file);
      *file = gzopen(path.c_str(), "rb");
      if (!*file) throw IoError("bench_pipeline: cannot read " + path);
    }
    unsigned char record[1 + kPixels];
    if (gzread(*file, record, sizeof record) != static_cast<int>(sizeof record)) return std::nullopt;
    Tensor x = Tensor::empty({28, 28, 1});
    for (int64_t p = 0; p < kPixels; ++p) x.data()[p] = static_cast<float>(record[1 + p]) / 255.f;
    return data::Sample{{x}, {Tensor::scalar(static_cast<float>(record[0]))}};
  };
}

data::Pipeline make_pipeline(const std::string& path, int64_t n, bool prefetch) {
  auto augment = [](data::Sample s, Generator& rng) {
    Tensor img = data::augment::random_translation(s.x[0], rng, 2.f / 28.f, 2.f / 28.f);
    s.x[0] = data::augment::random_rotation(img, rng, 10.f).reshape({kPixels});
    return s;
  };
  data::Pipeline p = data::Pipeline::from_generator(gzip_reader(path),
                                                    {.input_shapes = {Shape{28, 28, 1}}, .target_shapes = {Shape{}}, .size = n})
                         .map(augment, {.input_shapes = std::vector<Shape>{Shape{kPixels}}, .name = "augment"})
                         .shuffle(1024, 1)
                         .batch(64);
  return prefetch ? p.prefetch(2) : p;
}

// One epoch of Model::fit through `source`, in seconds.
double train_epoch(Sequential& model, data::BatchSource& source, int epoch, double& loss) {
  const auto start = std::chrono::steady_clock::now();
  const History h = model.fit(source, {.epochs = epoch + 1, .initial_epoch = epoch, .verbose = 0});
  loss = h.history.at("loss").back();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Stats {
  double min, median;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return {v.front(), v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2};
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "data";
  int64_t samples = 20000;
  int runs = 5;
  int64_t hidden = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--data") data_dir = argv[i + 1];
    else if (a == "--samples") samples = std::stoll(argv[i + 1]);
    else if (a == "--runs") runs = std::stoi(argv[i + 1]);
    else if (a == "--hidden") hidden = std::stoll(argv[i + 1]);
    else {
      std::cerr << "usage: bench_pipeline [--data DIR] [--samples N] [--runs R] [--hidden UNITS]\n";
      return 2;
    }
  }
  try {
    set_num_threads(1);  // compute on one core; the prefetch thread takes the other
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("lamina_bench_pipeline_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "records.gz").string();
    samples = write_records(data_dir, samples, path);

    manual_seed(2);
    Sequential model({layers::Dense({.units = hidden, .activation = "relu", .input_shape = Shape{kPixels}}), layers::Dense(10)});
    model.compile(Adam({.learning_rate = 1e-3f}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
    data::Pipeline inline_p = make_pipeline(path, samples, false), prefetch_p = make_pipeline(path, samples, true);
    double loss = 0.0;
    train_epoch(model, prefetch_p, 0, loss);  // warm-up: primitives, caches, the file
    // Loading alone (the pipeline drained without training): what prefetch can hide at most.
    std::vector<double> load;
    for (int r = 0; r < std::min(runs, 3); ++r) {
      const auto start = std::chrono::steady_clock::now();
      inline_p.start_epoch(1 + r);
      for (data::Batch b; inline_p.next(b);) {
      }
      load.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::vector<double> plain, ahead;
    for (int r = 0; r < runs; ++r) {  // interleaved, so drifts in machine load hit both alike
      plain.push_back(train_epoch(model, inline_p, 1 + r, loss));
      ahead.push_back(train_epoch(model, prefetch_p, 1 + r, loss));
    }
    std::filesystem::remove_all(dir);
    const Stats a = stats(plain), b = stats(ahead), l = stats(load);
    std::printf("pipeline-gzip-augment-mlp: 784-%lld-10, %lld samples, batch 64, %d runs, 1 compute thread, last loss %.4f\n",
                static_cast<long long>(hidden), static_cast<long long>(samples), runs, loss);
    std::printf("  %-12s min %.3f s  median %.3f s per epoch\n", "inline", a.min, a.median);
    std::printf("  %-12s min %.3f s  median %.3f s per epoch\n", "prefetch(2)", b.min, b.median);
    std::printf("  %-12s min %.3f s  median %.3f s per epoch\n", "loading only", l.min, l.median);
    std::printf("  speedup (median) %.2fx\n", a.median / b.median);
    std::printf("{\"workload\": \"pipeline-gzip-augment-mlp\", \"samples\": %lld, \"runs\": %d, "
                "\"inline\": {\"s_per_epoch_min\": %.4f, \"s_per_epoch_median\": %.4f}, "
                "\"prefetch\": {\"s_per_epoch_min\": %.4f, \"s_per_epoch_median\": %.4f}, \"loading_only\": {\"s_per_epoch_min\": %.4f, \"s_per_epoch_median\": %.4f}, \"speedup\": %.3f}\n",
                static_cast<long long>(samples), runs, a.min, a.median, b.min, b.median, l.min, l.median,
                a.median / b.median);
  } catch (const std::exception& e) {
    std::cerr << "bench_pipeline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
