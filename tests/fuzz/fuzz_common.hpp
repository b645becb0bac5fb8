// Shared by the libFuzzer harnesses of tests/fuzz/ (docs/fuzzing.md). Each harness feeds
// its input to one reader; lowbit::Error is the expected outcome of bad input and is
// caught, anything else (a crash, a sanitizer report, another exception type escaping, a
// leak) is a finding: libFuzzer stops and saves the input.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <lowbit/core/error.hpp>

namespace fuzz {

// The temporary files of this process, removed when it exits normally (a crash leaves them:
// they are small, and /dev/shm is cleared at boot).
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const auto& p : paths) std::remove(p.c_str());
  }
};

// A per-process file in /dev/shm (memory-backed; /tmp where there is none) for readers that
// take a path. Rewritten for each input.
inline std::string temp_path(const char* name) {
  static TempFiles files;
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/lowbit-fuzz-" + std::to_string(getpid()) + "-" + name;
  bool known = false;
  for (const auto& p : files.paths) known = known || p == path;
  if (!known) files.paths.push_back(path);
  return path;
}

inline std::string write_temp(const char* name, const uint8_t* data, size_t size) {
  const std::string path = temp_path(name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();  // the harness cannot run: not a finding in the reader, but say so loudly
  }
  return path;
}

// Runs fn; a lowbit::Error is a clean refusal. Other exceptions propagate and libFuzzer
// reports them ("uncaught exception").
template <class Fn>
void expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const lowbit::Error&) {
  }
}

}  // namespace fuzz
