// tutorial: the code of docs/tutorial.md. It builds a small CNN whose middle convolutions
// have 2-bit DoReFa weights and 2-bit activations, trains it on a CIFAR-10 subset, prints
// its size, exports it as integer codes and checks that the exported model gives the same
// accuracy. The blocks between "// [step: NAME]" and "// [end]" are quoted verbatim in
// docs/tutorial.md; a test (tests/test_docs.cpp) fails if the two drift apart.
//
//   tutorial [--data DIR] [--per-class N] [--epochs E]
#include <cstdio>
#include <cstdlib>
#include <lowbit/lowbit.hpp>
#include <string>

using namespace lowbit;

// [step: model]
// conv(3->32) FP32 -> BN+ReLU -> qconv(32->64, /2) -> BN+ReLU -> qconv(64->128, /2)
// -> BN+ReLU -> global average pool -> linear(128->10) FP32.
// The first and last layers stay in full precision, as in the DoReFa-style baselines.
// frozen = true builds the inference twin whose quantized weights are integer codes loaded
// from an export file (quant::FrozenWeight) instead of trainable latent weights.
std::shared_ptr<nn::Sequential> make_model(int bits, bool frozen, Generator& gen) {
  // A quantized conv: the weight quantizer is made from the layer's initial float weight,
  // the activation quantizer acts on the layer's input.
  auto qconv = [&](int64_t in, int64_t out, int64_t stride) {
    nn::ConvSpec spec{in, out, /*kernel=*/3, stride, /*pad=*/1, /*bias=*/false, nn::LayerRole::Middle};
    quant::WeightQuantizerMaker weights = [bits, frozen](const Tensor<float>& init) -> std::shared_ptr<quant::WeightQuantizer> {
      if (frozen) return std::make_shared<quant::FrozenWeight>(init.shape(), bits);
      return std::make_shared<quant::DoReFaWeight>(init, bits);
    };
    return std::make_shared<quant::QConv2d>(spec, weights, std::make_shared<quant::DoReFaActivation>(bits), gen);
  };
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(3, 32, 3, 1, 1, false, gen));
  m->push_back(std::make_shared<nn::BatchNorm>(32, true, /*fuse_relu=*/true));
  m->push_back(qconv(32, 64, 2));
  m->push_back(std::make_shared<nn::BatchNorm>(64, true, true));
  m->push_back(qconv(64, 128, 2));
  m->push_back(std::make_shared<nn::BatchNorm>(128, true, true));
  m->push_back(std::make_shared<nn::GlobalAvgPool2d>());
  m->push_back(std::make_shared<nn::Linear>(128, 10, true, gen));
  return m;
}
// [end]

// [step: evaluate]
double accuracy(nn::Module& model, const data::Dataset& ds) {
  data::LoaderOptions lo;
  lo.batch_size = 256;
  lo.shuffle = false;
  lo.augment = false;
  data::DataLoader loader(std::make_shared<const data::Dataset>(ds), lo);
  NoGradGuard no_grad;  // no tape while evaluating
  model.eval();         // BN uses running statistics
  int64_t correct = 0;
  data::Batch b;
  while (loader.next(b)) {
    Tensor<int64_t> pred = argmax(model(b.images), 1);
    for (int64_t i = 0; i < b.size(); ++i) correct += pred.data()[i] == b.labels[static_cast<size_t>(i)];
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(ds.size());
}
// [end]

int main(int argc, char** argv) {
  std::string data_dir;
  int64_t per_class = 200, epochs = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a != "--data" && a != "--per-class" && a != "--epochs") {
      std::fprintf(stderr, "tutorial: unknown argument '%s' (expected --data, --per-class, --epochs)\n", a.c_str());
      return 2;
    }
    if (i + 1 == argc) {
      std::fprintf(stderr, "tutorial: %s needs a value\n", a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--data") {
      data_dir = v;
      continue;
    }
    char* end = nullptr;
    const long long x = std::strtoll(v, &end, 10);
    if (!*v || *end || x <= 0 || x > 1000000) {  // atoll read "abc" as 0
      std::fprintf(stderr, "tutorial: %s expects a whole number >= 1, got '%s'\n", a.c_str(), v);
      return 2;
    }
    (a == "--per-class" ? per_class : epochs) = x;
  }
  try {
    // [step: data]
    // --data DIR, then $LOWBIT_DATA, then data/cifar-10-batches-bin, then ../shared/data/cifar10-jpg.
    const data::DataLocation where = data::find_cifar10(data_dir);
    std::printf("data: %s\n", where.description.c_str());
    const data::Dataset train = data::balanced_subset(data::load_cifar10(where, data::Split::Train), per_class, 0);
    const data::Dataset test = data::balanced_subset(data::load_cifar10(where, data::Split::Test), 100, 0);
    // [end]

    // [step: train]
    Generator gen(0);
    auto model = make_model(/*bits=*/2, /*frozen=*/false, gen);
    // Weight decay on conv/linear weights (rank >= 2), none on BN parameters and biases.
    optim::ParamGroup decay, no_decay;
    decay.weight_decay = 5e-4;
    for (auto& kv : model->named_parameters()) (kv.second.dim() >= 2 ? decay : no_decay).params.push_back(kv);
    optim::SGD opt({decay, no_decay}, optim::SgdOptions{/*momentum=*/0.9, /*dampening=*/0.0, /*nesterov=*/true});

    data::LoaderOptions lo;
    lo.batch_size = 64;  // pad-4 random crop + flip, CIFAR mean/std, reshuffled every epoch
    data::DataLoader loader(std::make_shared<const data::Dataset>(train), lo);
    optim::Schedule sched;  // cosine from 0.05 to 0 over the run, per step
    sched.kind = optim::Schedule::Kind::Cosine;
    sched.base_lr = 0.05;
    sched.total_steps = epochs * loader.batches_per_epoch();

    int64_t step = 0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      double loss_sum = 0;
      data::Batch b;
      while (loader.next(b)) {
        opt.set_lr(sched.lr_at(step++));
        opt.zero_grad();
        Tensor<float> loss = cross_entropy((*model)(b.images), b.labels);
        loss.backward();  // through DoReFa's straight-through estimators (docs/gradients.md)
        opt.step();
        loss_sum += loss.item() * static_cast<double>(b.size());
      }
      std::printf("epoch %lld: train loss %.4f, test accuracy %.2f%%\n", static_cast<long long>(epoch),
                  loss_sum / static_cast<double>(train.size()), 100 * accuracy(*model, test));
    }
    // [end]

    // [step: export]
    // Per-layer bits, storage and MACs with the papers' size accounting.
    std::printf("\n%s\n", quant::summary(*model).table().c_str());
    // Integer codes + scales for quantized weights, FP32 for the rest; reload and compare.
    quant::export_quantized(*model, "tutorial_model.lbq", {{"note", "docs/tutorial.md"}});
    Generator unused(0);
    std::shared_ptr<nn::Module> deployed = make_model(2, /*frozen=*/true, unused);
    quant::load_quantized_into(deployed, quant::read_quantized("tutorial_model.lbq"));
    const double trained = accuracy(*model, test), exported = accuracy(*deployed, test);
    std::printf("test accuracy: trained model %.2f%%, exported model %.2f%%\n", 100 * trained, 100 * exported);
    // [end]
    return trained == exported ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tutorial: error: %s\n", e.what());
    return 2;
  }
}
