// How OpenMP threads wait between parallel regions, for programs that share the CPU.
//
// libgomp's default lets an idle thread spin about 300,000 times (a few ms) before it sleeps.
// Alone that is free; beside one busy process on a 2-core machine it is not: the spinning
// thread takes the core the other region's thread needs, and 2-thread training fell to
// 266-319 images/s from 849-978 alone (issue 34). With OMP_WAIT_POLICY=passive idle threads
// sleep at once; docs/performance.md ("Sharing the CPU") has the side-by-side numbers.
//
// libgomp reads its environment once, when it is loaded, before main() runs, so a program
// cannot change the policy from inside. use_passive_omp_wait() therefore sets
// OMP_WAIT_POLICY=passive and re-executes the program once, with the same arguments. A wait
// policy or spin count the user set (OMP_WAIT_POLICY, GOMP_SPINCOUNT) is kept as it is.
// Call it first thing in main(), before any thread or file is opened.
#pragma once
#include <cstdlib>
#include <string>

#include "../core/platform.hpp"

#if LOWBIT_POSIX && defined(__linux__)
#include <unistd.h>
#endif

namespace lowbit {

// Returns the wait policy in effect, in words, for the run's log.
inline std::string use_passive_omp_wait(char** argv) {
#if defined(_OPENMP) && LOWBIT_POSIX && defined(__linux__)
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  const char* ours = std::getenv("LOWBIT_OMP_WAIT_SET");  // set by the re-execution below
  if (ours != nullptr && policy != nullptr) return std::string("OMP_WAIT_POLICY=") + policy + " (lowbit's default)";
  if (policy != nullptr || spins != nullptr)
    return std::string("from the environment: OMP_WAIT_POLICY=") + (policy ? policy : "(unset)") +
           ", GOMP_SPINCOUNT=" + (spins ? spins : "(unset)");
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::setenv("LOWBIT_OMP_WAIT_SET", "1", 1);
  ::execv("/proc/self/exe", argv);  // returns only if it failed: run on with libgomp's default
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv("LOWBIT_OMP_WAIT_SET");
  return "libgomp's default (re-executing with OMP_WAIT_POLICY=passive failed)";
#else
  (void)argv;
  return "not applicable (no OpenMP, or not Linux)";  // the user may set OMP_WAIT_POLICY
#endif
}

}  // namespace lowbit
