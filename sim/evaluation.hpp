#pragma once
// Evaluation of a training run (DESIGN §5): the network with the parameters of a state, settled on
// every example of a data split by the model's own forward convention (Model::predict), scored
// with the model's loss on the outputs that carry the target error, and by the argmax of those
// outputs against the labels.
#include <limits>

#include "models/params.hpp"
#include "sim/core/dataset.hpp"
#include "sim/core/model.hpp"

namespace lf {

struct Score {
  double loss = std::numeric_limits<double>::quiet_NaN();      // mean over the examples
  double accuracy = std::numeric_limits<double>::quiet_NaN();  // fraction right (labels only)
};

// The loss a model's parameters name (squared for models without one).
Loss model_loss(const ModelParams& params);

// Scores `set` (all NaN when it is empty), settling chunks of examples at a time.
Score evaluate(const Model& model, const State& s, const ExampleSet& set, Loss loss,
               Eigen::Index error_rows, bool labels);

}  // namespace lf
