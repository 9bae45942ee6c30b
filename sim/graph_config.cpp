// Reading the [graph] table of a gnn run (README, "Graph neural networks"): the edges (a CSV
// `src,dst` file, an HDF5 file's /graph/edges, or a seeded generator), the node features, labels
// and masks, validated, with every error naming the key or the file and row (exit status 2).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "outputs/h5file.hpp"
#include "sim/config.hpp"
#include "sim/core/csv.hpp"
#include "sim/core/errors.hpp"
#include "sim/core/graph.hpp"
#include "sim/core/random.hpp"

namespace lf {
namespace {

bool is_hdf5(const std::string& path) {
  for (const char* ext : {".h5", ".hdf5"}) {
    const std::string e(ext);
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

// A table of numbers from a CSV file (rows with their line numbers) or from the HDF5 dataset
// `dataset` (row r reported as "row r" of the dataset).
struct Rows {
  std::vector<std::vector<double>> values;
  std::vector<long> lines;  // CSV: the line of each row; HDF5: empty
  std::string file;
  std::string dataset;      // HDF5 only
  std::string where(std::size_t r) const {
    return dataset.empty() ? fmt::format("{}:{}", file, lines[r])
                           : fmt::format("{}: {} row {}", file, dataset, r);
  }
};

Rows read_rows(const std::string& path, const std::string& dataset, std::size_t columns,
               const char* meaning) {
  Rows rows;
  rows.file = path;
  if (is_hdf5(path)) {
    rows.dataset = dataset;
    std::vector<unsigned long long> shape;
    const int rank = columns == 1 ? 1 : 2;
    const std::vector<double> v = read_hdf5_array(path, dataset, rank, meaning, shape);
    const std::size_t width = rank == 1 ? 1 : static_cast<std::size_t>(shape[1]);
    if (columns > 0 && width != columns) {
      throw DataFileError(path, 0, fmt::format("{}: {} has {} columns, expected {} ({})", path,
                                               dataset, width, columns, meaning));
    }
    for (std::size_t r = 0; r < static_cast<std::size_t>(shape[0]); ++r) {
      rows.values.emplace_back(v.begin() + static_cast<std::ptrdiff_t>(r * width),
                               v.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
    }
    return rows;
  }
  CsvTable t = read_csv(path, columns);
  rows.values = std::move(t.rows);
  rows.lines = std::move(t.lines);
  return rows;
}

// A non-negative integer value of row r, column c.
Eigen::Index index_value(const Rows& rows, std::size_t r, std::size_t c, const char* what) {
  const double v = rows.values[r][c];
  if (!(v >= 0.0) || v != std::floor(v) || v > 9.0e15) {
    throw DataFileError(rows.file, rows.lines.empty() ? 0 : rows.lines[r],
                        fmt::format("{}: {} {} is not a non-negative integer", rows.where(r), what, v));
  }
  return static_cast<Eigen::Index>(v);
}

// A mask file: one 0 or 1 per node.
std::vector<std::uint8_t> read_mask(const ConfigSection& s, std::string_view key, Eigen::Index nodes) {
  const std::string path = s.resolve_path(s.string(key));
  const Rows rows = read_rows(path, "/graph/" + std::string(key), 1, "one 0/1 per node");
  if (static_cast<Eigen::Index>(rows.values.size()) != nodes) {
    throw DataFileError(path, 0, fmt::format("{}: {} rows for {} nodes ({}: one 0 or 1 per node)",
                                             path, rows.values.size(), nodes, s.key_path(key)));
  }
  std::vector<std::uint8_t> mask;
  for (std::size_t r = 0; r < rows.values.size(); ++r) {
    const double v = rows.values[r][0];
    if (v != 0.0 && v != 1.0) {
      throw DataFileError(path, rows.lines.empty() ? 0 : rows.lines[r],
                          fmt::format("{}: mask value {} is not 0 or 1", rows.where(r), v));
    }
    mask.push_back(v == 1.0 ? 1 : 0);
  }
  return mask;
}

struct Edges {
  std::vector<Eigen::Index> src, dst;
  std::vector<std::string> where;  // the file and row of each listed edge
};

// Random graphs made in the project ([graph] generator), seeded by graph.seed:
//   "planted_clique" (Scarselli et al. 2009, §V-B): G(nodes, p) with a clique on `clique` random
//     nodes; label 1 for the clique's members, 0 otherwise; undirected.
//   "sbm": a stochastic block model of `blocks` equal blocks (label = block); every node draws
//     `degree` neighbours, each in its own block with probability p_in and otherwise uniformly
//     among the other blocks' nodes (no self-loops, no repeats); undirected.
// What a generator may make before the run would take minutes to start or run out of memory.
constexpr double max_generated_pairs = 2e9;   // planted clique: pairs drawn
constexpr std::int64_t max_clique_nodes = 63245;  // n(n − 1)/2 <= 2e9
constexpr double max_generated_edges = 2e7;   // undirected edges listed (with their origins)

void generate(const ConfigSection& s, const std::string& generator, Edges& edges,
              std::vector<Eigen::Index>& labels, Eigen::Index& nodes) {
  const std::int64_t n = s.integer("nodes");
  if (n < 2) s.fail("nodes", fmt::format("must be >= 2, got {}", n));
  nodes = static_cast<Eigen::Index>(n);
  const std::int64_t seed = s.integer("seed", 1);
  if (seed < 0) s.fail("seed", fmt::format("must be >= 0, got {}", seed));
  Random rng(derive_seed(static_cast<std::uint64_t>(seed), 0));
  std::set<std::pair<Eigen::Index, Eigen::Index>> seen;
  auto add = [&](Eigen::Index u, Eigen::Index v) {
    if (u == v || !seen.insert({std::min(u, v), std::max(u, v)}).second) return false;
    edges.src.push_back(u);
    edges.dst.push_back(v);
    edges.where.push_back(fmt::format("{}: generated edge {}", s.key_path("generator"), edges.src.size() - 1));
    return true;
  };
  labels.assign(static_cast<std::size_t>(nodes), 0);
  if (generator == "planted_clique") {
    const std::int64_t k = s.integer("clique");
    if (k < 2 || k > n) s.fail("clique", fmt::format("must be in [2, nodes = {}], got {}", n, k));
    const double p = s.number("p");
    if (!(p >= 0.0 && p <= 1.0)) s.fail("p", fmt::format("must be in [0, 1], got {}", p));
    // G(n, p) draws every pair: n(n − 1)/2 draws, and about p of them become edges.
    const double pairs = 0.5 * static_cast<double>(n) * static_cast<double>(n - 1);
    if (pairs > max_generated_pairs) {
      s.fail("nodes", fmt::format("a planted clique draws every pair of nodes: {} nodes make {:.3g} "
                                  "pairs, above the {:.0e} drawn in reasonable time (at most {} "
                                  "nodes; the sbm generator scales to large graphs)", n, pairs,
                                  max_generated_pairs, max_clique_nodes));
    }
    if (p * pairs > max_generated_edges) {
      s.fail("p", fmt::format("{} nodes at p = {} make about {:.3g} edges, above {:.0e}", n, p,
                              p * pairs, max_generated_edges));
    }
    const std::vector<std::size_t> order = random_permutation(static_cast<std::size_t>(n), rng);
    for (std::int64_t i = 0; i < k; ++i) labels[order[static_cast<std::size_t>(i)]] = 1;
    for (Eigen::Index u = 0; u < nodes; ++u) {
      for (Eigen::Index v = u + 1; v < nodes; ++v) {
        const bool clique = labels[static_cast<std::size_t>(u)] == 1 && labels[static_cast<std::size_t>(v)] == 1;
        if (rng.uniform01() < p || clique) add(u, v);
      }
    }
  } else {
    const std::int64_t blocks = s.integer("blocks", 2);
    if (blocks < 2 || blocks > n) s.fail("blocks", fmt::format("must be in [2, nodes = {}], got {}", n, blocks));
    const std::int64_t degree = s.integer("degree", 10);
    if (degree < 1 || 2 * degree > n / blocks) {
      s.fail("degree", fmt::format("must be in [1, nodes/blocks/2 = {}], got {}", n / blocks / 2, degree));
    }
    if (static_cast<double>(n) * static_cast<double>(degree) > max_generated_edges) {
      s.fail("degree", fmt::format("{} nodes of degree {} make {:.3g} edges, above {:.0e}", n, degree,
                                   static_cast<double>(n) * static_cast<double>(degree),
                                   max_generated_edges));
    }
    const double p_in = s.number("p_in", 0.8);
    if (!(p_in >= 0.0 && p_in <= 1.0)) s.fail("p_in", fmt::format("must be in [0, 1], got {}", p_in));
    const Eigen::Index size = nodes / blocks;  // the last block takes the remainder
    auto block_of = [&](Eigen::Index v) { return std::min<Eigen::Index>(v / size, blocks - 1); };
    auto block_start = [&](Eigen::Index b) { return b * size; };
    auto block_size = [&](Eigen::Index b) { return b == blocks - 1 ? nodes - b * size : size; };
    for (Eigen::Index v = 0; v < nodes; ++v) labels[static_cast<std::size_t>(v)] = block_of(v);
    for (Eigen::Index u = 0; u < nodes; ++u) {
      const Eigen::Index own = block_of(u);
      for (std::int64_t d = 0; d < degree;) {
        Eigen::Index v;
        if (rng.uniform01() < p_in) {
          v = block_start(own) + static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(block_size(own))));
        } else {
          const auto other = static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(nodes - block_size(own))));
          v = other < block_start(own) ? other : other + block_size(own);
        }
        if (add(u, v)) ++d;
      }
    }
  }
}

}  // namespace

std::shared_ptr<const Graph> read_graph(const ConfigSection& s) {
  auto graph = std::make_shared<Graph>();
  Graph& g = *graph;
  Edges edges;
  std::vector<Eigen::Index> generated_labels;
  const bool generated = s.has("generator");
  bool undirected = s.boolean("undirected", generated);
  const bool self_loops = s.boolean("self_loops", false);
  if (generated) {
    const std::string generator = s.choice<std::string>(
        "generator", "sbm", {{"planted_clique", "planted_clique"}, {"sbm", "sbm"}});
    if (s.has("edges")) s.fail("edges", "give either edges or generator, not both");
    if (s.has("labels")) s.fail("labels", "a generated graph has its own labels: remove labels");
    if (!undirected) s.fail("undirected", "generated graphs are undirected");
    generate(s, generator, edges, generated_labels, g.nodes);
    g.source = generator;
  } else {
    if (!s.has("edges")) s.fail("edges", "give the edges (a CSV file src,dst or an HDF5 file with /graph/edges) or a generator");
    const std::string path = s.resolve_path(s.string("edges"));
    const Rows rows = read_rows(path, "/graph/edges", 2, "the edges src,dst, [E, 2]");
    for (std::size_t r = 0; r < rows.values.size(); ++r) {
      edges.src.push_back(index_value(rows, r, 0, "source node"));
      edges.dst.push_back(index_value(rows, r, 1, "destination node"));
      edges.where.push_back(rows.where(r));
    }
    g.source = path;
  }

  // Labels fix the number of nodes.
  if (generated) {
    g.labels = generated_labels;
  } else {
    if (!s.has("labels")) s.fail("labels", "give the node labels (a CSV file with one integer per node, or an HDF5 file with /graph/labels)");
    const std::string path = s.resolve_path(s.string("labels"));
    const Rows rows = read_rows(path, "/graph/labels", 1, "one integer label per node, [N]");
    for (std::size_t r = 0; r < rows.values.size(); ++r) g.labels.push_back(index_value(rows, r, 0, "label"));
    g.nodes = static_cast<Eigen::Index>(g.labels.size());
    if (g.nodes == 0) throw DataFileError(path, 0, fmt::format("{}: no labels (one per node)", path));
    const std::int64_t classes = s.integer("classes", *std::max_element(g.labels.begin(), g.labels.end()) + 1);
    if (classes < 1) s.fail("classes", fmt::format("must be >= 1, got {}", classes));
    for (std::size_t r = 0; r < g.labels.size(); ++r) {
      if (g.labels[r] >= classes) {
        throw DataFileError(path, rows.lines.empty() ? 0 : rows.lines[r],
                            fmt::format("{}: label {} is out of range [0, {}) ({})", rows.where(r),
                                        g.labels[r], classes, s.key_path("classes")));
      }
    }
    g.classes = classes;
  }
  if (generated) g.classes = *std::max_element(g.labels.begin(), g.labels.end()) + 1;

  // Edges: nodes in range, self-loops only when allowed, no edge twice.
  std::set<std::pair<Eigen::Index, Eigen::Index>> seen;
  for (std::size_t e = 0; e < edges.src.size(); ++e) {
    const Eigen::Index u = edges.src[e], v = edges.dst[e];
    if (u >= g.nodes || v >= g.nodes) {
      throw DataFileError(generated ? std::string() : g.source, 0,
                          fmt::format("{}: edge {} -> {} names node {}, but the graph has {} nodes "
                                      "(0 … {}, one per label)", edges.where[e], u, v,
                                      std::max(u, v), g.nodes, g.nodes - 1));
    }
    if (u == v && !self_loops) {
      throw DataFileError(g.source, 0, fmt::format("{}: self-loop {} -> {} ({} = false)", edges.where[e],
                                                   u, v, s.key_path("self_loops")));
    }
    const auto key = undirected ? std::pair{std::min(u, v), std::max(u, v)} : std::pair{u, v};
    if (!seen.insert(key).second) {
      throw DataFileError(g.source, 0, fmt::format("{}: edge {} -> {} is listed twice{}", edges.where[e], u, v,
                                                   undirected ? " (undirected: either direction counts)" : ""));
    }
    g.src.push_back(u);
    g.dst.push_back(v);
    if (undirected && u != v) {
      g.src.push_back(v);
      g.dst.push_back(u);
    }
  }

  // Features: "identity" (one-hot node ids), "constant" (one feature, 1), or a file [N, p].
  const std::string features = s.string("features", "identity");
  if (features == "identity") {
    g.features = RowMatrix::Identity(g.nodes, g.nodes);
  } else if (features == "constant") {
    g.features = RowMatrix::Ones(g.nodes, 1);
  } else {
    const std::string path = s.resolve_path(features);
    const Rows rows = read_rows(path, "/graph/features", 0, "the node features, [N, p]");
    if (static_cast<Eigen::Index>(rows.values.size()) != g.nodes) {
      throw DataFileError(path, 0, fmt::format("{}: {} rows of features for {} nodes ({}: one row per node)",
                                               path, rows.values.size(), g.nodes, s.key_path("features")));
    }
    const std::size_t p = rows.values.empty() ? 0 : rows.values[0].size();
    g.features.resize(g.nodes, static_cast<Eigen::Index>(p));
    for (std::size_t r = 0; r < rows.values.size(); ++r) {
      if (rows.values[r].size() != p) {
        throw DataFileError(path, rows.lines.empty() ? 0 : rows.lines[r],
                            fmt::format("{}: {} features, but the first row has {}", rows.where(r),
                                        rows.values[r].size(), p));
      }
      for (std::size_t c = 0; c < p; ++c) g.features(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = rows.values[r][c];
    }
  }

  // Masks: files, or train_per_class random nodes of each class (split_seed), test = the rest.
  if (s.has("train_per_class")) {
    if (s.has("train_mask")) s.fail("train_mask", "give either train_mask or train_per_class, not both");
    const std::int64_t per_class = s.integer("train_per_class");
    if (per_class < 1) s.fail("train_per_class", fmt::format("must be >= 1, got {}", per_class));
    const std::int64_t split_seed = s.integer("split_seed", 1);
    if (split_seed < 0) s.fail("split_seed", fmt::format("must be >= 0, got {}", split_seed));
    Random rng(derive_seed(static_cast<std::uint64_t>(split_seed), 1));
    const std::vector<std::size_t> order = random_permutation(static_cast<std::size_t>(g.nodes), rng);
    g.train_mask.assign(static_cast<std::size_t>(g.nodes), 0);
    std::vector<std::int64_t> taken(static_cast<std::size_t>(g.classes), 0);
    for (const std::size_t v : order) {
      auto& count = taken[static_cast<std::size_t>(g.labels[v])];
      if (count < per_class) {
        g.train_mask[v] = 1;
        ++count;
      }
    }
  } else if (s.has("train_mask")) {
    g.train_mask = read_mask(s, "train_mask", g.nodes);
  } else {
    s.fail("train_mask", "give the supervised nodes: train_mask = \"file\" or train_per_class = k");
  }
  if (std::count(g.train_mask.begin(), g.train_mask.end(), 1) == 0) {
    if (s.has("train_mask")) {
      const std::string path = s.resolve_path(s.string("train_mask"));
      throw DataFileError(path, 0, fmt::format("{}: the train mask is empty (no 1 in any row): no "
                                               "node is supervised ({})", path, s.key_path("train_mask")));
    }
    s.fail(s.has("train_per_class") ? "train_per_class" : "train_mask", "the train mask is empty: no node is supervised");
  }
  if (s.has("test_mask")) {
    g.test_mask = read_mask(s, "test_mask", g.nodes);
  } else {
    g.test_mask.resize(g.train_mask.size());
    for (std::size_t v = 0; v < g.train_mask.size(); ++v) g.test_mask[v] = g.train_mask[v] == 1 ? 0 : 1;
  }
  s.finish();
  return graph;
}

}  // namespace lf
