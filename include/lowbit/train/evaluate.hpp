// Test-set evaluation of a classifier: mean cross-entropy and accuracy over a dataset in
// eval mode (running BN statistics, SLB's W_q, ...), one unshuffled, un-augmented pass.
// With flip_tta each image is scored by its flip-averaged probabilities (nn/tta.hpp); the
// loss is then -log of that probability at the label, and the mirror view's accuracy and
// how often the two views disagree are reported too. The confusion matrix counts every image
// by its label (row) and prediction (column); per-class accuracy follows from it.
// With a communicator of several processes (data-parallel training, docs/distributed.md),
// each evaluates its shard of every batch and the counts are added up: every process gets
// the whole set's result (the loss summed in another order than one process's).
#pragma once
#include <memory>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../data/dataset.hpp"
#include "../dist/communicator.hpp"
#include "../data/loader.hpp"
#include "../nn/module.hpp"
#include "../nn/tta.hpp"
#include "../ops/reduce.hpp"
#include "../ops/softmax.hpp"

namespace lowbit {
namespace train {

struct EvalResult {
  double loss = 0, acc = 0;
  double mirror_acc = 0, disagree = 0;  // flip TTA only: the mirror view alone; views' predictions differ
  int64_t classes = 0;
  std::vector<int64_t> confusion;       // classes x classes, row-major: [label][prediction]

  // Correct predictions over images of class k (0 when the set has no image of it).
  double class_accuracy(int64_t k) const {
    int64_t row = 0;
    for (int64_t j = 0; j < classes; ++j) row += confusion[static_cast<size_t>(k * classes + j)];
    return row ? static_cast<double>(confusion[static_cast<size_t>(k * classes + k)]) / static_cast<double>(row) : 0.0;
  }
};

// `norm`: the normalization the model was trained with (train/data.hpp's DataInfo).
inline EvalResult evaluate(nn::Module& model, const data::Dataset& ds, int64_t batch, bool flip_tta = false,
                           const data::Normalize& norm = data::Normalize::cifar10(),
                           const dist::Communicator* comm = nullptr) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.normalize = norm;
  lo.shuffle = false;
  lo.augment = false;
  if (comm) lo.shard = comm->rank(), lo.shards = comm->size();
  data::DataLoader loader(std::make_shared<const data::Dataset>(ds), lo);
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::Batch b;
  double loss = 0;
  int64_t correct = 0, seen = 0, mirror_correct = 0, disagree = 0;
  const int64_t classes = ds.num_classes();
  std::vector<int64_t> confusion(static_cast<size_t>(classes * classes), 0);
  while (loader.next(b)) {
    Tensor<int64_t> pred;
    if (flip_tta) {
      const auto views = nn::flip_views_log_softmax(model, b.images);
      const Tensor<float> lp = nn::log_mean_probs(views.first, views.second);
      const int64_t k = lp.shape()[1];
      for (int64_t i = 0; i < b.size(); ++i) loss -= lp.data()[i * k + b.labels[static_cast<size_t>(i)]];
      pred = argmax(lp, 1);
      const Tensor<int64_t> p1 = argmax(views.first, 1), p2 = argmax(views.second, 1);
      for (int64_t i = 0; i < b.size(); ++i) {
        mirror_correct += p2.data()[i] == b.labels[static_cast<size_t>(i)];
        disagree += p1.data()[i] != p2.data()[i];
      }
    } else {
      Tensor<float> logits = model(b.images);
      loss += cross_entropy(logits, b.labels).item() * static_cast<double>(b.size());
      pred = argmax(logits, 1);
    }
    for (int64_t i = 0; i < b.size(); ++i) {
      const int64_t label = b.labels[static_cast<size_t>(i)], p = pred.data()[i];
      correct += p == label;
      if (p >= 0 && p < classes) ++confusion[static_cast<size_t>(label * classes + p)];
    }
    seen += b.size();
  }
  model.train(was_training);
  if (comm && comm->size() > 1) {  // counts are exact in double up to 2^53
    std::vector<double> v = {loss, static_cast<double>(correct), static_cast<double>(seen),
                             static_cast<double>(mirror_correct), static_cast<double>(disagree)};
    for (int64_t c : confusion) v.push_back(static_cast<double>(c));
    comm->sum(v.data(), v.size());
    loss = v[0], correct = static_cast<int64_t>(v[1]), seen = static_cast<int64_t>(v[2]);
    mirror_correct = static_cast<int64_t>(v[3]), disagree = static_cast<int64_t>(v[4]);
    for (size_t k = 0; k < confusion.size(); ++k) confusion[k] = static_cast<int64_t>(v[5 + k]);
  }
  const double n = static_cast<double>(seen);
  return {loss / n, static_cast<double>(correct) / n, static_cast<double>(mirror_correct) / n,
          static_cast<double>(disagree) / n, classes, confusion};
}

}  // namespace train
}  // namespace lowbit
