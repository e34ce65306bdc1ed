"""vzframe.probes.lmms: probe items as an lmms-eval task, run by lmms-eval itself on local models.

The end-to-end tests need lmms-eval, here or in the python named by VZFRAME_LMMS_PYTHON:
``bash .ci/eval-env.sh .venv-eval && VZFRAME_LMMS_PYTHON=.venv-eval/bin/python python -m pytest
tests/test_lmms_eval.py`` (from the project's environment: a package of the eval environment is
also named ``tests`` and hides this suite's helpers there).
The others check the task files and the install message without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from vzframe.probes import ProbeItem
from vzframe.probes.lmms import INSTALL_HINT, LmmsEvalError, lmms_python, model_args_for, run_tasks, write_task
from vzframe.types import ImageItem

TOY = Path(__file__).resolve().parents[1] / "plugins" / "toy_world" / "model"
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 60, 220), "yellow": (235, 215, 40)}
HAVE_LMMS = importlib.util.find_spec("lmms_eval") is not None or bool(os.environ.get("VZFRAME_LMMS_PYTHON"))
needs_lmms = pytest.mark.skipif(
    not HAVE_LMMS,
    reason="lmms-eval is not installed here: `bash .ci/eval-env.sh .venv-eval`, then run this file with "
    "VZFRAME_LMMS_PYTHON=.venv-eval/bin/python",
)


def colour_items(n: int = 12) -> list[tuple[str, Image.Image, str, tuple[str, ...]]]:
    names = list(COLOURS)
    return [
        (f"colour:{k}", Image.new("RGB", (112, 112), COLOURS[names[k % 4]]), "What colour is the picture?", (names[k % 4],))
        for k in range(n)
    ]


def load_utils(task: Path):
    spec = importlib.util.spec_from_file_location(f"lmms_task_utils_{abs(hash(task))}", task / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _TaskLoader(yaml.SafeLoader):
    """Reads lmms-eval's ``!function module.name`` tags as their text."""


_TaskLoader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


def test_write_task_writes_what_lmms_eval_reads(tmp_path):
    items = colour_items(8)
    mixed = items[:1] + [ProbeItem(i, ImageItem(f"pic:{i}", p), q, a) for i, p, q, a in items[1:3]] + items[3:]
    task = write_task(mixed, tmp_path / "task", "vz_colours")  # tuples and vzframe's probe items alike
    config = yaml.load((task / "vz_colours.yaml").read_text(), Loader=_TaskLoader)
    assert config["task"] == "vz_colours" and config["output_type"] == "generate_until"
    assert config["dataset_path"] == "json" and config["test_split"] == "test"
    docs = Path(config["dataset_kwargs"]["data_files"]["test"])
    assert docs.is_absolute() and docs == task / "docs.jsonl"
    assert config["metric_list"] == [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]
    utils = load_utils(task)
    for key in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results"):
        tag, ref = config[key]
        assert tag == "!function" and ref == f"utils.{key}" and callable(getattr(utils, key))

    rows = [json.loads(line) for line in docs.read_text().splitlines()]
    assert [r["id"] for r in rows] == [i[0] for i in items]  # file order is lmms-eval's doc_id order
    for row, (_, picture, question, answers) in zip(rows, items):
        assert row["question"] == question and row["answers"] == list(answers)
        (seen,) = utils.doc_to_visual(row)
        assert seen.size == picture.size and seen.getpixel((5, 5)) == picture.getpixel((5, 5))
    kwargs = config["lmms_eval_specific_kwargs"]["default"]
    assert utils.doc_to_text(rows[0], kwargs) == "What colour is the picture?\nAnswer the question using a single word or phrase."
    assert utils.doc_to_target(rows[0]) == "red"
    if importlib.util.find_spec("datasets") is not None:  # lmms-eval loads it so
        import datasets

        loaded = datasets.load_dataset("json", data_files={"test": str(docs)}, cache_dir=str(tmp_path / "hf"))["test"]
        assert loaded["id"] == [r["id"] for r in rows]
    write_task(items[:2], task, "vz_renamed")  # the same folder again: one task, the new one
    assert sorted(p.name for p in task.glob("*.yaml")) == ["vz_renamed.yaml"] and len(list(task.glob("images/*"))) == 2


def test_scorer_is_exact_match_after_normalisation(tmp_path):
    utils = load_utils(write_task(colour_items(1), tmp_path / "task", "vz_one"))
    doc = {"answers": ["Light blue", "cyan"]}
    score = lambda text: utils.process_results(doc, [text])["exact_match"]  # noqa: E731
    assert score("light blue") == score("  Light-Blue. ") == score("CYAN!") == 1.0
    assert score("<think>hm</think><answer> light  blue </answer>") == 1.0  # the last answer tag counts
    assert score("<answer>red</answer><answer>cyan") == 1.0  # an answer cut short by the token limit
    assert score("blue") == score("light blue sky") == score("") == score("...") == 0.0


def test_write_task_refuses_bad_input(tmp_path):
    item = colour_items(1)[0]
    with pytest.raises(ValueError, match="twice"):
        write_task([item, item], tmp_path / "a", "vz_dup")
    with pytest.raises(ValueError, match="task name"):
        write_task([item], tmp_path / "b", "no spaces")
    with pytest.raises(ValueError, match="at least one answer"):
        write_task([("x", item[1], "q?", ())], tmp_path / "c", "vz_empty")


def test_model_args_keep_the_model_directorys_pixel_limits():
    args = dict(kv.split("=", 1) for kv in model_args_for(TOY).split(","))
    assert args["pretrained"] == str(TOY) and args["device"] == args["device_map"] in ("cpu", "cuda")
    processor = json.loads((TOY / "processor_config.json").read_text())["image_processor"]["size"]
    assert (int(args["min_pixels"]), int(args["max_pixels"])) == (processor["shortest_edge"], processor["longest_edge"])
    assert dict(kv.split("=", 1) for kv in model_args_for(TOY, {"max_pixels": 4096}).split(","))["max_pixels"] == "4096"


def test_run_tasks_without_lmms_eval_says_how_to_install(tmp_path, monkeypatch):
    # An interpreter that cannot import lmms_eval: this one without its site-packages.
    bare = tmp_path / "python-without-site"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(bare.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("VZFRAME_LMMS_PYTHON", raising=False)
    for how in ({"python": str(bare)}, {"env": str(bare)}, {"python": str(tmp_path / "no-such-python")}):
        if "env" in how:
            monkeypatch.setenv("VZFRAME_LMMS_PYTHON", how["env"])
        with pytest.raises(LmmsEvalError) as err:
            run_tasks({"toy": TOY}, ["vz_colours"], include_path=None, out=tmp_path / "out", python=how.get("python"))
        assert 'pip install -e ".[eval]"' in str(err.value) and "bash .ci/eval-env.sh .venv-eval" in str(err.value)
    monkeypatch.delenv("VZFRAME_LMMS_PYTHON")
    if importlib.util.find_spec("lmms_eval") is None:  # the default: this interpreter, which lacks it
        with pytest.raises(LmmsEvalError, match=re.escape(INSTALL_HINT)):
            lmms_python()


@needs_lmms
def test_run_tasks_scores_every_item_of_two_models(tmp_path):
    from vzframe.models.tiny import build_tiny

    items = colour_items(12)
    task = write_task(items, tmp_path / "task", "vz_colours")
    tiny = build_tiny(tmp_path / "tiny", seed=3)
    runs = run_tasks({"toy": TOY, "tiny": tiny}, ["vz_colours"], include_path=task, out=tmp_path / "out")

    utils = load_utils(task)
    docs = [json.loads(line) for line in (task / "docs.jsonl").read_text().splitlines()]
    assert set(runs) == {"toy", "tiny"}
    for label, tasks in runs.items():
        result = tasks["vz_colours"]
        assert result["metric"] == "exact_match"
        assert result["doc_ids"] == list(range(len(items))), label
        assert len(result["scores"]) == len(result["responses"]) == len(items)
        assert set(result["scores"]) <= {0.0, 1.0}
        assert result["accuracy"] == pytest.approx(sum(result["scores"]) / len(items))
        # lmms-eval scored each logged answer with the task's own scorer, item by item.
        for doc, said, score in zip(docs, result["responses"], result["scores"]):
            assert utils.process_results(doc, [said])["exact_match"] == score, (label, said)
        assert (tmp_path / "out" / label / "lmms-eval.log").is_file()
    assert runs["toy"]["vz_colours"]["doc_ids"] == runs["tiny"]["vz_colours"]["doc_ids"]

    # An item whose answer is what the toy model says scores 1: the same pictures again, with
    # item j's answer set to the toy's logged answer; lmms-eval reruns the first j+1 items.
    said = runs["toy"]["vz_colours"]["responses"]
    j = next((k for k, text in enumerate(said) if utils.normalize(text)), None)
    assert j is not None, f"the toy model answered nothing scoreable: {said}"
    echo = [(i, p, q, (said[j],) if k == j else a) for k, (i, p, q, a) in enumerate(items)]
    task2 = write_task(echo, tmp_path / "task2", "vz_echo")
    again = run_tasks({"toy": TOY}, ["vz_echo"], include_path=task2, out=tmp_path / "out2", limit=j + 1)["toy"]["vz_echo"]
    assert again["doc_ids"] == list(range(j + 1))
    assert again["responses"][j] == said[j]
    assert again["scores"][j] == 1.0
    assert again["scores"][:j] == runs["toy"]["vz_colours"]["scores"][:j]


@needs_lmms
def test_vzframe_probe_runs_lmms_eval_on_a_runs_base_and_checkpoints_and_pairs_them(reference, tmp_path, capsys):
    """``vzframe probe RUN --lmms-eval TASK``: a local task written from a CLEVR probe, run by
    lmms-eval on the run's base model and each checkpoint, in the same paired table."""
    import shutil

    from vzframe.cli import main
    from vzframe.config import validate
    from vzframe.plugins import build_registry, make_plugin_manager
    from vzframe.probes import probe_seed

    registry = build_registry(make_plugin_manager())
    source_cls = registry.image_sources["clevr_toy"]
    source = source_cls(validate(source_cls.Config, {}, "image_source."), seed=probe_seed("clevr.exists"))
    task = write_task(registry.probes["clevr.exists"].items(source, 6, 0), tmp_path / "task", "vz_exists")
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    code = main(["probe", str(run), "--probes", "none", "--lmms-eval", "vz_exists", "--lmms-include", str(task), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "lmms-eval: vz_exists" in capsys.readouterr().out
    for step in (4, 6):
        entry = json.loads((run / f"probe-step-{step}.json").read_text())["probes"]["lmms:vz_exists"]
        rows = [json.loads(line) for line in (run / f"probe-step-{step}.items.jsonl").read_text().splitlines()]
        assert entry["items"] == len(rows) == 6
        base, trained = [r["base"]["score"] for r in rows], [r["trained"]["score"] for r in rows]
        assert entry["base"]["accuracy"] == pytest.approx(sum(base) / 6)
        assert entry["change"] == pytest.approx((sum(trained) - sum(base)) / 6)
        assert (run / "lmms-eval" / f"step-{step}" / "lmms-eval.log").is_file()
    assert (run / "lmms-eval" / "base" / "lmms-eval.log").is_file()
