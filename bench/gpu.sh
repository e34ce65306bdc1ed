#!/usr/bin/env bash
# The GPU benchmark with its GPU defaults (Qwen2.5-VL 3B and 7B shapes, random weights, built
# offline; under 8 minutes on one H200). Extra arguments go to bench/gpu.py, e.g.
#   bench/gpu.sh --peak-tflops 989 --models 3b
# Figures are printed and written to $GPU_BENCH_JSON (default gpu-bench.json).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu.py --models 3b,7b --json "${GPU_BENCH_JSON:-gpu-bench.json}" "$@"
