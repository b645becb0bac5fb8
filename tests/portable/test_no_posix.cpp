// The standard-library branches of the few headers that call POSIX (core/platform.hpp lists
// them), compiled on this POSIX machine with LOWBIT_NO_POSIX so that they are built and run
// on every CI pass: what a platform without POSIX gets.
#define LOWBIT_NO_POSIX 1
#include <lowbit/lowbit.hpp>

// The umbrella must not have pulled in a POSIX-only header (glibc's include guards).
#if defined(_UNISTD_H) || defined(_FCNTL_H) || defined(_SYS_STAT_H) || defined(_SYS_MMAN_H)
#error "lowbit.hpp included a POSIX-only header under LOWBIT_NO_POSIX"
#endif
static_assert(LOWBIT_POSIX == 0, "LOWBIT_NO_POSIX must select the standard-library branches");

// The test's own helpers may use POSIX (getpid for a unique folder, stb's writer).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "../stb_image_write_for_tests.hpp"
#include "../temp_dir_for_tests.hpp"

using namespace lowbit;
using Catch::Matchers::Contains;
using lowbit_tests::TempDir;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("no POSIX: atomic write creates, replaces and leaves no temporary", "[portable]") {
  TempDir tmp;
  const std::string path = tmp.str("out.json");
  io::write_file_atomic(path, "first", "test");
  CHECK(slurp(path) == "first");
  io::write_file_atomic(path, "second, longer", "test");  // over an existing file
  CHECK(slurp(path) == "second, longer");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  // A folder that does not exist: an error naming the file, nothing written.
  CHECK_THAT(error_of([&] { io::write_file_atomic(tmp.str("missing/x.bin"), "x", "test"); }),
             Contains("missing/x.bin.tmp"));
}

TEST_CASE("no POSIX: image bytes are read whole; a folder or a named pipe is refused, not opened", "[portable]") {
  TempDir tmp;
  std::string bytes;
  for (int i = 0; i < 200000; ++i) bytes.push_back(static_cast<char>((i * 131) % 251));  // > one 64 KiB chunk
  {
    std::ofstream f(tmp.str("a.bin"), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<uint8_t> buf{1, 2, 3};
  data::detail::read_file_bytes(tmp.str("a.bin"), buf);
  CHECK(std::string(buf.begin(), buf.end()) == bytes);

  std::filesystem::create_directories(tmp.path / "dir.png");
  CHECK_THAT(error_of([&] { data::detail::read_file_bytes(tmp.str("dir.png"), buf); }), Contains("is a directory"));
  // A named pipe without a writer would block an open: it must be refused before one.
  REQUIRE(std::system(("mkfifo '" + tmp.str("pipe.png") + "'").c_str()) == 0);
  CHECK_THAT(error_of([&] { data::detail::read_file_bytes(tmp.str("pipe.png"), buf); }), Contains("named pipe"));
  CHECK_THAT(error_of([&] { data::detail::read_file_bytes(tmp.str("none.png"), buf); }),
             Contains("cannot open image file") && Contains("none.png"));
}

TEST_CASE("no POSIX: an image folder loads with exact pixels", "[portable]") {
  TempDir tmp;
  std::vector<uint8_t> px(32 * 32 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  for (const char* cls : {"cat", "dog"}) {
    std::filesystem::create_directories(tmp.path / cls);
    REQUIRE(stbi_write_png(tmp.str(std::string(cls) + "/a.png").c_str(), 32, 32, 3, px.data(), 32 * 3) != 0);
  }
  const data::Dataset ds = data::load_image_folder(tmp.str());
  REQUIRE(ds.size() == 2);
  CHECK(ds.labels == std::vector<int64_t>{0, 1});
  // Stored CHW: channel 0 of pixel (y, x) is px[(y * 32 + x) * 3].
  bool same = true;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) same = same && ds.images[static_cast<size_t>(y * 32 + x)] == px[static_cast<size_t>((y * 32 + x) * 3)];
  CHECK(same);
}

TEST_CASE("no POSIX: the progress bar writes log lines; large tensors allocate without page mappings", "[portable]") {
  TempDir tmp;
  FILE* f = std::fopen(tmp.str("log.txt").c_str(), "w");
  REQUIRE(f != nullptr);
  CHECK_FALSE(io::is_terminal(f));
  {
    io::ProgressBar bar("epoch 1/1", 10, f);
    for (int64_t k = 1; k <= 10; ++k) bar.update(k, 0.5, 0.25, k * 4);
  }
  std::fclose(f);
  const std::string log = slurp(tmp.str("log.txt"));
  CHECK_THAT(log, Contains("10/10"));
  CHECK(log.find('\r') == std::string::npos);  // lines, no in-place redraw

  // 1 MiB blocks: the block cache's large-block path, on std::aligned_alloc here.
  for (int round = 0; round < 3; ++round) {
    auto a = Tensor<float>::full({512, 512}, 1.5f);
    auto b = Tensor<float>::zeros({512, 512});
    CHECK(reinterpret_cast<uintptr_t>(a.data()) % 64 == 0);
    float sum = 0;
    for (float v : a.to_vector()) sum += v;
    CHECK(sum == 1.5f * 512 * 512);
    CHECK(b.to_vector()[12345] == 0.f);
  }
}

TEST_CASE("no POSIX: the OpenMP wait policy is left to the user", "[portable]") {
  char arg0[] = "test_no_posix";
  char* argv[] = {arg0, nullptr};
  CHECK_THAT(use_passive_omp_wait(argv), Contains("not applicable"));
}
