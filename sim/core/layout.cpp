#include "sim/core/layout.hpp"

#include <cassert>
#include <stdexcept>

namespace lf {

BlockId StateLayout::add(std::string kind, std::string member, std::vector<Eigen::Index> shape) {
  assert(!contains(kind, member) && "duplicate state block");
  assert(!shape.empty() && shape.size() <= 2);
  Eigen::Index n = 1;
  for (const Eigen::Index d : shape) n *= d;
  blocks_.push_back(Block{std::move(kind), std::move(member), std::move(shape), 0, size_, n});
  size_ += n;
  return blocks_.size() - 1;
}

BlockId StateLayout::add_per_example(std::string kind, std::string member, Eigen::Index n) {
  assert(!contains(kind, member) && "duplicate state block");
  const Eigen::Index b = batch_.examples;
  blocks_.push_back(Block{std::move(kind), std::move(member), {n}, b, size_, n * b});
  size_ += n * b;
  return blocks_.size() - 1;
}

BlockId StateLayout::find(std::string_view kind, std::string_view member) const {
  for (BlockId id = 0; id < blocks_.size(); ++id) {
    if (blocks_[id].kind == kind && blocks_[id].member == member) return id;
  }
  throw std::out_of_range("no state block " + std::string(kind) + "/" + std::string(member));
}

bool StateLayout::contains(std::string_view kind, std::string_view member) const {
  for (const Block& b : blocks_) {
    if (b.kind == kind && b.member == member) return true;
  }
  return false;
}

Eigen::Map<RowMatrix> StateLayout::matrix(State& s, BlockId id) const {
  const Block& b = blocks_[id];
  assert(b.shape.size() == 2 && !b.per_example());
  return {s.data() + b.offset, b.shape[0], b.shape[1]};
}

Eigen::Map<const RowMatrix> StateLayout::matrix(const State& s, BlockId id) const {
  const Block& b = blocks_[id];
  assert(b.shape.size() == 2 && !b.per_example());
  return {s.data() + b.offset, b.shape[0], b.shape[1]};
}

BatchView StateLayout::examples(State& s, BlockId id) const {
  const Block& b = blocks_[id];
  assert(b.per_example());
  return {s.data() + b.offset, b.shape[0], b.examples, Eigen::OuterStride<>(b.shape[0])};
}

ConstBatchView StateLayout::examples(const State& s, BlockId id) const {
  const Block& b = blocks_[id];
  assert(b.per_example());
  return {s.data() + b.offset, b.shape[0], b.examples, Eigen::OuterStride<>(b.shape[0])};
}

}  // namespace lf
