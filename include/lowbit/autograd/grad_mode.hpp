// Grad mode: whether ops record themselves on the tape. The flag is the library's one piece
// of mutable global state, and it is thread-local so that a no-grad region in one thread
// (evaluation, an optimizer step) never changes what another thread records.
// Needs nothing else from lowbit: core/tensor.hpp includes it (Tensor<T>::check_inplace,
// defined there, asks is_grad_enabled()).
#pragma once

namespace lowbit {

// The documented thread-local guard state. True by default in every thread.
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool is_grad_enabled() { return grad_mode_flag(); }

// RAII: disables recording for the current thread while alive; restores the previous
// state (so guards nest).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_mode_flag()) { grad_mode_flag() = false; }
  ~NoGradGuard() { grad_mode_flag() = prev_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: re-enables recording inside a no-grad region.
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_mode_flag()) { grad_mode_flag() = true; }
  ~EnableGradGuard() { grad_mode_flag() = prev_; }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace lowbit
