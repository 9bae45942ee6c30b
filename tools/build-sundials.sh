#!/usr/bin/env bash
# Builds an optimised CVODE for the work-precision benchmark's CVODE peer (bench/wp_bench.py).
#
# Why: Debian bookworm's libsundials-dev 6.4.1 is compiled without optimisation (-O0: its
# N_VWSqrSumLocal_Serial keeps every partial sum on the stack; `objdump -d` shows it), which makes
# CVODE several times slower than a SUNDIALS any user would build, and would flatter learnflow.
# This script fetches the same source from the Debian archive (the orig tarball of the package
# libsundials-dev, sundials 6.4.1+dfsg1, checked against the .dsc's SHA-256), builds CVODE and the
# vectors and solvers the peer uses as CMake's Release (-O3), no -march flags (like the package), as
# static libraries, and installs them under PREFIX. Configure learnflow with
#     cmake -S . -B build -DLEARNFLOW_SUNDIALS_PREFIX=PREFIX
# and the peer links these instead of Debian's.
#
# Usage: tools/build-sundials.sh [PREFIX]      (default: build/sundials)
set -euo pipefail

prefix=${1:-build/sundials}
prefix=$(mkdir -p "$prefix" && cd "$prefix" && pwd)
version=6.4.1+dfsg1
orig=sundials_${version}.orig.tar.xz
sha256=c61157f1d4be06c704bea40cb131eb63ba2dada161989071604d0a0959cdf04a
url=http://deb.debian.org/debian/pool/main/s/sundials/$orig

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-sundials: fetching $url"
curl -fsSL -o "$work/$orig" "$url"
echo "$sha256  $work/$orig" | sha256sum -c --quiet
tar -C "$work" -xJf "$work/$orig"
src=$(find "$work" -maxdepth 1 -type d -name 'sundials*' | head -1)

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DBUILD_SHARED_LIBS=OFF -DBUILD_STATIC_LIBS=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DBUILD_ARKODE=OFF -DBUILD_CVODES=OFF -DBUILD_IDA=OFF -DBUILD_IDAS=OFF -DBUILD_KINSOL=OFF \
  -DBUILD_CVODE=ON -DENABLE_OPENMP=ON -DEXAMPLES_ENABLE_C=OFF -DEXAMPLES_INSTALL=OFF \
  -DBUILD_FORTRAN_MODULE_INTERFACE=OFF > "$work/configure.log" 2>&1 \
  || { tail -30 "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j"$(nproc)" > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
cmake --install "$work/build" > "$work/install.log" 2>&1 || { tail -30 "$work/install.log"; exit 1; }
echo "build-sundials: installed CVODE $version (Release, -O3) in $prefix"
