// The CIFAR-10 and CIFAR-100 binary readers (data/cifar10_binary.hpp, data/cifar100_binary.hpp)
// on one file: the input is the whole .bin file.
#include <lowbit/data/cifar100_binary.hpp>
#include <lowbit/data/cifar10_binary.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_temp("cifar.bin", data, size);
  fuzz::expect_clean([&] { lowbit::data::read_cifar10_bin(path); });
  fuzz::expect_clean([&] { lowbit::data::read_cifar100_bin(path); });
  return 0;
}
