// Tensor core: factories, RNG state, views, permute, broadcasting, reductions, matmul,
// comparison and printing — checked against hand-computed values.
#include <algorithm>
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>
#include <fstream>
#include <thread>
#ifdef __linux__
#include <sys/resource.h>
#include <unistd.h>
#endif

using namespace lowbit;
using Catch::Matchers::Contains;

TEST_CASE("factories fill shapes and values", "[tensor]") {
  auto z = Tensor<float>::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  for (float v : z.to_vector()) CHECK(v == 0.0f);
  auto o = Tensor<double>::ones({4});
  CHECK(o.to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK(Tensor<float>::full({2}, 2.5f).to_vector() == std::vector<float>{2.5f, 2.5f});
  CHECK(Tensor<double>::arange(0.0, 1.0, 0.25).to_vector() == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(Tensor<float>::arange(3.0f).to_vector() == std::vector<float>{0, 1, 2});
  auto s = Tensor<float>::scalar(7.0f);
  CHECK(s.dim() == 0);
  CHECK(s.item() == 7.0f);
}

TEST_CASE("storage is 64-byte aligned", "[tensor]") {
  for (int64_t n : {1, 3, 17, 1000}) {
    auto t = Tensor<float>::zeros({n});
    CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  }
}

TEST_CASE("large freed blocks are reused by the next tensor of the same size, on the same thread", "[tensor][cache]") {
  release_cached_memory();
  set_cached_memory_limit(size_t(1) << 30);
  const int64_t big = 1 << 16;  // 256 KiB of floats: cached
  if (!detail::kBlockCacheEnabled) {  // AddressSanitizer builds free every block at once
    { auto t = Tensor<float>::empty({big}); }
    CHECK(cached_memory_bytes() == 0);
    return;
  }
  const float* first = nullptr;
  {
    auto t = Tensor<float>::full({big}, 3.0f);
    first = t.data();
  }
  CHECK(cached_memory_bytes() == size_t(big) * sizeof(float));
  {
    auto same = Tensor<float>::zeros({256, 256});  // the same byte count: the cached block, zeroed
    CHECK(same.data() == first);
    const auto values = same.to_vector();
    CHECK(std::count(values.begin(), values.end(), 0.0f) == big);
    CHECK(cached_memory_bytes() == 0);
  }
  CHECK(cached_memory_bytes() == size_t(big) * sizeof(float));
  {
    // A miss (Linux: no free range covers the request; elsewhere: no block of its size)
    // hands pooled bytes back before mapping (Linux: at least as many, the largest ranges
    // first; elsewhere: all), so blocks of sizes the program no longer asks for do not pile
    // up beside new ones.
    auto other = Tensor<float>::empty({big + 16});
    CHECK(cached_memory_bytes() == 0);
  }
  CHECK(cached_memory_bytes() == detail::round_to_page(size_t(big + 16) * sizeof(float)));

  { auto small = Tensor<float>::empty({1000}); }  // 4 KB: left to malloc, the cache untouched
  CHECK(cached_memory_bytes() == detail::round_to_page(size_t(big + 16) * sizeof(float)));

  release_cached_memory();
  CHECK(cached_memory_bytes() == 0);

  // A block freed on another thread than the one that allocated it is not kept there.
  Tensor<float> moved = Tensor<float>::empty({big});
  size_t held_there = 1;
  std::thread([&] {
    moved = Tensor<float>();
    held_there = cached_memory_bytes();
  }).join();
  CHECK(held_there == 0);
  CHECK(cached_memory_bytes() == 0);

  // Over the limit, a freed block goes back to the system.
  set_cached_memory_limit(size_t(big) * sizeof(float) - 1);
  { auto t = Tensor<float>::empty({big}); }
  CHECK(cached_memory_bytes() == 0);
  set_cached_memory_limit(size_t(1) << 30);
}

#ifdef __linux__
namespace {
double resident_mb() {  // this process's resident set now (/proc/self/statm, in pages)
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}
}  // namespace

TEST_CASE("freed large blocks go back to the system: no heap fragmentation", "[tensor][cache]") {
  if (!detail::kBlockCacheEnabled) return;  // ASan builds use malloc for every block
  release_cached_memory();
  // glibc raises its mmap threshold to the size of a mapped block it frees, so after this
  // 2 MiB tensor the 512 KiB ones below would come from its heap, and freeing every other one
  // would leave holes it cannot return. lowbit maps large blocks itself (block_cache.hpp).
  { auto warm = Tensor<float>::full({1 << 19}, 1.f); }
  release_cached_memory();
  const int64_t n = 1 << 17;  // 512 KiB each, 100 of them: 50 MiB
  std::vector<Tensor<float>> ts;
  for (int k = 0; k < 100; ++k) ts.push_back(Tensor<float>::full({n}, static_cast<float>(k)));  // every page touched
  CHECK(reinterpret_cast<uintptr_t>(ts[0].data()) % 4096 == 0);  // mapped pages
  const double before = resident_mb();
  for (size_t k = 0; k < ts.size(); k += 2) ts[k] = Tensor<float>();  // 25 MiB freed, in holes
  CHECK(cached_memory_bytes() == 50 * size_t(n) * sizeof(float));  // kept for reuse first
  release_cached_memory();
  const double after = resident_mb();
  INFO("resident " << before << " MB -> " << after << " MB");
  CHECK(before - after > 20.0);
  CHECK(ts[1].data()[n - 1] == 1.f);  // the survivors are intact
}

namespace {
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}
}  // namespace

TEST_CASE("a large request of a new size is carved from a free range of small blocks, without page faults", "[tensor][cache]") {
  // The 40 small blocks are cut from one 20 MiB range, so they are neighbours whatever
  // addresses mmap hands out (in a process that has unmapped before, fresh mappings land in
  // old holes, and separately mapped blocks need not touch).
  if (!detail::kBlockCacheEnabled) return;
  release_cached_memory();
  const int64_t n = 1 << 17;  // 512 KiB
  const float* whole = nullptr;
  { whole = Tensor<float>::full({40 * n}, 0.f).data(); }  // 20 MiB, touched, then one free range
  {
    std::vector<Tensor<float>> ts;
    for (int k = 0; k < 40; ++k) ts.push_back(Tensor<float>::full({n}, 1.f));  // heads of the range
    CHECK(ts[39].data() == whole + 39 * n);
    CHECK(cached_memory_bytes() == 0);
  }
  // Freed in allocation order: each merges with the range before it.
  CHECK(detail::thread_block_cache().free_ranges() == 1);
  CHECK(cached_memory_bytes() == 40 * size_t(n) * sizeof(float));
  // 12 MiB + 256 KiB: no block had that size; it is the head of the merged range.
  const int64_t m = 24 * n + n / 2;
  const long f0 = minor_faults();
  Tensor<float> big = Tensor<float>::full({m}, 2.f);
  const long faults = minor_faults() - f0;
  INFO(faults << " minor faults while filling " << m * 4 / 1024 << " KiB (fresh pages: one per 4 KiB)");
  CHECK(faults < 64);
  CHECK(big.data() == whole);
  CHECK(cached_memory_bytes() == (40 * size_t(n) - size_t(m)) * sizeof(float));  // the split's rest stays
  CHECK(big.data()[m - 1] == 2.f);
  release_cached_memory();
  CHECK(cached_memory_bytes() == 0);
}

TEST_CASE("a split free range heals: both halves freed are one range again, reused without faults", "[tensor][cache]") {
  if (!detail::kBlockCacheEnabled) return;
  release_cached_memory();
  const int64_t n = 1 << 19;  // 2 MiB of floats
  const float* whole = nullptr;
  { whole = Tensor<float>::full({n}, 1.f).data(); }
  CHECK(detail::thread_block_cache().free_ranges() == 1);
  {
    auto a = Tensor<float>::full({n / 2}, 2.f);  // best fit: the head of the 2 MiB range, in place
    auto b = Tensor<float>::full({n / 2}, 3.f);  // the rest
    CHECK(a.data() == whole);
    CHECK(b.data() == whole + n / 2);
    CHECK(cached_memory_bytes() == 0);
  }
  CHECK(detail::thread_block_cache().free_ranges() == 1);  // b merged with a's range
  CHECK(cached_memory_bytes() == size_t(n) * sizeof(float));
  const long f0 = minor_faults();
  auto again = Tensor<float>::full({n}, 4.f);
  CHECK(minor_faults() - f0 < 16);
  CHECK(again.data() == whole);
  CHECK(again.data()[n - 1] == 4.f);
}

namespace {
long mappings() {  // this process's memory mappings (VMAs): lines of /proc/self/maps
  std::ifstream f("/proc/self/maps");
  long lines = 0;
  for (std::string line; std::getline(f, line);) ++lines;
  return lines;
}
}  // namespace

TEST_CASE("a repeated mix of sizes does not multiply the process's mappings", "[tensor][cache]") {
  // The shape of a training step: a fixed script of allocations and frees of mixed sizes,
  // repeated; sizes whose peaks fall at different times keep missing the pool. An earlier
  // pool moved pooled pages into fresh mappings (mremap) on every miss, and the pieces never
  // merged back into one mapping: their count grew without bound (vm.max_map_count, 65,530,
  // ends such a run) and each move cost a TLB shootdown.
  if (!detail::kBlockCacheEnabled) return;
  release_cached_memory();
  Generator g(11);
  std::vector<int64_t> sizes;  // in floats: 64 KiB .. 4 MiB
  for (int k = 0; k < 40; ++k) sizes.push_back(int64_t(1) << (14 + g.randint(7)));
  std::vector<uint64_t> drop;  // which live tensor each step frees
  for (int k = 0; k < 40; ++k) drop.push_back(g.randint(1000));
  long after_warmup = 0;
  for (int cycle = 0; cycle < 200; ++cycle) {
    std::vector<Tensor<float>> live;
    for (int k = 0; k < 40; ++k) {
      live.push_back(Tensor<float>::empty({sizes[static_cast<size_t>(k)] + (k % 3) * 1024}));
      live.back().data()[0] = 1.f;  // touch a page
      if (k % 2 == 1) live.erase(live.begin() + static_cast<int64_t>(drop[static_cast<size_t>(k)] % live.size()));
    }
    if (cycle == 10) after_warmup = mappings();
  }
  const long grown = mappings() - after_warmup;
  INFO("mappings after 10 cycles " << after_warmup << ", after 200: +" << grown);
  CHECK(grown < 20);
  release_cached_memory();
}
#endif

TEST_CASE("random factories are reproducible and their state round-trips", "[tensor][random]") {
  Generator g1(42), g2(42);
  auto a = Tensor<double>::randn({1000}, g1);
  auto b = Tensor<double>::randn({1000}, g2);
  CHECK(allclose(a, b, 0, 0));
  // Moments of 1000 normals: mean within 4 sigma/sqrt(n), variance within 15%.
  double m = mean(a).item(), v = mean(square(a - m)).item();
  CHECK(std::abs(m) < 4.0 / std::sqrt(1000.0));
  CHECK(std::abs(v - 1.0) < 0.15);

  Generator g(7);
  (void)g.normal();  // leaves a cached Box-Muller spare in the state
  const std::string saved = g.state_string();
  auto u1 = Tensor<float>::uniform({50}, g, -2.0, 3.0);
  Generator h(0);
  h.set_state_string(saved);
  auto u2 = Tensor<float>::uniform({50}, h, -2.0, 3.0);
  CHECK(allclose(u1, u2, 0, 0));
  for (float v2 : u1.to_vector()) CHECK((v2 >= -2.0f && v2 < 3.0f));
  CHECK_THROWS_WITH(h.set_state_string("not a state"), Contains("cannot parse generator state"));
}

TEST_CASE("reshape and slice are views; permute copies", "[tensor][shape]") {
  auto x = Tensor<float>::arange(24.0f);
  auto r = reshape(x, {2, -1, 4});
  CHECK(r.shape() == Shape{2, 3, 4});
  CHECK(r.shares_storage_with(x));
  CHECK(r.at({1, 2, 3}) == 23.0f);

  auto s = slice(r, 1, 2);
  CHECK(s.shape() == Shape{1, 3, 4});
  CHECK(s.data()[0] == 12.0f);
  CHECK(s.shares_storage_with(x));
  CHECK(select(r, 1).shape() == Shape{3, 4});

  auto p = permute(r, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(!p.shares_storage_with(x));
  // p[k, i, j] = r[i, j, k] = 12 i + 4 j + k
  CHECK(p.at({3, 1, 2}) == 12 * 1 + 4 * 2 + 3);
  auto t = transpose(reshape(x, {4, 6}), 0, 1);
  CHECK(t.shape() == Shape{6, 4});
  CHECK(t.at({5, 2}) == 2 * 6 + 5);
}

TEST_CASE("flip reverses one dimension and leaves the others", "[tensor][shape]") {
  auto r = reshape(Tensor<float>::arange(24.0f), {2, 3, 4});  // r[i, j, k] = 12 i + 4 j + k
  auto w = flip(r, -1);
  CHECK(w.shape() == Shape{2, 3, 4});
  CHECK(!w.shares_storage_with(r));
  CHECK(w.at({1, 2, 0}) == 12 + 8 + 3);
  CHECK(w.at({0, 1, 3}) == 4 + 0);
  CHECK(flip(r, 1).at({1, 0, 2}) == 12 + 8 + 2);
  CHECK(flip(r, 0).at({0, 2, 1}) == 12 + 8 + 1);
  CHECK(flip(flip(r, 1), 1).to_vector() == r.to_vector());
  CHECK_THROWS_WITH(flip(r, 3), Contains("flip: axis 3 is out of range for a 3-d tensor"));
}

TEST_CASE("elementwise arithmetic broadcasts like NumPy", "[tensor][broadcast]") {
  Tensor<float> a({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor<float> b({3}, {10, 20, 30});
  Tensor<float> c({2, 1}, {100, 200});
  CHECK((a + b).to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
  CHECK((a * c).to_vector() == std::vector<float>{100, 200, 300, 800, 1000, 1200});
  auto bc = b + c;  // [3] + [2,1] -> [2,3]
  CHECK(bc.shape() == Shape{2, 3});
  CHECK(bc.to_vector() == std::vector<float>{110, 120, 130, 210, 220, 230});
  CHECK((a - 1.0f).to_vector() == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK((2 * a).at({1, 2}) == 12.0f);
  CHECK((12.0f / a).at({0, 2}) == 4.0f);
  CHECK((a / b).at({1, 0}) == Approx(0.4f));
  CHECK((-a).at({0, 0}) == -1.0f);
}

TEST_CASE("reductions over axes with and without keepdim", "[tensor][reduce]") {
  Tensor<double> x({2, 3}, {1, 5, 3, 4, 2, 6});
  CHECK(sum(x).item() == 21);
  CHECK(sum(x, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1});
  CHECK(sum(x, {-1}).to_vector() == std::vector<double>{9, 12});
  CHECK(mean(x, {1}).to_vector() == std::vector<double>{3, 4});
  CHECK(max(x).item() == 6);
  CHECK(max(x, {0}).to_vector() == std::vector<double>{4, 5, 6});
  CHECK(max(x, {1}, true).shape() == Shape{2, 1});
  CHECK(argmax(x, 1).to_vector() == std::vector<int64_t>{1, 2});
  CHECK(argmax(x, 0).to_vector() == std::vector<int64_t>{1, 0, 1});
  // Ties: the first maximum wins.
  Tensor<float> t({4}, {2, 7, 7, 1});
  CHECK(argmax(t, 0).item() == 1);
  auto x3 = reshape(Tensor<double>::arange(24.0), {2, 3, 4});
  // x3[i,j,k] = 12i + 4j + k; summing i in {0,1}, k in {0..3}: 48 + 32j + 12.
  CHECK(sum(x3, {0, 2}).to_vector() == std::vector<double>{60, 92, 124});
}

TEST_CASE("float sums keep precision on large tensors", "[tensor][reduce]") {
  auto x = Tensor<float>::full({1 << 22}, 0.1f);
  // Naive float accumulation drifts by percent here; double accumulation does not.
  CHECK(sum(x).item() == Approx(0.1 * (1 << 22)).epsilon(1e-6));
}

TEST_CASE("matmul equals the reference triple loop", "[tensor][matmul]") {
  Tensor<double> a({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor<double> b({3, 2}, {7, 8, 9, 10, 11, 12});
  CHECK(matmul(a, b).to_vector() == std::vector<double>{58, 64, 139, 154});
  Generator g(3);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t M = 7, N = 5, K = 9;
      auto A = Tensor<float>::randn({M * K}, g), B = Tensor<float>::randn({K * N}, g);
      auto C1 = Tensor<float>::randn({M, N}, g), C2 = C1.clone();
      kernels::gemm(ta, tb, M, N, K, 0.5f, A.data(), B.data(), 2.0f, C1.data());
      kernels::gemm_reference(ta, tb, M, N, K, 0.5f, A.data(), B.data(), 2.0f, C2.data());
      CHECK(max_abs_diff(C1, C2) < 1e-4);
    }
}

TEST_CASE("allclose, cast and printing", "[tensor]") {
  Tensor<double> a({3}, {1, 2, 3});
  auto b = a + 1e-9;
  CHECK(allclose(a, b));
  CHECK(!allclose(a, a + 1e-3));
  CHECK(!allclose(a, reshape(a, {3, 1})));
  auto f = cast<float>(a);
  CHECK(f.to_vector() == std::vector<float>{1, 2, 3});
  CHECK(to_string(a) == "tensor([1, 2, 3], shape=[3])");
  CHECK(to_string(reshape(a, {3, 1})) == "tensor([[1],\n [2],\n [3]], shape=[3, 1])");
  auto big = Tensor<float>::arange(10.0f);
  CHECK(to_string(big) == "tensor([0, 1, 2, ..., 7, 8, 9], shape=[10])");
}
