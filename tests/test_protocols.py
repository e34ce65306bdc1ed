"""The protocols declare what the runtime reads: a game's optional members (``GameExtras``,
read with ``optional``) and an engine's abilities (``SeededEngine``, ``AsyncEngine``), so
no reader guesses with ``hasattr``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_type_hints

import pytest

from games.odd_one_out.game import OddOneOutGame
from games.spy.game import SpyGame
from vzframe.models import ToyModel
from vzframe.protocols import OPTIONAL, GameExtras, PhaseScheduler, Teacher, optional
from vzframe.rollout import AsyncEngine, RolloutEngine, seeds_per_request
from vzframe.rollout.hf import HFEngine
from vzframe.rollout.vllm import VLLMEngine

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = [n for n in GameExtras.__annotations__]


def test_optional_members_are_declared_with_their_defaults():
    assert EXTRAS == [
        "default_model", "default_images", "teacher", "example_completions", "reward_fns", "collect_metrics", "outcome", "toy_model",
    ]  # fmt: skip
    assert set(OPTIONAL) == {*EXTRAS, "min_steps"}
    assert all(OPTIONAL[n] is None for n in EXTRAS if n != "reward_fns") and OPTIONAL["reward_fns"] == ()
    assert OPTIONAL["min_steps"] == 1
    assert "min_steps" in (PhaseScheduler.__doc__ or "")
    get_type_hints(GameExtras)  # every annotation names something that exists


def test_optional_reads_a_member_or_its_default():
    class Bare:
        name = "bare"

    assert [optional(Bare, n) for n in EXTRAS] == [None] * 4 + [(), None, None, None] and optional(Bare, "min_steps") == 1
    assert optional(SpyGame, "default_model") == "toy-world" and optional(SpyGame, "teacher") is SpyGame.teacher
    with pytest.raises(KeyError, match="not an optional protocol member"):
        optional(Bare, "name")  # type: ignore[call-overload]


@pytest.mark.parametrize("game_cls", [SpyGame, OddOneOutGame])
def test_shipped_games_optional_members_have_the_declared_types(game_cls):
    for name in ("default_model", "default_images"):
        assert optional(game_cls, name) is None or isinstance(optional(game_cls, name), str)
    teacher = optional(game_cls, "teacher")
    assert teacher is None or isinstance(teacher, Teacher)
    examples = optional(game_cls, "example_completions")
    assert examples is None or callable(examples)
    toy = optional(game_cls, "toy_model")
    assert toy is None or (isinstance(toy, ToyModel) and toy.name == optional(game_cls, "default_model"))


def test_the_game_protocol_section_of_the_docs_lists_the_optional_members():
    doc = (ROOT / "docs" / "plugins.md").read_text()
    section = doc.split("## The Game protocol", 1)[1].split("\n## ", 1)[0]
    marked = set(re.findall(r"^\s+(?:def )?(\w+)\b.*# optional", section, re.M))
    assert marked == set(EXTRAS), f"docs/plugins.md marks {sorted(marked)} optional; GameExtras declares {EXTRAS}"
    assert all(f"`{n}`" in section for n in EXTRAS)


def test_engine_abilities_are_protocols():
    assert issubclass(HFEngine, RolloutEngine) and issubclass(VLLMEngine, RolloutEngine)
    assert issubclass(VLLMEngine, AsyncEngine) and not issubclass(HFEngine, AsyncEngine)
    assert seeds_per_request(HFEngine) and seeds_per_request(VLLMEngine)

    class Plain:
        def generate(self, observations):
            return []

    assert not seeds_per_request(Plain()) and not isinstance(Plain(), AsyncEngine)


def test_the_runtime_asks_the_protocol_not_hasattr():
    source = (ROOT / "vzframe" / "runtime.py").read_text()
    assert "isinstance(engine, AsyncEngine)" in source and "hasattr(engine" not in source
