// The MNIST IDX reader (data/mnist_idx.hpp), which reads an image file and a label file. The
// input is both: its first byte k says the label file is the next k bytes (the label header
// is 8 bytes, so short label files are enough), the rest is the image file.
#include <lowbit/data/mnist_idx.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t k = std::min<size_t>(data[0], size - 1);
  const std::string labels = fuzz::write_temp("labels-idx1-ubyte", data + 1, k);
  const std::string images = fuzz::write_temp("images-idx3-ubyte", data + 1 + k, size - 1 - k);
  fuzz::expect_clean([&] { lowbit::data::read_mnist_idx(images, labels); });
  return 0;
}
