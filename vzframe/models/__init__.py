"""Models vzframe ships or builds itself: the toy world's base (the embedded default of
``vzframe run``, ``toy.py``) and the tiny random model the tests use (``tiny.py``)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_ENV = "VZFRAME_DEFAULT_MODEL"


def default_model() -> Path:
    """The model a run uses when ``model`` is empty: ``$VZFRAME_DEFAULT_MODEL`` if set (the
    test suite points it at the tiny model), else the shipped toy-world base."""
    from vzframe.config import ConfigError

    if override := os.environ.get(DEFAULT_MODEL_ENV):
        return Path(override)
    from vzframe.models.toy import TOY_MODEL_DIR

    if not (TOY_MODEL_DIR / "config.json").is_file():
        raise ConfigError(
            f"The embedded toy model is missing from {TOY_MODEL_DIR} (an incomplete install?). Rebuild it with "
            f"`vzframe model build-toy {TOY_MODEL_DIR}` (about 10 minutes on a CPU), or set model=DIR."
        )
    return TOY_MODEL_DIR
