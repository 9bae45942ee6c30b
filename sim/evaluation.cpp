#include "sim/evaluation.hpp"

#include <algorithm>

#include "models/backprop.hpp"

namespace lf {
namespace {
// Examples settled together: bounds the memory of a pass over a large split (Fashion-MNIST's
// 60000 × 784 inputs) while each chunk is one matrix product per layer.
constexpr Eigen::Index chunk_examples = 1000;
}  // namespace

Loss model_loss(const ModelParams& params) {
  return std::visit([](const auto& p) -> Loss {
    if constexpr (requires { p.loss; }) {
      return p.loss;
    } else {
      return Loss::squared;
    }
  }, params);
}

Score evaluate(const Model& model, const State& s, const ExampleSet& set, Loss loss,
               Eigen::Index error_rows, bool labels) {
  Score score;
  const Eigen::Index n = set.size();
  if (n == 0) return score;
  double loss_sum = 0.0;
  Eigen::Index right = 0;
  Eigen::MatrixXd outputs;
  for (Eigen::Index begin = 0; begin < n; begin += chunk_examples) {
    const Eigen::Index count = std::min(chunk_examples, n - begin);
    outputs.resize(set.targets.rows(), count);
    if (!model.predict(s, set.inputs.middleCols(begin, count), outputs)) return score;
    const auto targets = set.targets.middleCols(begin, count);
    loss_sum += batch_loss(loss, outputs, targets, error_rows) * static_cast<double>(count);
    right += batch_correct(outputs, targets, error_rows);
  }
  score.loss = loss_sum / static_cast<double>(n);
  if (labels) score.accuracy = static_cast<double>(right) / static_cast<double>(n);
  return score;
}

}  // namespace lf
