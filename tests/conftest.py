"""Shared fixtures: one tiny model per test session, built offline into a temp cache."""

from __future__ import annotations

import os

import pytest

from vzframe.types import ImageItem


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The embedded default model, built once into a session cache that the CLI also uses."""
    cache = tmp_path_factory.mktemp("vzframe-cache")
    os.environ["VZFRAME_CACHE"] = str(cache)
    from vzframe.models.tiny import ensure_default_model

    return ensure_default_model()


@pytest.fixture(scope="session", autouse=True)
def tiny_default_model(tiny_model_dir):
    """Runs with an empty ``model`` use the tiny model here, in this process and in the CLI
    processes tests start: the machinery tests need a fast model, not the toy world's."""
    from vzframe.models import DEFAULT_MODEL_ENV

    os.environ[DEFAULT_MODEL_ENV] = str(tiny_model_dir)
    return tiny_model_dir


@pytest.fixture(scope="session")
def tiny_processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def make_image(i: int = 0, size: int = 56) -> ImageItem:
    from PIL import Image

    colors = ["red", "green", "blue", "orange", "purple", "cyan"]
    return ImageItem(id=f"test:{i}", image=Image.new("RGB", (size, size), colors[i % len(colors)]))


@pytest.fixture(scope="session")
def reference(tmp_path_factory, tiny_model_dir):
    """The 6-step reference run of tests/runs.py (checkpoints step-4 and step-6). Tests that
    change it work on a copy."""
    from tests.runs import RUN, vzframe

    out = tmp_path_factory.mktemp("ref") / "run"
    result = vzframe("run", *RUN, f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out
