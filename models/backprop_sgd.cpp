#include "models/backprop_sgd.hpp"

#include <limits>

#include "models/projection_ops.hpp"
#include "sim/core/errors.hpp"

namespace lf {

BackpropSgdModel::BackpropSgdModel(const Network& network, const BackpropParams& params,
                                   const Drive& drive)
    : network_(&network), params_(params), drive_(&drive), layout_(drive.signal().batch_shape()),
      x_(network, layout_, "x"), learned_(network, layout_, params.plastic_bias),
      reference_(network, 1.0, params.loss, drive.error_rows()) {
  const InputSpec& input = drive.signal().spec();
  const bool sequence = input.kind == InputKind::sequence && !input.targets.empty();
  if (!sequence && input.kind != InputKind::dataset) {
    throw ConfigError("model.type", "", "model.type: model 'backprop' learns from examples: give a "
                                        "training data set ([data] and [train]) or a sequence "
                                        "input with targets");
  }
  if (sequence) patterns_ = input.sequence.size();
  batch_accuracy_ = input.kind == InputKind::dataset;
  output_x_.resize(x_.outputs(), x_.examples());
}

std::vector<WeightView> BackpropSgdModel::weights(const State& s) const {
  return learned_.weights(layout_, s);
}

std::vector<Eigen::VectorXd> BackpropSgdModel::biases(const State& s) const {
  return learned_.biases(layout_, s);
}

void BackpropSgdModel::initial_state(State& s) const {
  std::fill(s.begin(), s.end(), 0.0);
  learned_.initial_state(layout_, s);
}

void BackpropSgdModel::rhs(const State&, State& ds, double) const {
  std::fill(ds.begin(), ds.end(), 0.0);  // learning happens in the events
}

void BackpropSgdModel::step(State& s, double t) const {
  const auto g = reference_.gradient_batch(weights(s), biases(s), drive_->at(t), drive_->target());
  const double eta = params_.eta, decay = params_.eta * params_.kappa;
  for (std::size_t k = 0; k < network_->projections.size(); ++k) {
    if (!learned_.weight_block(k)) continue;
    auto w = layout_.vector(s, *learned_.weight_block(k));
    w = (1.0 - decay) * w + eta * g.weights[k];
  }
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (!learned_.bias_block(p)) continue;
    auto b = layout_.vector(s, *learned_.bias_block(p));
    b = (1.0 - decay) * b + eta * g.biases[p];
  }
}

void BackpropSgdModel::enter_segment(State& s, double t) const {
  if (!drive_->signal().starts_presentation(drive_->segment())) return;
  // The new minibatch's forward pass at the current parameters, shown in x during its window.
  const auto settled = reference_.settle_batch(weights(s), biases(s), drive_->at(t));
  for (std::size_t p = 0; p < network_->populations.size(); ++p) {
    if (!x_.is_input(p)) layout_.examples(s, x_.block(p)) = settled.x[p];
  }
}

void BackpropSgdModel::leave_segment(State& s, double t) const {
  const InputSignal& signal = drive_->signal();
  const std::size_t k = drive_->segment();
  const bool ends_presentation = k + 1 == signal.segments() || signal.starts_presentation(k + 1);
  if (ends_presentation && drive_->has_target()) step(s, t);
}

std::vector<std::string> BackpropSgdModel::metric_names() const {
  std::vector<std::string> names{"loss"};
  if (patterns_) {
    names.emplace_back("accuracy");
    names.emplace_back("dataset_loss");
  }
  if (batch_accuracy_) names.emplace_back("accuracy");
  return names;
}

void BackpropSgdModel::metrics(const State& s, double t, std::span<double> out) const {
  // The forward pass of the current minibatch (at the parameters before its step).
  x_.gather_outputs(layout_, s, output_x_);
  std::size_t at = 0;
  out[at++] = target_loss(params_.loss, *drive_, output_x_);
  if (patterns_) {
    const InputSpec& spec = drive_->signal().spec();
    Eigen::MatrixXd inputs(drive_->at(t).rows(), static_cast<Eigen::Index>(*patterns_));
    Eigen::MatrixXd targets(output_x_.rows(), inputs.cols());
    for (std::size_t i = 0; i < *patterns_; ++i) {
      inputs.col(static_cast<Eigen::Index>(i)) = Eigen::Map<const Eigen::VectorXd>(spec.sequence[i].data(), inputs.rows());
      targets.col(static_cast<Eigen::Index>(i)) = Eigen::Map<const Eigen::VectorXd>(spec.targets[i].data(), targets.rows());
    }
    Eigen::MatrixXd outputs(targets.rows(), targets.cols());
    predict(s, inputs, outputs);
    out[at++] = static_cast<double>(batch_correct(outputs, targets, drive_->error_rows())) /
                static_cast<double>(*patterns_);
    out[at++] = batch_loss(params_.loss, outputs, targets, drive_->error_rows());
  }
  if (batch_accuracy_) {
    out[at++] = static_cast<double>(batch_correct(output_x_, drive_->target(), drive_->error_rows())) /
                static_cast<double>(output_x_.cols());
  }
}

bool BackpropSgdModel::predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
                               Eigen::Ref<Eigen::MatrixXd> outputs) const {
  outputs = reference_.output(reference_.settle_batch(weights(s), biases(s), inputs));
  return true;
}

std::vector<ParameterArray> BackpropSgdModel::parameters(const State& s) const {
  return network_parameters(*network_, weights(s), biases(s));
}

}  // namespace lf
