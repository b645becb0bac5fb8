// The config layer: io::parse_config_text (io/options.hpp) and train::resolve_config (every
// key's type and range, the method's block, cross checks). The input is the config file's
// text. The umbrella header registers every method, as in the trainer, so that each method's
// block is checked (with train/config.hpp alone only fp32 is known).
#include <lowbit/io/options.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/train/config.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean([&] {
    const nlohmann::json given = lowbit::io::parse_config_text(text, "--config fuzz-input");
    lowbit::train::resolve_config(given);
  });
  return 0;
}
