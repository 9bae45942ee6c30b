#pragma once
// The state of a run is one flat vector of doubles. A StateLayout names its blocks
// ("x/<population>", "lambda/<population>", "W/<projection>", …) with their shapes and places;
// models and observers reach blocks only through views obtained here, never through raw offsets.
// Block names are also the HDF5 dataset paths under /state.
//
// The batch axis (DESIGN §3): a run simulates B examples side by side. A per-example block (a
// population's activity x, λ, h, targets) holds an n×B matrix stored column-major, one column per
// example, so that a projection acts on it as W (n_out×n_in) · X (n_in×B); with B = 1 it is
// exactly a vector of n. Shared blocks (weights, biases, decoders) have no batch axis.
#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lf {

using State = std::vector<double>;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// n×B activity of a population: column-major, one column per example, columns `stride` apart
// (the rows of a population within a taller matrix, such as the input of several populations).
using BatchView = Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>>;
using ConstBatchView = Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>>;

using BlockId = std::size_t;

// How many examples a run simulates side by side, and whether its files carry the batch axis
// (training runs: /state/x/<pop> [T, B, n], even for B = 1; other runs: [T, n]).
struct BatchShape {
  Eigen::Index examples = 1;
  bool axis = false;
};

struct Block {
  std::string kind;              // "x", "lambda", "W", …
  std::string member;            // population or projection name
  std::vector<Eigen::Index> shape;  // of one example ({n}) for per-example blocks; else {n} or
                                    // {rows, cols} (row-major)
  Eigen::Index examples = 0;     // per-example blocks: B (n×B, column-major); shared blocks: 0
  Eigen::Index offset = 0;
  Eigen::Index size = 0;

  std::string name() const { return kind + "/" + member; }
  bool per_example() const { return examples > 0; }
};

class StateLayout {
 public:
  explicit StateLayout(BatchShape batch = {}) : batch_(batch) {}

  // Appends a shared block (no batch axis); kind/member must be unique. Returns its id.
  BlockId add(std::string kind, std::string member, std::vector<Eigen::Index> shape);
  // Appends a per-example block of n values for each of the batch's examples.
  BlockId add_per_example(std::string kind, std::string member, Eigen::Index n);

  const std::vector<Block>& blocks() const noexcept { return blocks_; }
  const Block& block(BlockId id) const { return blocks_.at(id); }
  // Id of the block "kind/member"; throws std::out_of_range when there is none.
  BlockId find(std::string_view kind, std::string_view member) const;
  bool contains(std::string_view kind, std::string_view member) const;
  Eigen::Index size() const noexcept { return size_; }
  Eigen::Index examples() const noexcept { return batch_.examples; }
  const BatchShape& batch() const noexcept { return batch_; }

  // Every value of a block, flat.
  Eigen::Map<Eigen::VectorXd> vector(State& s, BlockId id) const {
    const Block& b = blocks_[id];
    return {s.data() + b.offset, b.size};
  }
  Eigen::Map<const Eigen::VectorXd> vector(const State& s, BlockId id) const {
    const Block& b = blocks_[id];
    return {s.data() + b.offset, b.size};
  }
  // A shared 2-d block (row-major).
  Eigen::Map<RowMatrix> matrix(State& s, BlockId id) const;
  Eigen::Map<const RowMatrix> matrix(const State& s, BlockId id) const;
  // A per-example block as n×B (column b: example b).
  BatchView examples(State& s, BlockId id) const;
  ConstBatchView examples(const State& s, BlockId id) const;

 private:
  BatchShape batch_;
  std::vector<Block> blocks_;
  Eigen::Index size_ = 0;
};

}  // namespace lf
