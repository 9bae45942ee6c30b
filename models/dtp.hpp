#pragma once
// Model "dtp": differential target propagation with iterated approximate inverses (Bengio 2020;
// DESIGN §4), on a layered network h_0 (input, clamped) … h_L (output):
//   encoders   f_l(h) = W_l σ(h) + b_l              forward  τ_h ḣ_l = −h_l + f_l(h_{l−1})
//   decoders   g_l(h) = Ω_l σ(h) + c_l (learned)    or g_l = f_l⁻¹ exactly ("exact", square W)
//   targets    τ_L = h_L − β ∂L/∂h_L (set when the target phase begins), and for l = L … 1,
//              all in parallel:  τ_r τ̇_{l−1} = g_l(τ_l) − g_l(f_l(τ_{l−1}))       (correction at
//              the decoder output), or τ_r τ̇_{l−1} = g_l(2τ_l − f_l(τ_{l−1})) − g_l(τ_l) (at the
//              decoder input: the residual τ_l − f_l(τ_{l−1}) added to the decoder's input). Both
//              have the fixed point f_l(τ_{l−1}) = τ_l and the linearisation
//              τ_r δτ̇ = −J_{g∘f} δτ: the residual decays at min Re eig(J_{g∘f})/τ_r.
//              Discrete relaxation: τ ← τ + g(τ_l) − g(f(τ)) iterated K times, converging like αᵗ
//              when α = ‖I − J_{g∘f}‖ < 1.
//   updates    DTP1  ΔW_l = (τ_l − h_l) σ(h_{l−1})ᵀ / ‖σ(h_{l−1})‖²  (moves f_l(h_{l−1}) onto τ_l)
//              DTP   DTP1 · ‖τ_L − h_L‖² / ‖τ_l − h_l‖²
//              flow  Ẇ_l = −γ W_l + η τ̇_l n_{l−1}ᵀ, n = σ(h_{l−1})/(‖σ(h_{l−1})‖² + ε) (the output
//                    target's jump at the phase start enters as its integral, η(τ_L − h_L)nᵀ)
//   decoders   Ω̇_l = η_Ω (h_{l−1} − g_l(h_l)) σ(h_l)ᵀ / (‖σ(h_l)‖² + ε)  (reconstruction, forward
//              phase; ε = 1e-3 keeps both flows finite for a network at rest, h ≈ 0)
// Phases from the schedule: "forward" (h relaxes, targets follow h, decoders learn) and
// "target" (h held, targets relax, weights flow); DTP1/DTP updates apply when a target phase ends
// (with the input of that phase, also when it ends at t_end).
// With a batch of B examples (h_l, τ_l: n_l×B) h and the targets follow these equations per
// example, and every change of the shared parameters is the batch mean of the per-example ones:
// ΔW_l = (1/B) Σ_b (τ_l − h_l)_b n_bᵀ (DTP: each example's term scaled by its own ratio), the flow
// Ẇ_l = −γ W_l + (η/B) Σ_b τ̇_{l,b} n_bᵀ, and Ω̇_l likewise.
#include <Eigen/Core>
#include <Eigen/LU>
#include <functional>
#include <optional>
#include <vector>

#include "sim/core/model.hpp"
#include "models/params.hpp"
#include "sim/core/input.hpp"
#include "sim/core/network.hpp"

namespace lf {

// The discrete iterated approximate inverse x_{t+1} = x_t + g(y) − g(f(x_t)); returns x_0 … x_K.
std::vector<Eigen::VectorXd> iterate_inverse(
    const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& f,
    const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& g, const Eigen::VectorXd& y,
    const Eigen::VectorXd& x0, int iterations);

// Exponential rate of a decaying series: −slope of the least-squares line through log r(t) over
// the later half of the samples above 1e-10·max r. NaN with fewer than 3 such samples.
double fitted_decay_rate(const std::vector<double>& t, const std::vector<double>& r);

class DtpModel final : public Model {
 public:
  DtpModel(const Network& network, const DtpParams& params, const Drive& drive);

  std::string_view type() const override { return "dtp"; }
  const StateLayout& layout() const override { return layout_; }
  void initial_state(State& s) const override;
  void rhs(const State& s, State& ds, double t) const override;
  void enter_segment(State& s, double t) const override;
  void leave_segment(State& s, double t) const override;
  std::vector<std::string> metric_names() const override;
  void metrics(const State& s, double t, std::span<double> out) const override;
  std::vector<DatasetAttribute> summary() const override;
  void finish(const State& s, double t) const override;
  void save_events(Snapshot& out) const override;
  void restore_events(const Snapshot& in) const override;
  bool predict(const State& s, const Eigen::Ref<const Eigen::MatrixXd>& inputs,
               Eigen::Ref<Eigen::MatrixXd> outputs) const override;
  std::vector<ParameterArray> parameters(const State& s) const override;

  std::size_t depth() const noexcept { return depth_; }  // L
  // Views of layer l's blocks in state s (n_l×B).
  ConstBatchView h(const State& s, std::size_t l) const;
  ConstBatchView target(const State& s, std::size_t l) const;
  Eigen::Map<const RowMatrix> weights(const State& s, std::size_t l) const;   // W_l, l >= 1
  Eigen::Map<const RowMatrix> decoder(const State& s, std::size_t l) const;   // Ω_l (learned)
  // f_l and g_l at the weights of state s, for each column of the argument.
  Eigen::MatrixXd encode(const State& s, std::size_t l, const Eigen::Ref<const Eigen::MatrixXd>& below) const;
  Eigen::MatrixXd decode(const State& s, std::size_t l, const Eigen::Ref<const Eigen::MatrixXd>& above) const;
  // J_{g_l∘f_l} at x (layer l−1 space), and J_{f_l}(x) J_{g_l}(f_l(x)) (layer l space: the
  // linearisation of the residual f_l(τ_{l−1}) − τ_l).
  Eigen::MatrixXd autoencoder_jacobian(const State& s, std::size_t l, const Eigen::VectorXd& x) const;
  Eigen::MatrixXd residual_jacobian(const State& s, std::size_t l, const Eigen::VectorXd& x) const;
  // The end-of-phase update ΔW_l (DTP1, or DTP when scaled) from the targets in s, the batch
  // mean of the examples' updates; h_0 is the input in force at t.
  RowMatrix update_direction(const State& s, std::size_t l, bool layer_scaled, double t) const;
  // Applies W_l += η ΔW_l to every layer (DTP1 or DTP as configured), input at t.
  void apply_update(State& s, double t) const;
  // Sets the targets of the target phase starting at t: τ_L = h_L − β ∂L/∂h_L, τ_l = h_l below
  // (relaxed by the ODE), or the discrete iterates.
  void begin_target_phase(State& s, double t) const;

 private:
  bool in_target_phase() const;
  std::size_t target_phase_index() const;
  Eigen::MatrixXd sigma(std::size_t population, const Eigen::Ref<const Eigen::MatrixXd>& v) const;
  Eigen::MatrixXd sigma_derivative(std::size_t population,
                                   const Eigen::Ref<const Eigen::MatrixXd>& v) const;
  Eigen::MatrixXd output_error(const State& s) const;  // −∂L/∂h_L (zero without a target)
  // The activity of layer l: the input u (n_0×B) for l = 0, else h_l.
  ConstBatchView activity(const State& s, const Eigen::MatrixXd& u, std::size_t l) const;
  void close_target_phase(const State& s) const;
  // The allocation-free forms encode/decode are built on, for the RHS (STYLE rule 1):
  // out = f_l(below) with code = σ(below); out = g_l(above) (scratch: work_.code_above, or
  // work_.shifted and work_.pre for exact decoders; `above` must not be one of those).
  void encode_into(const State& s, std::size_t l, const Eigen::Ref<const Eigen::MatrixXd>& below,
                   Eigen::MatrixXd& code, Eigen::MatrixXd& out) const;
  void decode_into(const State& s, std::size_t l, const Eigen::Ref<const Eigen::MatrixXd>& above,
                   Eigen::MatrixXd& out) const;
  // The LU factors of W_l in state s, for exact decoders (see the cache below).
  const Eigen::PartialPivLU<Eigen::MatrixXd>& weights_lu(const State& s, std::size_t l) const;

  const Network* network_;
  DtpParams params_;
  const Drive* drive_;
  std::size_t depth_ = 0;
  Eigen::Index examples_ = 1;  // B
  StateLayout layout_;
  std::vector<BlockId> h_, target_, w_;          // per layer (h_[0], w_[0] unused)
  std::vector<std::optional<BlockId>> omega_;    // learned decoders in the state
  std::vector<RowMatrix> fixed_omega_;           // decoders when not learned
  std::vector<Eigen::VectorXd> decoder_bias_;    // c_l
  // Per target phase and hidden layer: residual samples, fitted and predicted rates.
  mutable std::vector<double> phase_times_;
  mutable std::vector<std::vector<double>> phase_residuals_;
  mutable std::vector<std::vector<double>> fitted_, predicted_, closed_in_;
  mutable bool phase_open_ = false;
  // Exact decoders solve W_l p = y − b_l, twice per layer and RHS evaluation. W_l changes only
  // while the weights flow (or at end-of-phase updates): each layer's LU factors are kept with a
  // copy of the weights they factor and reused while the state holds the same bits (an O(n²)
  // comparison against an O(n³) factorisation). The model is evaluated by one thread.
  struct FactoredWeights {
    RowMatrix weights;
    Eigen::PartialPivLU<Eigen::MatrixXd> lu;
  };
  mutable std::vector<std::optional<FactoredWeights>> factored_;
  // Scratch matrices of the RHS (n×B), sized per layer at construction (index l: layer l's
  // space), and per-example scale factors.
  struct Workspace {
    std::vector<Eigen::MatrixXd> code_below, code_above, pre, f, g_first, g_second, arg, shifted,
        flow;
    Eigen::VectorXd scale;  // B
  };
  mutable Workspace work_;
};

}  // namespace lf
