#pragma once
// The state of a run is one flat vector of doubles. A StateLayout names its blocks
// ("x/<population>", "lambda/<population>", "W/<projection>", …) with their shapes and places;
// models and observers reach blocks only through views obtained here, never through raw offsets.
// Block names are also the HDF5 dataset paths under /state.
#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lf {

using State = std::vector<double>;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using BlockId = std::size_t;

struct Block {
  std::string kind;              // "x", "lambda", "W", …
  std::string member;            // population or projection name
  std::vector<Eigen::Index> shape;  // {n} for vectors, {rows, cols} for matrices (row-major)
  Eigen::Index offset = 0;
  Eigen::Index size = 0;

  std::string name() const { return kind + "/" + member; }
};

class StateLayout {
 public:
  // Appends a block; kind/member must be unique. Returns its id.
  BlockId add(std::string kind, std::string member, std::vector<Eigen::Index> shape);

  const std::vector<Block>& blocks() const noexcept { return blocks_; }
  const Block& block(BlockId id) const { return blocks_.at(id); }
  // Id of the block "kind/member"; throws std::out_of_range when there is none.
  BlockId find(std::string_view kind, std::string_view member) const;
  bool contains(std::string_view kind, std::string_view member) const;
  Eigen::Index size() const noexcept { return size_; }

  Eigen::Map<Eigen::VectorXd> vector(State& s, BlockId id) const {
    const Block& b = blocks_[id];
    return {s.data() + b.offset, b.size};
  }
  Eigen::Map<const Eigen::VectorXd> vector(const State& s, BlockId id) const {
    const Block& b = blocks_[id];
    return {s.data() + b.offset, b.size};
  }
  Eigen::Map<RowMatrix> matrix(State& s, BlockId id) const;
  Eigen::Map<const RowMatrix> matrix(const State& s, BlockId id) const;

 private:
  std::vector<Block> blocks_;
  Eigen::Index size_ = 0;
};

}  // namespace lf
