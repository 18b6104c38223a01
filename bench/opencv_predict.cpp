// bench_opencv_predict: OpenCV's dnn through its C++ API (cv::dnn::readNetFromONNX, its own CPU
// backend) on the ONNX file bench_predict and bench/ort_predict.js run, over MNIST's test images
// (x / 255, (N, 28, 28)) or an inputs file (bench_lamina --export-inputs); prints one JSON line as
// they do. The batch-1 peer without a language binding's per-call cost (issue 20: ONNX Runtime's
// Node binding adds its own at batch 1).
//   bench_opencv_predict --model M.onnx (--images data/mnist | --inputs X.bin) --batch 1 --threads 1
//                        [--samples 1000] [--reps 5]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "common.hpp"

namespace {

uint32_t be32(const unsigned char* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// The first `count` test images, x / 255 (raw IDX; scripts/fetch-data.sh writes them unpacked).
std::vector<float> read_images(const std::string& dir, int64_t count, int64_t& n) {
  const std::string file = dir + "/t10k-images-idx3-ubyte";
  std::ifstream in(file, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 16 || be32(bytes.data()) != 0x803) throw std::runtime_error(file + ": not an IDX image file");
  n = std::min<int64_t>(count, be32(bytes.data() + 4));
  std::vector<float> x(static_cast<size_t>(n * 784));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(bytes[16 + i]) / 255.f;
  return x;
}

}  // namespace

int main(int argc, char** argv) try {
  const bench::PredictArgs a = bench::parse_predict_args(argc, argv);
  cv::setNumThreads(a.threads);
  cv::dnn::Net net = cv::dnn::readNetFromONNX(a.model);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  int64_t n = 0;
  std::vector<int> sample_dims = {28, 28};  // one sample's shape
  std::vector<float> x;
  if (a.inputs.empty()) {
    x = read_images(a.images, a.samples, n);
  } else {
    bench::Inputs in = bench::read_inputs(a.inputs);
    n = std::min(a.samples, in.rows());
    sample_dims.assign(in.dims.begin() + 1, in.dims.end());
    x.assign(in.values.begin(), in.values.begin() + n * in.row_size());
  }
  int64_t per = 1;
  for (int d : sample_dims) per *= d;
  auto pass = [&] {
    for (int64_t b = 0; b < n; b += a.batch) {
      std::vector<int> dims = {static_cast<int>(std::min(a.batch, n - b))};
      dims.insert(dims.end(), sample_dims.begin(), sample_dims.end());
      net.setInput(cv::Mat(static_cast<int>(dims.size()), dims.data(), CV_32F, x.data() + b * per));
      net.forward();
    }
  };
  pass();  // warm-up
  std::vector<double> rates;
  for (int r = 0; r < a.reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pass();
    rates.push_back(static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  const nlohmann::json out = {{"framework", "opencv"},          {"version", CV_VERSION},
                              {"batch", a.batch},                 {"threads", a.threads},
                              {"samples", n},                   {"samples_per_s_max", rates.back()},
                              {"samples_per_s_median", median},
                              {"us_per_batch_median", 1e6 * static_cast<double>(std::min(a.batch, n)) / median}};
  std::cout << out.dump() << std::endl;
} catch (const std::exception& e) {
  std::cerr << "bench_opencv_predict: " << e.what() << "\n";
  return 1;
}
