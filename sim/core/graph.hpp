#pragma once
// A graph for node-level learning (the gnn model, DESIGN §4): N nodes, directed edges u → v (an
// undirected edge is both), node features l_v ∈ ℝ^p, integer labels in [0, classes), and the
// nodes that are supervised (train mask) and scored (test mask). Plain data, as read and validated
// from [graph] by sim/graph_config.cpp; the model builds its CSR indices from it.
#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/layout.hpp"

namespace lf {

struct Graph {
  Eigen::Index nodes = 0;               // N
  std::vector<Eigen::Index> src, dst;   // edge e: src[e] → dst[e], in the order read (undirected:
                                        // every edge followed by its reverse)
  RowMatrix features;                   // N×p, row v: l_v
  std::vector<Eigen::Index> labels;     // N, each in [0, classes)
  Eigen::Index classes = 0;
  std::vector<std::uint8_t> train_mask; // N, 1: supervised (S)
  std::vector<std::uint8_t> test_mask;  // N, 1: scored as held out
  std::string source;                   // where the edges came from (file, generator), for /graph

  Eigen::Index edges() const { return static_cast<Eigen::Index>(src.size()); }
  Eigen::Index feature_size() const { return features.cols(); }
};

// CSR index of a graph by destination (incoming edges of each node, for the forward sum) or by
// source (outgoing edges, for the costate's transposed sum): the edges of node n are
// edge[start[n]] … edge[start[n+1] − 1], in increasing edge order.
struct EdgeIndex {
  std::vector<Eigen::Index> start;  // N + 1
  std::vector<Eigen::Index> edge;   // E
};
EdgeIndex index_by(const std::vector<Eigen::Index>& endpoint, Eigen::Index nodes);

// A copy of `graph` with node v renamed to permutation[v] (edges keep their order): the model on
// the permuted graph gives the permuted states (equivariance, tests/test_gnn.cpp).
Graph permute_nodes(const Graph& graph, const std::vector<Eigen::Index>& permutation);

}  // namespace lf
