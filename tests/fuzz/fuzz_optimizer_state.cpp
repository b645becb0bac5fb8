// Optimizer state loaded from a checkpoint, as a resume does it: io::load_checkpoint, the
// "optim/" tensors into Optimizer::load_state, then one step -- where a state tensor of the
// wrong shape used to be read and written past its end. The parameters are fixed (a
// [4,3,3,3] weight and a [4] bias); the input (see fuzz_framed.hpp) is the checkpoint, and
// its last byte picks SGD with momentum, SGD with Nesterov, Adam or AMSGrad.
#include <lowbit/core/tensor.hpp>
#include <lowbit/io/checkpoint.hpp>
#include <lowbit/optim/adam.hpp>
#include <lowbit/optim/sgd.hpp>

#include "fuzz_framed.hpp"

namespace {
using Tensorf = lowbit::Tensor<float>;

std::unique_ptr<lowbit::optim::Optimizer> make_optimizer(int kind, const Tensorf& w, const Tensorf& b) {
  using namespace lowbit::optim;
  std::vector<ParamGroup> groups{{{{"conv.weight", w}, {"conv.bias", b}}, 0.1, 1e-4}};
  switch (kind) {
    case 0: return std::make_unique<SGD>(groups, SgdOptions{0.9, 0.0, false});
    case 1: return std::make_unique<SGD>(groups, SgdOptions{0.9, 0.0, true});
    case 2: return std::make_unique<Adam>(groups);
    default: return std::make_unique<Adam>(groups, AdamOptions{0.9, 0.999, 1e-8, true});
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace io = lowbit::io;
  if (size < 1) return 0;
  const std::string path =
      fuzz::write_framed_input("optim.bin", io::kCheckpointMagic, io::kCheckpointVersion, data, size - 1);
  if (path.empty()) return 0;
  fuzz::expect_clean([&] {
    const io::Checkpoint ck = io::load_checkpoint(path);
    std::map<std::string, Tensorf> state;
    for (const auto& [name, t] : ck.tensors)
      if (name.rfind("optim/", 0) == 0) state.emplace(name.substr(6), t);
    Tensorf w = Tensorf::full({4, 3, 3, 3}, 0.5f).set_requires_grad();
    Tensorf b = Tensorf::full({4}, 0.25f).set_requires_grad();
    w.set_grad(Tensorf::full({4, 3, 3, 3}, 0.1f));
    b.set_grad(Tensorf::full({4}, -0.1f));
    auto opt = make_optimizer(data[size - 1] % 4, w, b);
    opt->load_state(state);
    opt->step();
  });
  return 0;
}
