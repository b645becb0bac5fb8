// A per-thread pool of the pages of large freed storage blocks, reused by the next large
// allocations.
//
// Why: a training step allocates the same tensors in the same order every step, and most of
// them are megabytes. glibc returns big freed blocks to the kernel (munmap, or heap trimming)
// and the next step's allocation of the same size page-faults every page in again, zeroed:
// about 9,600 faults (38 MB) per ResNet-20 batch-128 step without a cache. Keeping the blocks
// in malloc's heap instead (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, or a cache of
// malloc'ed blocks) removes the faults but not the heap's fragmentation: its freed gaps do
// not fit the next step's mix of sizes, so peak RSS counted them on top of what is live
// (ResNet-20 238 MB against 201 MB live, VGG-Small 539-551 against 410 MB;
// docs/performance.md, "Memory").
//
// How (Linux): large blocks are anonymous mappings, and the pool keeps freed ones as *free
// ranges* of address space whose pages stay resident, ordered by address and by size. A
// request takes
//   1. the smallest free range that covers it (best fit; in the steady state of a training
//      step, a range of exactly its size): its head is the block, in place, and the rest
//      stays a free range. No system call, no page fault.
//   2. when no range covers it: a fresh mapping, after handing back (munmap) free ranges of at
//      least as many bytes, the largest first, so what is mapped does not grow past what is
//      live at its peak plus what the pool already held.
// A freed block merges with the free ranges on either side of it. Splits therefore heal: two
// halves of an 8 MB range cut for two 4 MB tensors are one 8 MB range again once both are
// freed. Nothing is moved between mappings, so the kernel's mappings (VMAs) stay as few as
// the blocks: an earlier version moved pooled pages into each fresh mapping with mremap;
// pages from different mappings never merge back into one VMA, and a long training run
// collected ~550 more mappings per CIFAR-10 epoch (14,700 after 27 epochs, on its way to
// vm.max_map_count = 65,530, where mmap fails) and spent ~12% of its time in mremap's TLB
// shootdowns (docs/performance.md, "Memory").
// Other POSIX systems and Windows: the blocks are malloc'ed and only an exact-size block is
// reused; a request that finds none hands the pool back first (so blocks of sizes no
// longer asked for do not pile up), then allocates.
//
// Only a block freed on the thread that allocated it is pooled (in practice the main thread:
// OpenMP workers rarely create tensors); a block handed to another thread and freed there
// goes back to the system, or a thread that only frees (a consumer) would collect pages it
// never reuses. The state is thread-local on purpose: no locks, and no state shared between
// threads (DESIGN: no global mutable state). At most limit bytes are pooled per thread (1 GiB
// by default; beyond it a freed block goes straight back); release() hands the calling
// thread's pool back.
//
// Builds with AddressSanitizer use malloc for every block and pool nothing, so ASan still
// sees every use after free and every overflow.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <iterator>
#include <map>
#include <thread>
#include <vector>

#include "platform.hpp"

#if LOWBIT_POSIX && defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#define LOWBIT_PAGE_POOL 1
#endif

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

#ifdef LOWBIT_PAGE_POOL
inline size_t page_bytes() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}
// A fresh block of `bytes` (a multiple of the page size): untouched pages, page-aligned.
inline void* map_block(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
inline void unmap_block(void* p, size_t bytes) { ::munmap(p, bytes); }
#else
inline size_t page_bytes() { return 64; }
inline void* map_block(size_t bytes) { return std::aligned_alloc(64, bytes); }
inline void unmap_block(void* p, size_t) { std::free(p); }
#endif

class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 16;  // 64 KiB

  ~BlockCache() {
    release();
    alive() = false;  // later frees on this thread (static tensors at exit) bypass the pool
  }

  // Whether this thread's pool still exists (a trivially destructible flag, readable during
  // thread or program exit after the pool itself is gone).
  static bool& alive() {
    thread_local bool a = true;
    return a;
  }

  size_t held_bytes() const { return held_; }
  void set_limit(size_t bytes) {
    limit_ = bytes;
    if (held_ > limit_) release();
  }

#ifdef LOWBIT_PAGE_POOL
  // A block of `bytes` (a whole number of pages): step 1 or 2 of the file comment.
  void* allocate(size_t bytes) {
    const auto fit = by_size_.lower_bound(bytes);
    if (fit == by_size_.end()) {
      hand_back(bytes);
      return map_block(bytes);
    }
    char* p = fit->second;
    const size_t have = fit->first;
    erase(p, have);
    if (have > bytes) insert(p + bytes, have - bytes);
    return p;
  }
  // Pools p (of `bytes`), merged with free neighbours; false when the pool is full (the
  // caller unmaps it).
  bool keep(void* p, size_t bytes) {
    if (held_ + bytes > limit_) return false;
    char* b = static_cast<char*>(p);
    const auto right = by_addr_.find(b + bytes);
    if (right != by_addr_.end()) {
      const size_t n = right->second;
      erase(b + bytes, n);
      bytes += n;
    }
    const auto after = by_addr_.lower_bound(b);  // the first free range above b
    if (after != by_addr_.begin()) {
      const auto left = std::prev(after);
      char* l = left->first;
      const size_t n = left->second;
      if (l + n == b) {
        erase(l, n);
        b = l;
        bytes += n;
      }
    }
    insert(b, bytes);
    return true;
  }
  void release() {
    for (const auto& r : by_addr_) unmap_block(r.first, r.second);
    by_addr_.clear();
    by_size_.clear();
    held_ = 0;
  }
  // Free ranges the pool holds (a test's view of the merging).
  size_t free_ranges() const { return by_addr_.size(); }

 private:
  void insert(char* p, size_t n) {
    by_addr_.emplace(p, n);
    by_size_.emplace(n, p);
    held_ += n;
  }
  void erase(char* p, size_t n) {
    by_addr_.erase(p);
    auto r = by_size_.equal_range(n);
    for (auto it = r.first; it != r.second; ++it)
      if (it->second == p) {
        by_size_.erase(it);
        break;
      }
    held_ -= n;
  }
  // Unmaps free ranges, the largest first, until at least `bytes` are handed back or none is
  // left (step 2: the fresh mapping then does not add to what this thread has mapped).
  void hand_back(size_t bytes) {
    size_t done = 0;
    while (done < bytes && !by_size_.empty()) {
      const auto last = std::prev(by_size_.end());
      char* p = last->second;
      const size_t n = last->first;
      erase(p, n);
      unmap_block(p, n);
      done += n;
    }
  }

  std::map<char*, size_t> by_addr_;       // free ranges: start -> bytes
  std::multimap<size_t, char*> by_size_;  // the same ranges: bytes -> start
#else
  // A block of `bytes`: a pooled block of exactly that size, else a new one after handing
  // the whole pool back.
  void* allocate(size_t bytes) {
    auto it = free_.find(bytes);
    if (it != free_.end()) {
      void* p = it->second.back();
      held_ -= it->first;
      it->second.pop_back();
      if (it->second.empty()) free_.erase(it);
      return p;
    }
    release();
    return map_block(bytes);
  }
  bool keep(void* p, size_t bytes) {
    if (held_ + bytes > limit_) return false;
    free_[bytes].push_back(p);
    held_ += bytes;
    return true;
  }
  void release() {
    for (auto& kv : free_)
      for (void* p : kv.second) unmap_block(p, kv.first);
    free_.clear();
    held_ = 0;
  }

 private:
  std::map<size_t, std::vector<void*>> free_;  // exact-size blocks
#endif
  size_t held_ = 0;
  size_t limit_ = size_t(1) << 30;  // 1 GiB pooled per thread at most
};

inline BlockCache& thread_block_cache() {
  thread_local BlockCache cache;
  return cache;
}

// Whether a block of `bytes` is pooled (and, on Linux, mapped) rather than plain malloc'ed:
// decided by the size alone, so the free below always matches the allocation.
inline bool is_large_block(size_t bytes) { return kBlockCacheEnabled && bytes >= BlockCache::kMinBytes; }
inline size_t round_to_page(size_t bytes) { return (bytes + page_bytes() - 1) / page_bytes() * page_bytes(); }

// aligned_alloc / free with large blocks through the calling thread's pool. `bytes` is a
// multiple of alignment (<= 64); `owner` is the id of the thread that allocated p.
inline void* cached_aligned_alloc(size_t alignment, size_t bytes) {
  if (!is_large_block(bytes)) return std::aligned_alloc(alignment, bytes);
  bytes = round_to_page(bytes);
  if (BlockCache::alive()) return thread_block_cache().allocate(bytes);
  return map_block(bytes);
}
inline void cached_free(void* p, size_t bytes, std::thread::id owner) {
  if (!p) return;
  if (!is_large_block(bytes)) {
    std::free(p);
    return;
  }
  bytes = round_to_page(bytes);
  if (owner == std::this_thread::get_id() && BlockCache::alive() && thread_block_cache().keep(p, bytes)) return;
  unmap_block(p, bytes);
}

}  // namespace detail

// Hands the calling thread's pooled free blocks back to the system (core/block_cache.hpp).
inline void release_cached_memory() { detail::thread_block_cache().release(); }
// Bytes the calling thread's pool holds free right now.
inline size_t cached_memory_bytes() { return detail::thread_block_cache().held_bytes(); }
// At most `bytes` are pooled per thread (default 1 GiB); 0 turns the pool off for the
// calling thread.
inline void set_cached_memory_limit(size_t bytes) { detail::thread_block_cache().set_limit(bytes); }

}  // namespace lowbit
