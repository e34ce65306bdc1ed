"""The toy world: a game plugin's game and teacher and an image source, resolved as a run
resolves them. What a build (``build.py``) teaches on and the held-out figures
(``heldout.py``) measure on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vzframe.config import ConfigError
from vzframe.protocols import optional

TOY_IMAGES = {"width": 168, "height": 112, "min_objects": 2, "max_objects": 4, "supersample": 1}
"""The ``clevr_toy`` pictures: 168x112 (24 image tokens), 2 to 4 objects."""

MAX_PIXELS = 224 * 168
"""Other sources keep their own defaults, but the processor shrinks each picture to at most
this many pixels (48 image tokens), so a step costs about what a ``clevr_toy`` step does."""


@dataclass(frozen=True)
class ToyWorld:
    """A game plugin's game and teacher and an image source, resolved as a run resolves them."""

    plugin: str
    """The game plugin as named (``games.spy``)."""
    game_name: str
    game_cls: type
    game_config: Any
    images: str
    """The image source's registered name."""
    source_cls: type
    source_config: Any
    pm: Any
    """The plugin manager (its ``collect_metrics`` hooks measure games beside the game's own ``collect_metrics``)."""
    max_pixels: int
    """The largest picture the toy processor keeps (bigger ones are shrunk)."""

    @property
    def teacher(self) -> Any:
        return optional(self.game_cls, "teacher")

    @property
    def describes(self) -> bool:
        return callable(getattr(self.source_cls, "describe", None))

    def source(self, seed: int) -> Any:
        """The image source seeded with ``seed``."""
        from vzframe.runtime import construct

        return construct(f"Image source {self.images!r}", self.source_cls, self.source_config, seed=seed)

    def facts(self, source: Any) -> Any:
        from vzframe.protocols import Facts

        return Facts.of(source)


def toy_world(game: str = "games.spy", images: str | None = None, *, teacher_required: bool = True) -> ToyWorld:
    """Load the game plugin ``game`` and pick the image source (``images``, else the game's
    ``default_images``, else ``clevr_toy``). With ``teacher_required``, refuse a game without a
    teacher or a source that cannot describe its pictures: a ``ConfigError`` that says what to
    do, before anything heavy."""
    from vzframe.config import validate
    from vzframe.models import FALLBACK_IMAGES
    from vzframe.plugins import build_registry, make_plugin_manager
    from vzframe.runtime import only_one

    pm = make_plugin_manager([game])
    registry = build_registry(pm)
    game_name, game_cls = only_one(registry.games, "game", "games.spy", registry)
    if teacher_required and optional(game_cls, "teacher") is None:
        raise ConfigError(
            f"game {game_name!r} has no teacher, so build-toy has no moves to learn from; "
            "see docs/plugins.md 'A teacher' to add one (a class attribute `teacher`)."
        )
    images = images or optional(game_cls, "default_images") or FALLBACK_IMAGES
    if images not in registry.image_sources:
        raise ConfigError(
            f"Unknown image source {images!r}. Available: {', '.join(sorted(registry.image_sources))}. "
            "Load the plugin that provides it, or see `vzframe plugins`."
        )
    source_cls = registry.image_sources[images]
    if teacher_required and not callable(getattr(source_cls, "describe", None)):
        able = sorted(n for n, cls in registry.image_sources.items() if callable(getattr(cls, "describe", None)))
        raise ConfigError(
            f"image source {images!r} cannot describe its pictures (it has no describe(item)), so build-toy can "
            f"write no captions and the teacher cannot see. Use --images with one that can: {', '.join(able) or 'none loaded'}; "
            "or add describe(item) to the source (docs/plugins.md)."
        )
    toy = images == "clevr_toy"
    source_config = validate(source_cls.Config, dict(TOY_IMAGES) if toy else {}, "image_source.")
    game_config = validate(game_cls.Config, {}, "game.")
    max_pixels = TOY_IMAGES["width"] * TOY_IMAGES["height"] if toy else MAX_PIXELS
    return ToyWorld(game, game_name, game_cls, game_config, images, source_cls, source_config, pm, max_pixels)
