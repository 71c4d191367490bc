#!/usr/bin/env bash
# Benchmarks (pytest-benchmark), skipped in the normal test run. Sets up .venv with the test
# extra itself, then runs tests/benchmarks/ (or the paths/options given) with --benchmark-only.
# The metrics benchmark writes docs/benchmarks.md (override: CCBENCH_BENCH_REPORT) and its ratio
# table between the markers in README.md (override: CCBENCH_BENCH_README).
# It runs ccmetrics once on a 400x400x300 case: expect a few minutes and ~3 GB of memory.
# Usage: scripts/bench.sh [PYTEST ARGS]   e.g. scripts/bench.sh tests/benchmarks/test_bench_metrics.py
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
export CCBENCH_BENCH_REPORT="${CCBENCH_BENCH_REPORT:-$PWD/docs/benchmarks.md}"
export CCBENCH_BENCH_README="${CCBENCH_BENCH_README:-$PWD/README.md}"
if [[ $# -eq 0 ]]; then
    set -- tests/benchmarks
fi
.venv/bin/python -m pytest --benchmark-only -p no:cacheprovider -q "$@"
echo "metrics benchmark table: $CCBENCH_BENCH_REPORT"
