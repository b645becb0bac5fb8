// Aligned, reference-counted storage. 64-byte alignment lets AVX2 kernels use aligned
// loads on a tensor's first element and keeps rows of separate tensors off shared cache lines.
// Large blocks are mapped pages recycled through the calling thread's pool
// (core/block_cache.hpp), so a training step does not page-fault its tensors in again every
// step and peak RSS is the peak of what is live.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "block_cache.hpp"
#include "error.hpp"

namespace lowbit {

constexpr size_t kAlignment = 64;

template <class T>
class Storage {
 public:
  explicit Storage(int64_t n) : n_(n) {
    LOWBIT_CHECK(n >= 0, "Storage: negative element count ", n);
    if (n == 0) return;
    // aligned_alloc needs the size to be a multiple of the alignment.
    bytes_ = static_cast<size_t>(n) * sizeof(T);
    bytes_ = (bytes_ + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<T*>(detail::cached_aligned_alloc(kAlignment, bytes_));
    if (!data_) throw std::bad_alloc();
  }
  ~Storage() { detail::cached_free(data_, bytes_, owner_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return n_; }

 private:
  T* data_ = nullptr;
  int64_t n_ = 0;
  size_t bytes_ = 0;
  std::thread::id owner_ = std::this_thread::get_id();  // the allocating thread (block_cache.hpp)
};

}  // namespace lowbit
