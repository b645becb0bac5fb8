// A per-thread cache of large freed storage blocks, reused by the next allocation of the same
// size.
//
// Why: a training step allocates the same tensors in the same order every step, and most of
// them are megabytes. glibc returns big freed blocks to the kernel (munmap, or heap trimming)
// and the next step's allocation of the same size page-faults every page in again, zeroed:
// about 9,600 faults (38 MB) per ResNet-20 batch-128 step before this cache, about 340 with it
// (`/usr/bin/time -f %R build/bin/bench_train --model resnet20 --threads 1 --steps S`, S = 2
// and 8). Telling glibc to keep everything (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)
// also removes the faults but grew the peak RSS by fragmentation (297 -> 357 MB on an older
// build); reusing a freed block for the next request of exactly its size lowered it instead
// (269-288 -> 233-241 MB at 1 thread, 320 -> 240 MB at 2). docs/performance.md, "Memory".
//
// What is cached: blocks of at least kMinBytes (smaller ones are cheap in malloc's heap and
// never page-fault), keyed by their exact rounded size, up to limit() bytes held free per
// thread (beyond it a freed block goes straight back to the system). A request that finds no
// block of its size first hands every cached block back to malloc, then allocates: without
// that, a block is only ever reused for its own size, and the blocks held would add up to the
// sum over sizes of each size's peak count rather than the peak of what is live (VGG-Small:
// 632 against 490 MB). After the first steps a training step finds every size it asks for,
// so the steady state has no misses and no faults (ResNet-20: about 300 faults per step).
// Only a block freed on the thread that allocated it is cached (in practice the main
// thread: OpenMP workers rarely create tensors); a block handed to another thread and freed
// there goes back to the system, or a thread that only frees (a consumer) would collect
// blocks it never reuses. The state is thread-local on purpose: no locks, and no state shared
// between threads (DESIGN: no global mutable state). release() hands every cached block of
// the calling thread back.
//
// Builds with AddressSanitizer do not cache (every block is freed at once), so ASan still
// sees every use after free.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <thread>
#include <unordered_map>
#include <vector>

namespace lowbit {
namespace detail {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kBlockCacheEnabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kBlockCacheEnabled = false;
#else
constexpr bool kBlockCacheEnabled = true;
#endif
#else
constexpr bool kBlockCacheEnabled = true;
#endif

class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 16;  // 64 KiB

  ~BlockCache() {
    release();
    alive() = false;  // later frees on this thread (static tensors at exit) bypass the cache
  }

  // A cached block of exactly `bytes`, or nullptr.
  void* take(size_t bytes) {
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    held_ -= bytes;
    return p;
  }
  // Keeps p (of `bytes`) for reuse; false when it is too small or the cache is full (the caller
  // frees it).
  bool keep(void* p, size_t bytes) {
    if (bytes < kMinBytes || held_ + bytes > limit_) return false;
    free_[bytes].push_back(p);
    held_ += bytes;
    return true;
  }
  void release() {
    for (auto& kv : free_)
      for (void* p : kv.second) std::free(p);
    free_.clear();
    held_ = 0;
  }

  size_t held_bytes() const { return held_; }
  void set_limit(size_t bytes) {
    limit_ = bytes;
    if (held_ > limit_) release();
  }

  // Whether this thread's cache still exists (a trivially destructible flag, readable during
  // thread or program exit after the cache itself is gone).
  static bool& alive() {
    thread_local bool a = true;
    return a;
  }

 private:
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t held_ = 0;
  size_t limit_ = size_t(1) << 30;  // 1 GiB held free per thread at most
};

inline BlockCache& thread_block_cache() {
  thread_local BlockCache cache;
  return cache;
}

// aligned_alloc / free through the calling thread's cache (a miss releases the cache first,
// see above). `bytes` is a multiple of alignment; `owner` is the id of the thread that
// allocated p.
inline void* cached_aligned_alloc(size_t alignment, size_t bytes) {
  if (kBlockCacheEnabled && bytes >= BlockCache::kMinBytes && BlockCache::alive()) {
    BlockCache& c = thread_block_cache();
    if (void* p = c.take(bytes)) return p;
    c.release();
  }
  return std::aligned_alloc(alignment, bytes);
}
inline void cached_free(void* p, size_t bytes, std::thread::id owner) {
  if (!p) return;
  if (kBlockCacheEnabled && bytes >= BlockCache::kMinBytes && owner == std::this_thread::get_id() && BlockCache::alive() &&
      thread_block_cache().keep(p, bytes))
    return;
  std::free(p);
}

}  // namespace detail

// Hands the calling thread's cached free blocks back to the system (core/block_cache.hpp).
inline void release_cached_memory() { detail::thread_block_cache().release(); }
// Bytes the calling thread's cache holds free right now.
inline size_t cached_memory_bytes() { return detail::thread_block_cache().held_bytes(); }
// At most `bytes` are kept free per thread (default 1 GiB); 0 turns the cache off for the
// calling thread.
inline void set_cached_memory_limit(size_t bytes) { detail::thread_block_cache().set_limit(bytes); }

}  // namespace lowbit
