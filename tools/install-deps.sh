#!/usr/bin/env bash
# Installs the Debian packages learnflow needs, only those that are missing (idempotent).
# Usage: tools/install-deps.sh        (root, or sudo available)
set -euo pipefail

build_packages=(cmake make g++ ccache pkg-config libboost-dev libeigen3-dev libhdf5-dev libfmt-dev
                doctest-dev libtomlplusplus-dev libcli11-dev zlib1g-dev pybind11-dev)
# python3-dev and python3-pybind11: the learnflow module (python/); python3-xarray is optional
# (Run.to_xarray).
python_packages=(python3 python3-dev python3-h5py python3-matplotlib python3-numpy python3-scipy
                 python3-pybind11)
# Sweeps over MPI ranks (mpirun -n N learnflow sweep ...); optional: without them learnflow is
# built without MPI and sweeps use the local cores.
mpi_packages=(openmpi-bin libopenmpi-dev)
# The built-in data sets of [data] name = "digits" (sklearn's digits.csv.gz) and "fashion-mnist".
# python3-networkx: Zachary's karate club of examples/karate (tools/export_karate.py).
data_packages=(python3-sklearn dataset-fashion-mnist python3-networkx)
# The benchmarks' peers (bench/wp_bench.py, bench/run_bench.py): NumPy on OpenBLAS (what a Python
# user has; without it NumPy runs on the reference BLAS), threadpoolctl to report which BLAS and
# kernel it uses, and SUNDIALS' CVODE (tools/build-sundials.sh builds an optimised one from the same
# Debian source: the package is compiled at -O0).
bench_packages=(libopenblas0-pthread python3-threadpoolctl libsundials-dev curl)

missing=()
for pkg in "${build_packages[@]}" "${python_packages[@]}" "${data_packages[@]}" "${mpi_packages[@]}" "${bench_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
