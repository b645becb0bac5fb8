// The quantized-model (.lbq) reader, quant::read_quantized (quant/export.hpp): codes, scales,
// levels and float tensors at offsets into the data section. Input: see fuzz_framed.hpp.
#include <lowbit/quant/export.hpp>

#include "fuzz_framed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace q = lowbit::quant;
  const std::string path = fuzz::write_framed_input("model.lbq", q::kQuantMagic, q::kQuantVersion, data, size);
  if (path.empty()) return 0;
  fuzz::expect_clean([&] { q::read_quantized(path); });
  return 0;
}
