// OpenMP glue. Kernels parallelize with `#pragma omp parallel for if(...)` so they build
// without OpenMP too (the pragmas are ignored), and small tensors stay on one thread,
// where forking would cost more than the work.
#pragma once
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace lowbit {

// Below this many elements, elementwise loops run serially.
constexpr int64_t kParallelGrain = 1 << 15;

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The calling thread's index in the current OpenMP team (0 outside a parallel region), to
// pick per-thread scratch.
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Sets the number of threads kernels use (OpenMP's global setting; a no-op without OpenMP).
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace lowbit
