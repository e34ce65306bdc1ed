#!/usr/bin/env bash
# Build a virtual environment with lmms-eval and vzframe, for vzframe.probes.lmms (lmms-eval's
# benchmarks on local model directories) and tests/test_lmms_eval.py:  bash .ci/eval-env.sh [DIR]
# then  VZFRAME_LMMS_PYTHON=DIR/bin/python python -m pytest tests/test_lmms_eval.py  (from the project's
# environment: vzframe runs lmms-eval in DIR's python, as `vzframe probe --lmms-eval` does).
# torch and torchvision go in first, at the pair this machine's pip has on disk; every later
# install is held to them and to the versions below (those this script resolved and was tested
# with: lmms-eval 0.7.3, transformers 5.25.0), so the install is reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${1:-.venv-eval}"
python3 -m venv "$env_dir"
py="$env_dir/bin/python"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==2.14.1 torchvision==0.29.1" | tr ' ' '\n' > "$constraints"
# lmms-eval 0.7.3 needs filelock < 4.3 (it patches filelock._api) and decord (its qwen2_5_vl imports it).
tr ' ' '\n' >> "$constraints" <<'PINS'
absl-py==2.5.1 accelerate==1.16.0 aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 annotated-doc==0.0.7
annotated-types==0.8.0 antlr4-python3-runtime==4.7.2 anyio==4.16.0 attrs==26.1.0 av==15.1.0
certifi==2026.10.19.post1 cfgv==3.5.0 chardet==6.0.0.post1 charset-normalizer==3.5.3 click==8.5.1
cloudpickle==3.1.3 colorama==0.4.6 DataProperty==1.1.1 datasets==5.2.0 decord==0.6.0 deepspeed==0.19.8
defusedxml==0.7.1 dill==0.4.1 distlib==0.4.4 einops==0.8.2 et_xmlfile==2.0.0 evaluate==0.4.6 filelock==4.2.12
frozenlist==1.8.0 fsspec==2026.9.0 ftfy==6.3.1 gitdb==4.0.12 GitPython==3.2.1 grpcio==1.85.4 h11==0.16.0
hf-xet==1.8.0 hf_transfer==0.1.9 hjson==3.1.0 httpcore==1.0.9 httpcore2==2.17.0 httpx==0.29.0 httpx2==2.17.0
huggingface_hub==2.4.0 hypothesis==6.170.27 identify==2.6.20 idna==3.21 iniconfig==2.3.1 Jinja2==3.1.6
jiter==0.19.0 joblib==1.6.0 jsonlines==4.0.0 kernels==0.19.1 latex2sympy2==1.9.1 lmms_eval==0.7.3 loguru==0.7.3
lxml==6.2.1 Markdown==3.11.4 markdown-it-py==4.3.0 MarkupSafe==3.0.4 math-verify==0.1.0 mbstrdecoder==1.1.5
mdurl==0.1.2 mpmath==1.3.0 msgpack==1.2.4 multidict==7.2.1 multiprocess==0.70.19 narwhals==2.29.0
networkx==3.6.1 ninja==1.13.2 nltk==3.10.4 nodeenv==1.12.0 numexpr==2.14.2 numpy==2.4.6 openai==3.63.0
opencv-python-headless==5.1.0.95 openpyxl==3.1.5 openskill==6.2.0 packaging==26.4 pandas==3.1.1
pathvalidate==3.3.1 peft==0.21.2 pillow==13.0.0 platformdirs==4.14.9 pluggy==1.7.0 portalocker==4.4.2
pre_commit==4.7.0 propcache==0.5.4 protobuf==6.33.6 psutil==7.2.2 py-cpuinfo==9.0.0 pyarrow==26.0.1
pybind11==3.1.0 pycocoevalcap==1.2 pycocotools==2.0.11 pydantic==2.14.4 pydantic_core==2.50.5 Pygments==2.21.0
pytablewriter==1.2.1 pytest==9.2.0 python-dateutil==2.9.0.post0 python-discovery==1.9.9 python-dotenv==1.2.4
pytz==2026.6 PyYAML==6.0.4 qwen-vl-utils==0.0.14 regex==2026.12.2 requests==2.34.2 rich==15.0.0 ruff==0.17.6
sacrebleu==2.6.0 safetensors==0.8.0 scikit-learn==1.9.1 scipy==1.17.1 sentence-transformers==6.3.0
sentencepiece==0.2.3 sentry-sdk==2.76.0 shellingham==1.5.4 six==1.17.0 smmap==5.0.3 sniffio==1.3.1
sortedcontainers==2.4.0 sympy==1.14.0 tabledata==1.3.5 tabulate==0.10.0 tcolorpy==0.1.7 tenacity==9.2.1
tensorboard==2.21.0 tensorboard-data-server==0.7.2 threadpoolctl==3.8.0 tiktoken==0.14.0 timm==1.0.31
tokenizers==0.23.3 tomlkit==0.15.3 tqdm==4.70.1 tqdm-multiprocess==0.0.11 transformers==5.25.0
transformers-stream-generator==0.0.5 truststore==0.10.5 typepy==1.3.5 typer==0.29.2 typing-inspection==0.4.5
typing_extensions==4.16.0 urllib3==2.8.0 virtualenv==21.15.14 wandb==0.25.0 wcwidth==0.9.5 Werkzeug==3.1.9
xxhash==4.1.0 yarl==1.25.1 yt-dlp==2026.11.23 zss==1.2.0 zstandard==0.25.0
PINS
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
"$py" -m pip install --quiet -c "$constraints" -e ".[dev,eval]"
"$py" -c "import importlib.metadata as m, vzframe; print('lmms-eval', m.version('lmms_eval'), 'ready in', '$env_dir')"
