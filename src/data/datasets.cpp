// Loaders for the course's data sets: MNIST and Fashion-MNIST (four IDX files each, raw or .gz)
// and scikit-learn's 8x8 digits (digits.csv.gz). They only read what scripts/fetch-data.sh put
// in data/; nothing here downloads. Images stay bytes (scale 1/255); labels become floats.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lamina/data.hpp"

namespace lamina::data {

namespace {

namespace fs = std::filesystem;

// dir/name or dir/name.gz, else an IoError saying how to fetch the set.
std::string find_file(const std::string& dir, const std::string& name, const char* set, const char* fetch_arg) {
  std::string path = find_data_file(dir, name);
  if (path.empty())
    throw IoError((fs::path(dir) / name).string() + ": missing " + set + " file (expected " + name + " or " + name +
                  ".gz in " + dir + "; run scripts/fetch-data.sh " + fetch_arg + ")");
  return path;
}

// One half (train or test) of an MNIST-shaped set: images (N, 28, 28) bytes, labels (N) < 10.
Dataset load_idx_pair(const std::string& dir, const std::string& prefix, const char* set, const char* fetch_arg) {
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte", set, fetch_arg);
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte", set, fetch_arg);
  Idx images = read_idx(images_path);
  Idx labels = read_idx(labels_path);
  if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28)
    throw IoError(images_path + ": " + set + " images have dimensions " + Shape(images.dims).str() +
                  " (expected (N, 28, 28))");
  if (labels.dims.size() != 1)
    throw IoError(labels_path + ": " + set + " labels have dimensions " + Shape(labels.dims).str() + " (expected (N))");
  if (labels.dims[0] != images.dims[0])
    throw IoError(labels_path + ": " + std::to_string(labels.dims[0]) + " labels for " +
                  std::to_string(images.dims[0]) + " images in " + images_path + " (expected one label per image)");
  auto targets = std::make_shared<std::vector<float>>(labels.bytes.size());
  for (size_t i = 0; i < labels.bytes.size(); ++i) {
    if (labels.bytes[i] >= 10)
      throw IoError(labels_path + ": label " + std::to_string(i) + " is " + std::to_string(labels.bytes[i]) +
                    " (expected a class 0 to 9)");
    (*targets)[i] = static_cast<float>(labels.bytes[i]);
  }
  auto pixels = std::make_shared<const std::vector<uint8_t>>(std::move(images.bytes));
  return Dataset::from_bytes(std::move(pixels), Shape{28, 28}, std::move(targets), Shape{}, 1.f / 255.f);
}

TrainTest load_mnist_like(const std::string& dir, const char* set, const char* fetch_arg) {
  TrainTest tt;
  tt.train = load_idx_pair(dir, "train", set, fetch_arg);
  tt.test = load_idx_pair(dir, "t10k", set, fetch_arg);
  return tt;
}

}  // namespace

std::string find_data_file(const std::string& dir, const std::string& name) {
  const fs::path plain = fs::path(dir) / name;
  fs::path gz = plain;
  gz += ".gz";
  std::error_code ec;
  if (fs::is_regular_file(plain, ec)) return plain.string();
  if (fs::is_regular_file(gz, ec)) return gz.string();
  return "";
}

TrainTest load_mnist(const std::string& dir) { return load_mnist_like(dir, "MNIST", "mnist"); }

TrainTest load_fashion_mnist(const std::string& dir) {
  return load_mnist_like(dir, "Fashion-MNIST", "fashion_mnist");
}

Dataset load_digits(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw IoError(path + ": missing digits file (expected scikit-learn's digits.csv.gz; run scripts/fetch-data.sh "
                  "digits)");
  Csv csv = read_csv(path);  // no header, label last
  if (csv.cols != 64)
    throw IoError(path + ": digits rows have " + std::to_string(csv.cols) + " pixel columns (expected 64, 8x8)");
  for (int64_t r = 0; r < csv.rows; ++r) {
    const float label = csv.labels[static_cast<size_t>(r)];
    if (!(label >= 0.f && label <= 9.f && label == static_cast<float>(static_cast<int>(label)))) {
      char got[32];
      std::snprintf(got, sizeof got, "%g", static_cast<double>(label));
      throw IoError(path + ": line " + std::to_string(r + 1) + ": label " + got + " (expected a class 0 to 9)");
    }
  }
  const Tensor x = Tensor::from(std::move(csv.features), Shape{csv.rows, 64});
  const Tensor y = Tensor::from(std::move(csv.labels), Shape{csv.rows});
  return Dataset::from_tensors(x, y);
}

}  // namespace lamina::data
