// bench_predict: Lamina's predict on an ONNX file (load_onnx: the very file ONNX Runtime runs in
// bench/ort_predict.js), over MNIST's test images (x / 255, (N, 28, 28)) or an inputs file
// (bench_lamina --export-inputs: a sequence model's ids), at one batch size and thread count;
// prints one JSON line: samples per second (best and median over passes) and the median time per
// batch. bench_compare runs it beside the Node script for the *-predict rows.
//   bench_predict --model M.onnx (--images data/mnist | --inputs X.bin) --batch 10000 --threads 1
//                 [--samples 10000] [--reps 5]
#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>

#include <lamina/lamina.hpp>

#include "common.hpp"

using namespace lamina;

int main(int argc, char** argv) try {
  const bench::PredictArgs a = bench::parse_predict_args(argc, argv);
  set_num_threads(a.threads);
  Model model = load_onnx(a.model);
  Tensor x;  // (n, 28, 28), x / 255; or the inputs file's first rows
  if (a.inputs.empty()) {
    const data::Dataset test = data::load_mnist(a.images).test;
    std::vector<int64_t> rows(static_cast<size_t>(std::min(a.samples, test.size())));
    std::iota(rows.begin(), rows.end(), 0);
    x = test.x(rows);
  } else {
    const bench::Inputs in = bench::read_inputs(a.inputs);
    std::vector<int64_t> dims = in.dims;
    dims[0] = std::min(a.samples, in.rows());
    x = Tensor::from(std::vector<float>(in.values.begin(), in.values.begin() + dims[0] * in.row_size()), Shape(dims));
  }
  const int64_t count = x.dim(0);
  const auto n = static_cast<double>(count);
  model.predict(x, a.batch);  // warm-up: primitives made, memory touched
  std::vector<double> rates;
  for (int r = 0; r < a.reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    model.predict(x, a.batch);
    rates.push_back(n / bench::seconds_since(t0));
  }
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  const Json out = {{"framework", "lamina"},
                    {"batch", a.batch},
                    {"threads", a.threads},
                    {"samples", count},
                    {"samples_per_s_max", rates.back()},
                    {"samples_per_s_median", median},
                    {"us_per_batch_median", 1e6 * static_cast<double>(std::min<int64_t>(a.batch, count)) / median}};
  std::cout << out.dump() << std::endl;
} catch (const std::exception& e) {
  std::cerr << "bench_predict: " << e.what() << "\n";
  return 1;
}
