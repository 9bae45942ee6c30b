#include "sim/core/graph.hpp"

namespace lf {

EdgeIndex index_by(const std::vector<Eigen::Index>& endpoint, Eigen::Index nodes) {
  EdgeIndex index;
  index.start.assign(static_cast<std::size_t>(nodes) + 1, 0);
  for (const Eigen::Index n : endpoint) ++index.start[static_cast<std::size_t>(n) + 1];
  for (std::size_t n = 0; n < static_cast<std::size_t>(nodes); ++n) index.start[n + 1] += index.start[n];
  index.edge.resize(endpoint.size());
  std::vector<Eigen::Index> next(index.start.begin(), index.start.end() - 1);
  for (std::size_t e = 0; e < endpoint.size(); ++e) {
    index.edge[static_cast<std::size_t>(next[static_cast<std::size_t>(endpoint[e])]++)] =
        static_cast<Eigen::Index>(e);
  }
  return index;
}

Graph permute_nodes(const Graph& graph, const std::vector<Eigen::Index>& permutation) {
  Graph out = graph;
  const auto at = [&](Eigen::Index v) { return permutation[static_cast<std::size_t>(v)]; };
  for (std::size_t e = 0; e < graph.src.size(); ++e) {
    out.src[e] = at(graph.src[e]);
    out.dst[e] = at(graph.dst[e]);
  }
  for (Eigen::Index v = 0; v < graph.nodes; ++v) {
    const auto w = static_cast<std::size_t>(at(v));
    out.features.row(at(v)) = graph.features.row(v);
    out.labels[w] = graph.labels[static_cast<std::size_t>(v)];
    out.train_mask[w] = graph.train_mask[static_cast<std::size_t>(v)];
    out.test_mask[w] = graph.test_mask[static_cast<std::size_t>(v)];
  }
  return out;
}

}  // namespace lf
