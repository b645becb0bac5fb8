// The autograd graph. Every differentiable op creates one Node<T> for its output; the node
// holds the op's backward as a closure written next to the op's forward (in ops/*.hpp),
// and one Edge per input that needs a gradient.
//
// Edges point to the *producer node* of a non-leaf input, or to the *leaf tensor* itself
// for parameters. Intermediate tensors are therefore not kept alive by the graph; a
// backward closure keeps exactly what its formula needs (e.g. exp keeps its output).
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "../core/shape.hpp"
#include "grad_mode.hpp"

namespace lowbit {

// Declared here, defined in core/tensor.hpp (included at the end of this file).
template <class T>
class Tensor;
namespace detail {
template <class T>
struct TensorImpl;
}  // namespace detail

namespace autograd {

template <class T>
struct Node;

template <class T>
struct Edge {
  std::shared_ptr<Node<T>> node;                 // producer of a non-leaf input
  std::shared_ptr<detail::TensorImpl<T>> leaf;   // a leaf that requires grad
  Shape shape;                                   // the input's shape, checked on backward
  bool needs_grad() const { return node || leaf; }
};

template <class T>
struct Node {
  // Given dL/d(output), returns dL/d(input_i) for every input, in order; an undefined
  // tensor where edges[i] needs no gradient. Must not write into its argument.
  using BackwardFn = std::function<std::vector<Tensor<T>>(const Tensor<T>& grad_out)>;

  std::string op;            // e.g. "matmul"; names the op in every autograd error
  std::vector<Edge<T>> edges;
  Shape out_shape;
  BackwardFn backward;       // reset after backward unless retain_graph
  bool freed = false;

  // "matmul([2, 3], [3, 4]) -> [2, 4]" for error messages.
  std::string describe() const {
    std::string s = op + "(";
    for (size_t i = 0; i < edges.size(); ++i) s += (i ? ", " : "") + shape_str(edges[i].shape);
    return s + ") -> " + shape_str(out_shape);
  }
};

// True when an op on these inputs must be recorded.
template <class T>
bool needs_grad(std::initializer_list<const Tensor<T>*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor<T>* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// Records `out` as the result of `op` applied to `inputs`, with its backward closure.
// Ops call this only when needs_grad(...) is true. The closure must not capture `out`
// itself (that would be a reference cycle); capture out.detach() instead.
template <class T>
void record(Tensor<T>& out, const char* op, std::initializer_list<const Tensor<T>*> inputs,
            typename Node<T>::BackwardFn backward) {
  auto node = std::make_shared<Node<T>>();
  node->op = op;
  node->out_shape = out.shape();
  node->backward = std::move(backward);
  for (const Tensor<T>* t : inputs) {
    Edge<T> e;
    if (t->defined()) {
      e.shape = t->shape();
      if (t->requires_grad()) {
        if (t->grad_fn()) e.node = t->grad_fn();
        else e.leaf = t->impl_ptr();
      }
    }
    node->edges.push_back(std::move(e));
  }
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
}

}  // namespace autograd
}  // namespace lowbit

// Last: core/tensor.hpp includes autograd/backward.hpp, which needs Node and Edge above, so
// the complete Tensor comes after them. Including this header alone still gives it.
#include "../core/tensor.hpp"
