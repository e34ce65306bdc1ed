"""The shipped toy base model (``plugins/toy_world/model``), which must speak the spy game's
language and see its pictures before any self-play. It was built by ``vzframe model build-toy
runs/toy-look --game games.spy`` with the defaults (``WarmStart()``), then refined on the
teacher's games of seed 1 (``examples/toy_world_refine.py``), the best of seeds 1-3 on
validation games; ``docs/toy-world.md`` gives its held-out figures. The build itself is tested in tests/test_build_toy.py, the spy teacher in
tests/test_teacher_spy.py."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from plugins.toy_world.build import TOY_MODEL_DIR, WarmStart
from plugins.toy_world.world import TOY_IMAGES

STAMP = json.loads((TOY_MODEL_DIR / "vzframe-toy.json").read_text())


def test_the_shipped_model_was_made_for_the_pictures_clevr_toy_serves():
    """A run with ``images=clevr_toy`` shows the model pictures like those it learned on."""
    from plugins.clevr import ToyConfig

    assert STAMP["images"] == ToyConfig().model_dump(mode="json")
    assert all(STAMP["images"][k] == v for k, v in TOY_IMAGES.items()), (STAMP["images"], TOY_IMAGES)


def test_the_shipped_model_is_what_build_toy_builds_with_the_defaults():
    """The stamp's budget is ``WarmStart()``'s and its refinement the documented one, so the
    documented commands rebuild it."""
    assert STAMP["warm_start"] == asdict(WarmStart()) and STAMP["game"] == "games.spy"
    assert {k: STAMP["refined"][k] for k in ("from", "seed", "steps")} == {"from": "runs/toy-look", "seed": 1, "steps": 1000}
    assert list(dict.fromkeys(h["stage"] for h in STAMP["history"])) == ["look", "caption", "check-words", "check", "game", "fine"]
    assert STAMP["probe_formats"] == ["clevr.verify"]  # the check stage asks in that probe's format


@pytest.mark.slow
def test_the_shipped_base_model_sees_abstains_and_votes_on_heldout_pictures():
    """Measured with ``heldout_figures`` on 24 games the build never saw: clues are valid,
    most citizens' clues name an object really in their picture (random naming: about 0.12),
    some votes are N/A, and the votes that name a player name the spy more often than a
    random vote (1/3). Measured on 128 games: true clues 0.89 ± 0.01, N/A 0.10 ± 0.02, vote
    accuracy 0.67 ± 0.04 of all votes, 0.81 of those that name a player."""
    from plugins.toy_world.heldout import heldout_figures

    f = heldout_figures(TOY_MODEL_DIR, game="games.spy", games=24, seed=4242, teacher=False)["model"]["figures"]
    assert f["clue_valid"] > 0.9 and f["invalid"] < 0.35, f
    assert f["clue_true"] > 0.75 and 0.03 < f["na"] < 0.5, f
    assert f["acc"] / (1 - f["na"] - f["invalid"]) > 0.6, f


def test_the_shipped_model_follows_the_teachers_checked_votes():
    """``examples/toy_world_verdicts.py`` (docs/toy-world.md "Why the check stage"), on 20
    teacher votes: the model puts more weight on the right "yes"/"no" after a clue far more
    often than a guess would. Measured on 120 votes: 0.935 of verdicts, 0.793 of the "no"s."""
    import re
    import subprocess
    import sys

    script = TOY_MODEL_DIR.parents[2] / "examples" / "toy_world_verdicts.py"
    result = subprocess.run([sys.executable, str(script), str(TOY_MODEL_DIR), "--votes", "20"], capture_output=True, text=True,
                            cwd=TOY_MODEL_DIR.parents[2], timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    verdicts, nos = (float(x) for x in re.findall(r"verdicts right (\d\.\d+)", result.stdout))
    assert verdicts > 0.85 and nos > 0.5, result.stdout
