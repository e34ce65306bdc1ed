"""A bridge to lmms-eval, the field's VLM benchmark harness: its own tasks (MMMU, ChartQA, ...)
or probe items written as an lmms-eval task, run on local model directories, offline, with the
score of every item back so base and trained models pair item by item.

lmms-eval runs in a subprocess with the python of an environment that has it (``python=``, else
``$VZFRAME_LMMS_PYTHON``, else this interpreter if it can import ``lmms_eval``), so vzframe's own
environment never needs it: ``bash .ci/eval-env.sh .venv-eval`` builds one, or
``pip install -e ".[eval]"`` puts it here.

::

    folder = write_task(items, Path("lmms-tasks/colours"), "vz_colours")
    runs = run_tasks({"base": base_dir, "step-40": ckpt}, ["vz_colours", "mmvp"], include_path=folder, out=Path("lmms-out"))
    runs["step-40"]["mmvp"]["scores"]    # one score per item, paired with runs["base"]["mmvp"]["scores"]

Sample logs are read with ``json.loads`` only; nothing in them is executed. A task's per-item
score is its first metric whose logged value ``item_score`` can read; ``metrics={task: name}``
picks another. lmms-eval's ``qwen2_5_vl`` loads models in bfloat16 whatever the directory says.
Runs are offline (``OFFLINE``): a benchmark's dataset must already be in the Hugging Face cache
(load it once with network: ``datasets.load_dataset(REPO)``, REPO its YAML's ``dataset_path``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = 'pip install -e ".[eval]", or build an environment with `bash .ci/eval-env.sh .venv-eval` and set VZFRAME_LMMS_PYTHON=.venv-eval/bin/python'
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
"""Appended to every question of a task from ``write_task`` (lmms-eval's short-answer prompt)."""
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CPU_MODEL_ARGS = {"device": "cpu", "device_map": "cpu", "attn_implementation": "sdpa"}
"""``model_args`` for lmms-eval's ``qwen2_5_vl`` without a GPU (its defaults are cuda and device_map auto)."""

_MARK = "# Written by vzframe.probes.lmms.write_task"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_NOT_METRICS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "token_counts", "doc_hash", "input", "input_media"}  # fmt: skip

_UTILS = '''"""lmms-eval task functions, written by vzframe.probes.lmms.write_task: pictures from images/,
exact match after normalisation (lowercase, punctuation as spaces, one space) against any answer."""

import re
import string
from pathlib import Path

from PIL import Image

IMAGES = Path(__file__).resolve().parent / "images"
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_PUNCTUATION = str.maketrans(string.punctuation, " " * len(string.punctuation))

def doc_to_visual(doc):
    with Image.open(IMAGES / doc["image"]) as picture:
        return [picture.convert("RGB")]

def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return kwargs.get("pre_prompt", "") + doc["question"] + kwargs.get("post_prompt", "")

def doc_to_target(doc):
    return doc["answers"][0]

def normalize(text):
    """The last <answer> tag's content if there is one, lowercased, punctuation as spaces."""
    tagged = _ANSWER.findall(text)
    if tagged:
        text = tagged[-1]
    return " ".join(text.lower().translate(_PUNCTUATION).split())

def process_results(doc, results):
    said = normalize(results[0]) if results else ""
    right = said != "" and said in {normalize(answer) for answer in doc["answers"]}
    return {"exact_match": 1.0 if right else 0.0}
'''


class LmmsEvalError(RuntimeError):
    """lmms-eval is missing, failed, or wrote no sample log; the message says what to do."""


def write_task(items: Iterable[Any], dest: Path, name: str, *, prompt: str = SHORT_ANSWER, max_new_tokens: int = 32) -> Path:
    """Write an lmms-eval task folder for ``items`` and return it (what ``--include_path`` takes).

    Each item is a ``vzframe.probes.ProbeItem`` or an ``(id, picture, question, answers)`` tuple;
    a picture is a PIL image or an ``ImageItem``. The folder holds ``images/*.png``,
    ``docs.jsonl`` (one line per item, in order: lmms-eval's doc ids), ``NAME.yaml`` and
    ``utils.py``. The YAML names ``docs.jsonl`` by its absolute path: write the task again rather
    than moving the folder.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"task name {name!r} must be letters, digits, '_', '.' or '-' (e.g. 'vz_colours')")
    dest = Path(dest).expanduser().resolve()
    for old in (dest / "images", dest / ".cache"):
        shutil.rmtree(old, ignore_errors=True)
    for old in dest.glob("*.yaml"):  # an earlier task of ours under another name would read the new docs
        if old.read_text(encoding="utf-8", errors="replace").startswith(_MARK):
            old.unlink()
    (dest / "images").mkdir(parents=True)
    rows, seen = [], set()
    for k, item in enumerate(items):
        item_id, picture, question, answers = _fields(item)
        if item_id in seen:
            raise ValueError(f"item id {item_id!r} appears twice; ids must be unique within a task")
        if picture is None or not answers:
            raise ValueError(f"item {item_id!r} needs a picture and at least one answer")
        seen.add(item_id)
        file = f"{k:05d}.png"
        getattr(picture, "image", picture).convert("RGB").save(dest / "images" / file)
        rows.append({"id": item_id, "image": file, "question": question, "answers": list(answers)})
    if not rows:
        raise ValueError("no items to write; a task needs at least one")
    docs = dest / "docs.jsonl"
    docs.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    (dest / "utils.py").write_text(_UTILS, encoding="utf-8")

    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)  # a JSON string is a double-quoted YAML scalar

    (dest / f"{name}.yaml").write_text(
        f"{_MARK} ({len(rows)} items).\n"
        f"task: {q(name)}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {q(str(docs))}\n"
        f"  cache_dir: {q(str(dest / '.cache'))}\ntest_split: test\noutput_type: generate_until\n"
        "doc_to_visual: !function utils.doc_to_visual\ndoc_to_text: !function utils.doc_to_text\n"
        "doc_to_target: !function utils.doc_to_target\nprocess_results: !function utils.process_results\n"
        f"generation_kwargs:\n  max_new_tokens: {int(max_new_tokens)}\n  temperature: 0\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        f'lmms_eval_specific_kwargs:\n  default:\n    pre_prompt: ""\n    post_prompt: {q(prompt)}\n'
        "metadata:\n  version: 1.0\n",
        encoding="utf-8",
    )
    return dest


def _fields(item: Any) -> tuple[str, Any, str, tuple[str, ...]]:
    if hasattr(item, "question"):
        return str(item.id), item.image, str(item.question), tuple(item.answers)
    item_id, picture, question, answers = item
    return str(item_id), picture, str(question), (answers,) if isinstance(answers, str) else tuple(answers)


def lmms_python(python: str | None = None) -> str:
    """The interpreter that runs lmms-eval: ``python``, else ``$VZFRAME_LMMS_PYTHON``, else this
    one if it can import ``lmms_eval``; an ``LmmsEvalError`` naming how to install it otherwise."""
    chosen = python or os.environ.get("VZFRAME_LMMS_PYTHON")
    if not chosen:
        if importlib.util.find_spec("lmms_eval") is None:
            raise LmmsEvalError(f"lmms-eval is not installed for {sys.executable}. {INSTALL_HINT}")
        return sys.executable
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('lmms_eval') is None)"
    try:
        found = subprocess.run([chosen, "-c", check], capture_output=True, timeout=120).returncode == 0
    except OSError as e:
        raise LmmsEvalError(f"cannot run the lmms-eval python {chosen!r} ({e}). {INSTALL_HINT}") from None
    if not found:
        raise LmmsEvalError(f"{chosen} cannot import lmms_eval. {INSTALL_HINT}")
    return chosen


def model_args_for(model_dir: Path, extra: Mapping[str, Any] | None = None) -> str:
    """lmms-eval's ``--model_args`` for a local Qwen2.5-VL directory: ``CPU_MODEL_ARGS`` (or one
    cuda device where torch sees one), the directory's own pixel limits (lmms-eval would resize
    pictures to its own: at least 256 tokens each), then ``extra``."""
    args: dict[str, Any] = {"pretrained": str(Path(model_dir).expanduser().resolve()), **CPU_MODEL_ARGS}
    if importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available():
        args.update(device="cuda", device_map="cuda")
    args.update(_pixel_limits(Path(model_dir)))
    args.update(extra or {})
    text = ",".join(f"{k}={v}" for k, v in args.items())
    if any("," in str(v) for v in args.values()):
        raise ValueError(f"lmms-eval splits model_args at commas; rename or link the path without one: {text}")
    return text


def _pixel_limits(model_dir: Path) -> dict[str, int]:
    for file in ("preprocessor_config.json", "processor_config.json"):
        try:
            config = json.loads((model_dir / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        config = config.get("image_processor", config)
        size = config.get("size") or {}
        low, high = config.get("min_pixels", size.get("shortest_edge")), config.get("max_pixels", size.get("longest_edge"))
        if isinstance(low, int) and isinstance(high, int):
            return {"min_pixels": low, "max_pixels": high}
    return {}


def run_tasks(
    models: Mapping[str, Path], tasks: list[str], *, include_path: Path | None, out: Path, python: str | None = None,
    limit: int | None = None, batch_size: int = 1, model: str = "qwen2_5_vl", model_args: Mapping[str, Any] | None = None,
    metrics: Mapping[str, str] | None = None, lmms_args: Sequence[str] = (), timeout: float | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """Run lmms-eval's ``tasks`` on each labelled model directory, one subprocess per model, and
    return ``{label: {task: {"metric", "accuracy", "scores", "doc_ids", "responses"}}}``
    (``responses``: each item's answer as scored, after lmms-eval strips ``<think>`` blocks).

    ``scores`` are per item in ``doc_id`` order, the same items for every model (``limit`` takes
    the first ``limit`` of each task), so ``scores`` pair across labels. A group task (``mmmu``)
    comes back as its subtasks. Logs and lmms-eval's own output go to ``out/LABEL/``.
    ``model_args`` adds to or overrides ``model_args_for``'s; ``lmms_args`` are more lmms-eval
    arguments (``["--gen_kwargs", "max_new_tokens=1024"]``); ``timeout`` (seconds) bounds each run.
    """
    exe = lmms_python(python)
    env = _environment()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for label, model_dir in models.items():
        if not _NAME.fullmatch(label):
            raise ValueError(f"model label {label!r} must be letters, digits, '_', '.' or '-' (e.g. 'step-40')")
        if not (Path(model_dir) / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
        dest = Path(out) / label
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "-m", "lmms_eval", "--model", model, "--model_args", model_args_for(Path(model_dir), model_args),
               "--tasks", ",".join(tasks), "--batch_size", str(batch_size), "--log_samples",
               "--output_path", str(dest.resolve()), "--verbosity", "WARNING"]  # fmt: skip
        if include_path is not None:
            cmd += ["--include_path", str(Path(include_path).resolve())]
        if limit is not None:
            cmd += ["--limit", str(int(limit))]
        cmd += list(lmms_args)
        log, start = dest / "lmms-eval.log", time.time()
        with log.open("w", encoding="utf-8") as sink:
            sink.write(" ".join(cmd) + "\n")
            sink.flush()
            done = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        if done.returncode != 0:
            raise LmmsEvalError(f"lmms-eval failed on {label!r} (exit {done.returncode}); full log: {log}\n{_tail(log)}")
        results[label] = _read_samples(dest, start, metrics or {})
        if not results[label]:  # lmms-eval exits 0 after most errors: the log says what went wrong
            raise LmmsEvalError(f"lmms-eval wrote no sample log for {label!r}; do the tasks {tasks} exist (`{exe} -m lmms_eval "
                                f"tasks list`; a local task needs include_path)? Full log: {log}\n{_tail(log)}")  # fmt: skip
        for task, res in results[label].items():
            first, ids = next((other, r[task]["doc_ids"]) for other, r in results.items() if task in r)
            if res["doc_ids"] != ids:
                raise LmmsEvalError(f"task {task!r} scored other items for {label!r} than for {first!r}, so they cannot "
                                    "be paired: was one run given another limit, or the task rewritten in between?")  # fmt: skip
    return results


def _environment() -> dict[str, str]:
    """This process's environment, offline (``OFFLINE``), with vzframe's CPU thread policy
    (``vzframe.dist.thread_policy``): on a busy host, spinning OpenMP threads made the toy
    model generate 70x slower."""
    from vzframe.dist import busy_cores, thread_policy, usable_cpus

    env = {**os.environ, **OFFLINE}
    policy = thread_policy(usable_cpus(), 1, env, busy_cores() if "OMP_WAIT_POLICY" not in env else 0.0)
    env.setdefault("OMP_NUM_THREADS", str(policy.threads))
    if policy.wait_policy:
        env.setdefault("OMP_WAIT_POLICY", policy.wait_policy)
    return env


def _tail(log: Path, lines: int = 25) -> str:
    return "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-lines:])


def _read_samples(dest: Path, since: float, metrics: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The newest sample log of each task written under ``dest`` since ``since``."""
    found: dict[str, Path] = {}
    for path in sorted(dest.rglob("*_samples_*.jsonl"), key=lambda p: p.stat().st_mtime):
        if path.stat().st_mtime >= since - 1:
            found[path.name.split("_samples_", 1)[1][: -len(".jsonl")]] = path
    out = {}
    for task, path in found.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows:
            raise LmmsEvalError(f"task {task!r} logged no items ({path}); is its test split empty, or limit 0?")
        rows.sort(key=lambda row: row["doc_id"])
        metric = metrics.get(task) or _choose_metric(rows[0], path, task)
        if metric is None:
            raise LmmsEvalError(f"task {task!r} logs no per-item score a float can be read from ({path}); "
                                f"pass metrics={{{task!r}: NAME}} naming one of {sorted(set(rows[0]) - _NOT_METRICS)}")  # fmt: skip
        read = [item_score(row.get(metric)) for row in rows]
        scores = [s for s in read if s is not None]
        if len(scores) < len(read):
            raise LmmsEvalError(f"task {task!r}: metric {metric!r} has no per-item score in some rows of {path}")
        out[task] = {
            "metric": metric,
            "accuracy": sum(scores) / len(scores),
            "scores": scores,
            "doc_ids": [row["doc_id"] for row in rows],
            "responses": [_first_text(row.get("filtered_resps")) for row in rows],
        }
    return out


def _choose_metric(row: dict[str, Any], samples: Path, task: str) -> str | None:
    """The first metric in the task's YAML (as the results file beside ``samples`` lists them),
    then any other logged field, whose value in ``row`` ``item_score`` can read."""
    try:
        stamp = samples.name.split("_samples_", 1)[0]
        config = json.loads((samples.parent / f"{stamp}_results.json").read_text(encoding="utf-8"))["configs"][task]
        order = [m["metric"] for m in config["metric_list"]]
    except (OSError, ValueError, KeyError, TypeError):
        order = []
    candidates = [m for m in order if m in row] + sorted(set(row) - _NOT_METRICS - set(order))
    return next((m for m in candidates if item_score(row[m]) is not None), None)


def item_score(value: Any) -> float | None:
    """One item's score from its logged metric value: a number, or a dict's ``score``,
    ``is_correct`` (MMVP) or ``scores`` (MathVision: the mean); None if there is none to read.

    >>> item_score(1), item_score({"is_correct": False}), item_score({"scores": [True, False]}), item_score({"id": 3})
    (1.0, 0.0, 0.5, None)
    """
    if isinstance(value, dict):
        value = next((value[key] for key in ("score", "is_correct", "scores") if key in value), None)
        if isinstance(value, list) and value and all(isinstance(x, (bool, int, float)) for x in value):
            value = sum(map(float, value)) / len(value)
    return float(value) if isinstance(value, (bool, int, float)) else None


def _first_text(value: Any) -> str:
    while isinstance(value, list) and value:  # one list level per request and per repeat
        value = value[0]
    return value if isinstance(value, str) else ""


