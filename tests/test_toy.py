"""The shipped toy base model (``plugins/toy_world/model``), which must speak the spy game's
language before any self-play. It was built by an earlier ``build-toy`` (1,500 caption and
600 game steps, with the teacher of that version); ``docs/toy-world.md`` gives its held-out
figures and those of rebuilds with the current teacher. The build itself is tested in
tests/test_build_toy.py, the spy teacher in tests/test_teacher_spy.py."""

from __future__ import annotations

import json

import pytest

from plugins.toy_world.build import TOY_IMAGES, TOY_MODEL_DIR

STAMP = json.loads((TOY_MODEL_DIR / "vzframe-toy.json").read_text())


def test_the_shipped_model_was_made_for_the_pictures_clevr_toy_serves():
    """A run with ``images=clevr_toy`` shows the model pictures like those it learned on."""
    from plugins.clevr import ToyConfig

    defaults = ToyConfig().model_dump()
    assert STAMP["images"] == TOY_IMAGES
    assert all(defaults[k] == v for k, v in TOY_IMAGES.items()), (defaults, TOY_IMAGES)


@pytest.mark.slow
def test_the_shipped_base_model_speaks_the_game_on_heldout_pictures():
    """Measured with ``heldout_figures`` on 24 games the build never saw: clues are valid
    descriptions, most votes are well-formed, and the citizens find the spy more often than
    a random vote would (1 in 3). Measured on 128 games: valid 0.96, accuracy 0.57."""
    from plugins.toy_world.heldout import heldout_figures

    f = heldout_figures(TOY_MODEL_DIR, game="games.spy", games=24, seed=4242, teacher=False)["model"]["figures"]
    assert f["clue_valid"] > 0.9 and f["invalid"] < 0.35, f
    assert f["acc"] > 0.4, f
