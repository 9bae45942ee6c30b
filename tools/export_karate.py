#!/usr/bin/python3
"""Exports Zachary's karate club (W. W. Zachary, J. Anthropol. Res. 33, 1977), as shipped by
python3-networkx, into examples/karate/: edges.csv (src,dst; 78 undirected edges, each once),
labels.csv (the faction each member joined after the split: 0 = Mr. Hi, 1 = Officer).

Usage: tools/export_karate.py [OUT_DIR]     (default: examples/karate next to this script)
"""
import os
import sys

import networkx


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "karate")
    os.makedirs(out, exist_ok=True)
    g = networkx.karate_club_graph()
    with open(os.path.join(out, "edges.csv"), "w") as f:
        f.write("# Zachary's karate club, exported from networkx %s by tools/export_karate.py\n"
                % networkx.__version__)
        f.write("src,dst\n")
        for u, v in sorted((min(u, v), max(u, v)) for u, v in g.edges()):
            f.write(f"{u},{v}\n")
    with open(os.path.join(out, "labels.csv"), "w") as f:
        f.write("# faction: 0 = Mr. Hi, 1 = Officer\n")
        f.write("label\n")
        for v in sorted(g.nodes()):
            f.write("%d\n" % (0 if g.nodes[v]["club"] == "Mr. Hi" else 1))
    print(f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges written to {out}")


if __name__ == "__main__":
    main()
