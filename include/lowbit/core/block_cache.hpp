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
// How (Linux): every block of at least kMinBytes is its own anonymous mapping, a whole number
// of pages. A freed block is kept here (the pool). A request takes
//   1. a pooled block of exactly its size, if there is one (the steady state of a training
//      step: the same sizes in the same order);
//   2. otherwise a fresh mapping of its size whose pages are *moved in* from pooled blocks
//      with mremap (the smallest pooled block that covers the request, split, or else the
//      largest ones first): moving a page changes the page table only, nothing is copied
//      or zeroed, so there is no fault. The part of the request the pool cannot cover gets
//      new pages.
// New pages are therefore touched only when the pool is empty, i.e. when what is live is at a
// new high: the resident set is what is live plus what the pool holds, and its peak is the
// peak of what is live (up to page rounding). No fragmentation: the pool's pages have no
// addresses to fit, only a count.
// Other POSIX systems and Windows (no mremap): the blocks are malloc'ed and only an exact-size
// block is reused; a request that finds none hands the pool back first (so blocks of sizes no
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
#include <map>
#include <thread>
#include <vector>
#if defined(__linux__)
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

  // A block of `bytes` (a whole number of pages): step 1 or 2 of the file comment.
  void* allocate(size_t bytes) {
    auto it = free_.find(bytes);
    if (it != free_.end()) return pop(it);
#ifdef LOWBIT_PAGE_POOL
    return assemble(bytes);
#else
    release();
    return map_block(bytes);
#endif
  }
  // Pools p (of `bytes`); false when the pool is full (the caller unmaps it).
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

  size_t held_bytes() const { return held_; }
  void set_limit(size_t bytes) {
    limit_ = bytes;
    if (held_ > limit_) release();
  }

  // Whether this thread's pool still exists (a trivially destructible flag, readable during
  // thread or program exit after the pool itself is gone).
  static bool& alive() {
    thread_local bool a = true;
    return a;
  }

 private:
  using Pool = std::map<size_t, std::vector<void*>>;

  void* pop(Pool::iterator it) {
    void* p = it->second.back();
    held_ -= it->first;
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    return p;
  }

#ifdef LOWBIT_PAGE_POOL
  // A fresh mapping of `bytes` filled with pooled pages: the smallest pooled block that covers
  // it (its rest stays pooled), else the largest blocks first; new pages for what is left.
  void* assemble(size_t bytes) {
    char* dst = static_cast<char*>(map_block(bytes));
    if (!dst) return nullptr;
    size_t filled = 0;
    while (filled < bytes && !free_.empty()) {
      auto it = free_.lower_bound(bytes - filled);
      if (it == free_.end()) --it;  // none covers the rest: the largest
      const size_t have = it->first;
      char* src = static_cast<char*>(pop(it));
      const size_t take = std::min(have, bytes - filled);
      // Moves the page-table entries of [src, src + take) over [dst + filled, ...), replacing
      // the fresh (untouched) pages there; nothing is copied.
      if (::mremap(src, take, take, MREMAP_MAYMOVE | MREMAP_FIXED, dst + filled) == MAP_FAILED) {
        unmap_block(src, have);  // cannot happen for our own mappings; those pages stay fresh
        continue;
      }
      if (take < have && !keep(src + take, have - take)) unmap_block(src + take, have - take);  // a split's rest
      filled += take;
    }
    return dst;
  }
#endif

  Pool free_;
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
