// The safetensors reader, io::read_safetensors (io/safetensors.hpp). The input is the file.
#include <lowbit/io/safetensors.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_temp("model.safetensors", data, size);
  fuzz::expect_clean([&] { lowbit::io::read_safetensors(path); });
  return 0;
}
