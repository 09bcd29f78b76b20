#!/usr/bin/env bash
# npm's postinstall: rebuilds hnswlib-node's addon for the vector instructions of this CPU.
#
# hnswlib picks its SIMD distance kernels at compile time (__AVX__, __AVX512F__), and node-gyp
# compiles without -march, so the stock addon uses SSE only. Built for x86-64-v3 (AVX2, FMA)
# the same index answers the same queries with the same neighbours (distances within 2.4e-7),
# about 1.2x faster here (docs/benchmarks.md). QUALM_HNSW_MARCH chooses:
#   auto (default)  x86-64-v3 on an x86-64 CPU with AVX2 and FMA, else the stock build
#   <level>         any -march value: x86-64-v4 (AVX-512), native, ...
#   off             the stock build
# The addon then runs only on CPUs with those instructions: build images for the machines
# they run on (every x86-64 server since about 2015 has AVX2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/hnswlib-node ] || exit 0

march="${QUALM_HNSW_MARCH:-auto}"
if [ "$march" = auto ]; then
  march=off
  if [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then march=x86-64-v3; fi
fi

# A search on a small index, to see that the addon loads and runs on this CPU.
smoke() {
  node -e '
    const { HierarchicalNSW } = require("hnswlib-node");
    const index = new HierarchicalNSW("cosine", 32);
    index.initIndex(64);
    for (let i = 0; i < 64; i++) index.addPoint(Array.from({ length: 32 }, (_, d) => Math.sin(i * 7 + d)), i);
    const { neighbors } = index.searchKnn(Array.from({ length: 32 }, (_, d) => Math.sin(21 + d)), 1); // point 3 itself
    if (neighbors[0] !== 3) { console.error("hnswlib-node smoke search: expected 3, got " + neighbors[0]); process.exit(1); }
  '
}

if [ "$march" = off ]; then
  echo "hnswlib-node: the stock build (QUALM_HNSW_MARCH=off, or no AVX2 here)"
  exit 0
fi
echo "hnswlib-node: rebuilding with -march=$march"
if CXXFLAGS="${CXXFLAGS:-} -march=$march" npm rebuild hnswlib-node --no-audit --no-fund >/dev/null && smoke; then
  echo "hnswlib-node: built with -march=$march"
else
  echo "hnswlib-node: the -march=$march build failed or does not run here; back to the stock build" >&2
  npm rebuild hnswlib-node --no-audit --no-fund >/dev/null
  smoke
fi
