// The checkpoint reader: io::load_checkpoint (io/checkpoint.hpp) and the run layout on top of
// it, train::read_run_checkpoint (train/checkpoint.hpp). Input: see fuzz_framed.hpp.
#include <lowbit/io/checkpoint.hpp>
#include <lowbit/train/checkpoint.hpp>

#include "fuzz_framed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace io = lowbit::io;
  const std::string path =
      fuzz::write_framed_input("checkpoint.bin", io::kCheckpointMagic, io::kCheckpointVersion, data, size);
  if (path.empty()) return 0;
  fuzz::expect_clean([&] { lowbit::train::read_run_checkpoint(path); });
  return 0;
}
