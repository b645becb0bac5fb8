// ALQ Step 1: pruning in the alpha domain (Sec. 3.2, Eqs. 11-15).
//
// With B fixed and the diagonal quadratic model of AMSGrad (Eq. 12), removing coordinate
// alpha_i (setting it to 0) changes the loss by
//
//   f_i = -g_i alpha_i + 1/2 H_ii alpha_i^2                                   (ALQ Eq. 13)
//
// where g and H are the alpha-domain pseudo-gradient and pseudo-Hessian (quant/alq/optim.hpp)
// built from g_alpha = B^T dL/dw_hat (Eq. 14). The increments decouple, so the best set of M
// coordinates to remove is the M smallest f_i. They are sorted across all layers (Sec. 3.2:
// the group sizes are similar, so one global ranking and one global count suffice).
//
// How many per iteration:
//   "paper"   (Sec. 3.2) the average bit width falls uniformly from I^0 (at the first pruning
//             iteration) to I_min after T iterations: after iteration t (0-based) the total
//             bits sum_g I_g n_g may be at most  B_t = B_0 - (B_0 - I_min N)(t+1)/T,  and
//             the smallest increments are removed until that holds. This is the paper's
//             M_p = round((I^0 - I_min) G / T) per iteration, counted in bits rather than
//             coordinates so that layers with different group sizes are weighed fairly and
//             the target is met exactly after T iterations despite rounding.
//   "authors" (docs/notes/alq.md §2.6, zqu1992/ALQ prune()): each layer proposes its
//             k_l = stochastic_round(top_k * active_l) smallest increments; the proposals
//             are sorted globally and the smallest floor(#proposals * M_p) removed, with
//             M_p = (pr / top_k) / (epoch_prune * steps_per_epoch). The authors' global sort
//             reads the wrong increments once the mask has holes (it indexes the unmasked
//             tensor with positions in the masked one); here every proposal carries its own
//             increment, so the ranking is the intended one.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "../../core/random.hpp"

namespace lowbit {
namespace quant {
namespace alq {

// ALQ Eq. 13: the modelled loss increment of pruning one coordinate.
inline double prune_increment(double g, double h, double alpha) { return -g * alpha + 0.5 * h * alpha * alpha; }

// One active coordinate: its increment and where it lives.
struct PruneCandidate {
  double f = 0;       // Eq. 13
  int layer = 0;      // index into the optimizer's list of ALQ weights
  int64_t group = 0;
  int slot = 0;
  int64_t bits = 0;   // the group size n: bits the model saves by removing it
};

// Ascending increment; ties broken by position so the choice does not depend on sort
// stability or input order.
inline bool prune_less(const PruneCandidate& a, const PruneCandidate& b) {
  return std::tie(a.f, a.layer, a.group, a.slot) < std::tie(b.f, b.layer, b.group, b.slot);
}

// The paper's rule: removes the smallest increments until total_bits <= budget_bits.
// Returns the removed candidates (ascending f).
inline std::vector<PruneCandidate> select_paper(std::vector<PruneCandidate> cands, int64_t total_bits,
                                                double budget_bits) {
  std::sort(cands.begin(), cands.end(), prune_less);
  std::vector<PruneCandidate> out;
  for (auto& c : cands) {
    if (static_cast<double>(total_bits) <= budget_bits) break;
    out.push_back(c);
    total_bits -= c.bits;
  }
  return out;
}

// The bit budget after pruning iteration t of T (paper's rule), from B_0 bits at the first
// iteration down to target_bits * N.
inline double paper_budget(double bits0, double target_total_bits, int64_t t, int64_t T) {
  if (bits0 <= target_total_bits) return bits0;
  return bits0 - (bits0 - target_total_bits) * static_cast<double>(t + 1) / static_cast<double>(T);
}

// The authors' rule (see the file comment). `per_layer[l]` holds layer l's candidates;
// `rng` draws the stochastic rounding of each layer's proposal count, in layer order.
inline std::vector<PruneCandidate> select_authors(std::vector<std::vector<PruneCandidate>> per_layer, double top_k,
                                                  double mp, Generator& rng) {
  std::vector<PruneCandidate> proposals;
  for (auto& cands : per_layer) {
    std::sort(cands.begin(), cands.end(), prune_less);
    const double want = top_k * static_cast<double>(cands.size());
    int64_t k = static_cast<int64_t>(std::floor(want));
    if (rng.uniform() < want - std::floor(want)) ++k;  // stochastic rounding
    k = std::min<int64_t>(k, static_cast<int64_t>(cands.size()));
    proposals.insert(proposals.end(), cands.begin(), cands.begin() + k);
  }
  std::sort(proposals.begin(), proposals.end(), prune_less);  // each proposal keeps its own f
  const int64_t m = static_cast<int64_t>(static_cast<double>(proposals.size()) * mp);
  proposals.resize(static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(m, 0), static_cast<int64_t>(proposals.size()))));
  return proposals;
}

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
