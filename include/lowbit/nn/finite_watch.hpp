// FiniteWatch: finds the first module whose output holds NaN or inf. While a watch is alive
// in a thread, nn::Module::operator() hands every module's output to it; modules finish in
// post-order (a layer before the block that contains it), so the first non-finite output
// recorded is the earliest place in the forward pass where the values broke. A training
// loop runs one diagnostic forward under a watch after it saw a non-finite loss (see
// train/finite.hpp); no check is made and nothing costs time when no watch is active.
// The active watch is a documented thread-local pointer, like the profiler's.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "../core/tensor.hpp"

namespace lowbit {
namespace nn {

// Index of the first NaN/inf element of t, or -1 when every element is finite.
inline int64_t first_nonfinite(const Tensor<float>& t) {
  if (!t.defined()) return -1;
  const float* p = t.data();
  const int64_t n = t.numel();
  // NaN and inf are the floats whose exponent bits are all ones. An OR over integers is a
  // reduction the compiler vectorizes (a float sum is not, without -ffast-math), so the pass
  // runs at memory speed; the element is searched for only on failure.
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, sizeof bits);
    any |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (any == 0) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

class FiniteWatch {
 public:
  // names: each module (by address) and the hierarchical name it has in the watched model.
  explicit FiniteWatch(std::map<const void*, std::string> names) : names_(std::move(names)), prev_(active()) {
    active() = this;
  }
  ~FiniteWatch() { active() = prev_; }
  FiniteWatch(const FiniteWatch&) = delete;
  FiniteWatch& operator=(const FiniteWatch&) = delete;

  // The documented thread-local: the watch that receives module outputs in this thread, or null.
  static FiniteWatch*& active() {
    thread_local FiniteWatch* watch = nullptr;
    return watch;
  }
  // Called by Module::operator() with each module's output; keeps the first non-finite one.
  void see(const void* module, const std::string& type, const Tensor<float>& out) {
    if (!first_.empty()) return;
    const int64_t i = first_nonfinite(out);
    if (i < 0) return;
    auto it = names_.find(module);
    const std::string name = it == names_.end() ? "?" : it->second.empty() ? "the model" : "'" + it->second + "'";
    first_ = name + " (" + type + ") outputs " + std::to_string(out.data()[i]) + " at element " + std::to_string(i);
  }
  // "'layer2.0.bn1' (BatchNorm2d) outputs nan at element 7", or "" when every output was finite.
  const std::string& first() const { return first_; }

 private:
  std::map<const void*, std::string> names_;
  FiniteWatch* prev_;
  std::string first_;
};

}  // namespace nn
}  // namespace lowbit
