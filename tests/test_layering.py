"""The core knows no game: no module under vzframe/ imports games/, schedulers/ or plugins/
(and no game imports a plugin or a scheduler).

Checked twice: by importing every module of vzframe in a fresh interpreter (where those
packages are importable) and looking at ``sys.modules``, and by reading every file's imports
with ``ast``, which also sees imports inside functions that no import-time check runs.
Plugins are named by string (``DEFAULT_PLUGINS``, a game's ``default_model``): that is not an
import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER = ("games", "schedulers", "plugins")
"""Top-level packages that build on the core, which the core must not import."""

IMPORT_ALL = """
import importlib, importlib.util, json, pkgutil, sys
import vzframe

skipped, names = [], []
for info in pkgutil.walk_packages(vzframe.__path__, "vzframe."):
    if info.name == "vzframe.rollout.vllm" and importlib.util.find_spec("vllm") is None:
        skipped.append(info.name)
        continue
    importlib.import_module(info.name)
    names.append(info.name)
upper = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"imported": names, "skipped": skipped, "upper": upper}))
""" % (UPPER,)


def upper_imports(source: str, filename: str = "<source>") -> list[str]:
    """``file:line module`` of every import of games/schedulers/plugins in ``source``: ``import``
    and ``from`` statements anywhere (also inside functions), and ``import_module("...")`` or
    ``__import__("...")`` of a literal name. Relative imports stay inside vzframe."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] if node.level == 0 else []
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules = [node.args[0].value]
        else:
            continue
        found += [f"{filename}:{node.lineno} {m}" for m in modules if m.split(".")[0] in UPPER]
    return found


def test_importing_every_vzframe_module_imports_no_game_scheduler_or_plugin():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"vzframe.runtime", "vzframe.cli", "vzframe.models.tiny", "vzframe.train.trainer"} <= set(report["imported"])
    assert report["upper"] == [], f"importing vzframe loaded {report['upper']}: the core must not import them"


def test_no_vzframe_source_imports_a_game_scheduler_or_plugin():
    files = sorted((ROOT / "vzframe").rglob("*.py"))
    assert len(files) > 20
    found = [hit for path in files for hit in upper_imports(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "the core imports what builds on it:\n" + "\n".join(found)


def test_no_game_imports_a_plugin_or_scheduler():
    """A game stands on the core alone: what it needs of a plugin it declares as data (its
    ``toy_model``, which ``plugins.toy_world`` registers), never by importing the plugin."""
    files = sorted((ROOT / "games").rglob("*.py"))
    assert len(files) > 5
    found = [
        hit for path in files for hit in upper_imports(path.read_text(), str(path.relative_to(ROOT)))
        if hit.split()[-1].split(".")[0] != "games"
    ]  # fmt: skip
    assert found == [], "a game imports a plugin or scheduler:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, hits",
    [
        ("import games.spy", 1),
        ("from plugins.clevr import ClevrSource", 1),
        ("def f():\n    from schedulers import hysteresis\n", 1),  # lazy imports count
        ("import importlib\nimportlib.import_module('games.spy.game')", 1),
        ("import os, plugins", 1),
        ("from . import plugins\nfrom vzframe.plugins import load_plugin\nimport gamesx", 0),
        ("DEFAULT = ('plugins.clevr',)\nimportlib.import_module(name)", 0),  # names are not imports
    ],
)
def test_the_scan_sees_every_kind_of_import(source, hits):
    assert len(upper_imports(source)) == hits
