// backward(): reverse-mode differentiation over the graph recorded by the ops.
//
// 1. Topologically sort the nodes reachable from the output (iterative DFS).
// 2. Seed dL/d(output) (1 for a scalar, or the caller's seed).
// 3. Visit nodes in reverse topological order; each node's closure maps its output gradient
//    to input gradients; gradients of a value used more than once are summed.
// 4. Leaves accumulate into .grad() (adding to what is there, as PyTorch does).
// Closures run under NoGradGuard: lowbit computes first derivatives only.
#pragma once
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../kernels/parallel.hpp"
#include "node.hpp"
#include "profiler.hpp"

namespace lowbit {
namespace autograd {

namespace detail_bw {
// a += b elementwise, same shape (checked by the caller).
template <class T>
void add_into(Tensor<T>& a, const Tensor<T>& b) {
  T* pa = a.data();
  const T* pb = b.data();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) pa[i] += pb[i];
}
// A fresh buffer holding a + b, leaving both untouched (a closure may have returned a view
// of its argument, so an in-place add could corrupt another node's gradient).
template <class T>
Tensor<T> sum_of(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = a.clone();
  add_into(out, b);
  return out;
}
// True when nothing else can see t's data (no other handle, no view of the same storage),
// so adding into it in place cannot corrupt another node's gradient.
template <class T>
bool exclusively_owned(const Tensor<T>& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1;
}
}  // namespace detail_bw

template <class T>
void accumulate_leaf(detail::TensorImpl<T>& leaf, const Tensor<T>& g) {
  if (!leaf.grad) leaf.grad = std::make_shared<Tensor<T>>(detail_bw::exclusively_owned(g) ? g : g.clone());
  else detail_bw::add_into(*leaf.grad, g);
}

template <class T>
void run_backward(const Tensor<T>& root, const Tensor<T>& seed_in, bool retain_graph) {
  LOWBIT_CHECK(root.defined(), "backward: called on an undefined tensor");
  LOWBIT_CHECK(root.requires_grad(), "backward: tensor of shape ", shape_str(root.shape()),
               " does not require grad (no input of the ops that made it has requires_grad, "
               "or it was computed under NoGradGuard)");
  const std::string producer = root.grad_fn() ? root.grad_fn()->describe() : "leaf";
  Tensor<T> seed = seed_in;
  if (!seed.defined()) {
    LOWBIT_CHECK(root.numel() == 1, "backward: output of ", producer, " has shape ",
                 shape_str(root.shape()), "; backward() without a seed needs a scalar (1 element). "
                 "Pass a seed gradient of shape ", shape_str(root.shape()), " or reduce first (sum/mean)");
    seed = Tensor<T>::ones(root.shape());
  }
  LOWBIT_CHECK(seed.shape() == root.shape(), "backward: seed gradient has shape ",
               shape_str(seed.shape()), " but the output of ", producer, " has shape ",
               shape_str(root.shape()));

  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // backward on a leaf: its gradient is the seed
    accumulate_leaf(root.impl(), seed);
    return;
  }

  // Iterative post-order DFS gives a topological order (inputs before outputs).
  std::vector<Node<T>*> order;
  std::unordered_set<Node<T>*> seen;
  std::vector<std::pair<Node<T>*, size_t>> stack{{root.grad_fn().get(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->edges.size()) {
      Node<T>* child = node->edges[next++].node.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node<T>*, Tensor<T>> grads;
  grads[root.grad_fn().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node<T>* node = *it;
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // no gradient reached this node
    Tensor<T> g_out = std::move(found->second);
    grads.erase(found);
    LOWBIT_CHECK(!node->freed, "backward: the graph through ", node->describe(),
                 " was already freed by an earlier backward(); call backward(seed, "
                 "/*retain_graph=*/true) the first time to run backward twice");
    std::vector<Tensor<T>> g_in;
    {
      ProfileTimer timer(true, node->op);
      g_in = node->backward(g_out);
    }
    LOWBIT_CHECK(g_in.size() == node->edges.size(), "backward: ", node->describe(), " returned ",
                 g_in.size(), " gradients for ", node->edges.size(), " inputs");
    for (size_t i = 0; i < g_in.size(); ++i) {
      const Edge<T>& e = node->edges[i];
      if (!e.needs_grad() || !g_in[i].defined()) continue;
      LOWBIT_CHECK(g_in[i].shape() == e.shape, "backward: ", node->describe(),
                   " produced a gradient of shape ", shape_str(g_in[i].shape()), " for input ", i,
                   " of shape ", shape_str(e.shape));
      if (e.leaf) {
        accumulate_leaf(*e.leaf, g_in[i]);
      } else {
        auto slot = grads.find(e.node.get());
        if (slot == grads.end()) grads.emplace(e.node.get(), std::move(g_in[i]));
        else if (detail_bw::exclusively_owned(slot->second)) detail_bw::add_into(slot->second, g_in[i]);
        else slot->second = detail_bw::sum_of(slot->second, g_in[i]);
      }
    }
    if (!retain_graph) {
      node->backward = nullptr;  // releases the saved tensors
      node->freed = true;
    }
  }
}

}  // namespace autograd

template <class T>
void Tensor<T>::backward(const Tensor& seed, bool retain_graph) const {
  autograd::run_backward(*this, seed, retain_graph);
}

}  // namespace lowbit
