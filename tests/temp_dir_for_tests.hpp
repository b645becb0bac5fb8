// TempDir: a fresh folder under the system temp dir for one test, removed (recursively) when it
// goes out of scope. Shared by the tests that write files (data, datasets, safetensors, hardening).
#pragma once
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

namespace lowbit_tests {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    // ctest runs test cases as parallel processes, and one test may hold several TempDirs:
    // the pid, a clock reading and a counter keep every name distinct.
    static int counter = 0;
    const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() / ("lowbit_test_" + std::to_string(::getpid()) + "_" +
                                                     std::to_string(t) + "_" + std::to_string(++counter));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The folder itself, or a path inside it.
  std::string str(const std::string& rel = "") const { return (rel.empty() ? path : path / rel).string(); }
};

}  // namespace lowbit_tests
