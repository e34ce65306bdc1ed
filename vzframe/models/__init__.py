"""Models by name: what a plugin registers (``ModelSpec``, hook ``register_models``) and how a
run picks its model and image source (``choose``).

``model=`` is a registered name (``vzframe model list``) or a local Hugging Face directory.
Left empty, the first of these decides:

1. ``$VZFRAME_DEFAULT_MODEL`` (a name or a directory; the test suite points it at the tiny model);
2. the game's ``default_model`` (``games.spy``: ``toy-world``, from ``plugins.toy_world``);
3. ``tiny`` (``FALLBACK_MODEL``): random weights, registered by this module, a default plugin.

``images=`` left empty: the game's ``default_images``, else the model's ``images``, else
``clevr_toy`` (``FALLBACK_IMAGES``). The tiny model itself is built by ``tiny.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vzframe.config import ConfigError
from vzframe.hookspecs import hookimpl
from vzframe.models.tiny import ensure_default_model

DEFAULT_MODEL_ENV = "VZFRAME_DEFAULT_MODEL"
"""Environment variable that replaces every default model (not an explicit ``model=``)."""
FALLBACK_MODEL = "tiny"
"""The model of a run that names none and whose game names none."""
FALLBACK_IMAGES = "clevr_toy"
"""The image source when neither the config, the game nor the model names one (plugins.clevr)."""


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers by name: ``register(ModelSpec("my-model", path, images="clevr"))``."""

    name: str
    """What ``model=`` says to choose it."""
    path: Path | str | Callable[[], Path | str]
    """A local Hugging Face directory, or a builder: a callable that returns one (building it
    on first use and caching it), called only when a run loads the model."""
    images: str | None = None
    """The image source the model was made for, used when neither config nor game names one."""
    description: str = ""
    """One line for ``vzframe model list``."""

    def local_dir(self) -> Path:
        """The model's directory, built first if ``path`` is a builder."""
        path = Path(self.path() if callable(self.path) else self.path).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"Model {self.name!r} is missing: {path} holds no config.json (an incomplete install?). "
                f"{self.description}".strip()
            )
        return path


@dataclass(frozen=True)
class ToyModel:
    """A game's own toy model, declared as data on the game class:
    ``toy_model: ClassVar[ToyModel | None] = ToyModel("toy-my-game")``. ``plugins.toy_world``
    registers it as model ``name``, built with ``build-toy`` by the first run that loads it."""

    name: str
    """The model's registered name; the game usually names it in ``default_model`` too."""
    images: str | None = None
    """The image source it is built on; None: the game's ``default_images``, else ``clevr_toy``."""
    settings: Mapping[str, Any] | None = None
    """The build's ``WarmStart`` fields that differ from the defaults, e.g. ``{"clue_stage": "describe"}``."""


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(ModelSpec(
        FALLBACK_MODEL, ensure_default_model,
        description="random weights, built offline in seconds: it runs the machinery but learns no game",
    ))


@dataclass(frozen=True)
class Choice:
    """A run's model and image source, as ``choose`` found them."""

    model: str
    """A registered name, or an absolute directory path."""
    images: str
    note: str | None = None
    """Something the user should know about the choice (shown once, on stderr)."""


def choose(
    config_model: str | None, config_images: str | None, game_name: str, game_cls: type,
    models: Mapping[str, ModelSpec], image_sources: Mapping[str, type],
) -> Choice:
    """The model and image source of a run (precedence in the module docstring). Nothing is
    built or loaded; an unknown name fails here, before anything heavy."""
    from vzframe.protocols import optional  # protocols imports this module (ToyModel)

    env = os.environ.get(DEFAULT_MODEL_ENV) or None
    game_model = optional(game_cls, "default_model")
    model, origin = next((v, o) for v, o in (
        (config_model, ""),
        (env, f" (from ${DEFAULT_MODEL_ENV})"),
        (game_model, f" (game {game_name!r}'s default_model)"),
        (FALLBACK_MODEL, ""),
    ) if v)
    model = _check_model(model, origin, models)
    note = None
    if model == FALLBACK_MODEL and not (config_model or env or game_model):
        note = (f"game {game_name!r} names no default model (none is trained for it yet), so this run uses "
                f"{FALLBACK_MODEL!r}: {models[FALLBACK_MODEL].description}. Give model=NAME or model=DIR; "
                "see `vzframe model list`.")

    spec = models.get(model)
    images, where = next((v, o) for v, o in (
        (config_images, ""),
        (optional(game_cls, "default_images"), f" (game {game_name!r}'s default_images)"),
        (spec.images if spec else None, f" (model {model!r}'s image source)"),
        (FALLBACK_IMAGES, ""),
    ) if v)
    if images not in image_sources:
        raise ConfigError(
            f"Unknown image source {images!r}{where}. Available: {', '.join(sorted(image_sources))}. "
            "Load the plugin that provides it, or see `vzframe plugins`."
        )
    return Choice(model, images, note)


def model_dir(model: str, models: Mapping[str, ModelSpec]) -> Path:
    """The local directory of ``model`` (a registered name, built on first use, or a path)."""
    model = _check_model(model, "", models)
    return models[model].local_dir() if model in models else Path(model)


def _check_model(model: str, origin: str, models: Mapping[str, ModelSpec]) -> str:
    """A registered name as it is; a directory as an absolute path; else a clear error."""
    if model in models:
        return model
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    raise ConfigError(
        f"model={model!r}{origin} is neither a registered model ({', '.join(sorted(models)) or 'none'}) nor a "
        "directory. Give a local Hugging Face image-text-to-text model directory or a name from `vzframe model list`."
    )
