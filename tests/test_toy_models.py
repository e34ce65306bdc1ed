"""A game's own toy model, built on first use (``plugins.toy_world.toy_model_spec``):
``games.odd_one_out`` declares ``toy-odd-one-out`` (``toy_model``), which plugins.toy_world
registers, and names it as its default; the first run
that loads it builds it once into the cache, saying so and naming the command that does the
same; later loads reuse it; a second process waits for the first one's build. The suite itself
never builds it: ``$VZFRAME_DEFAULT_MODEL`` (tests/conftest.py) replaces every default model."""

from __future__ import annotations

import fcntl
import json
import threading

import pytest

from games.odd_one_out import OddOneOutGame
from plugins.toy_world import ensure_toy_model, toy_model_dir, toy_model_spec
from plugins.toy_world.build import WarmStart
from vzframe.plugins import PluginError, build_registry, make_plugin_manager

GAME, NAME = "games.odd_one_out", "toy-odd-one-out"
SMALL = WarmStart(look_steps=1, look_batch=2, look_pool=2, caption_steps=1, game_steps=1, batch_size=2, fine_steps=1,
                  fine_batch=2, warmup_steps=0, heldout_games=0, check_steps=0, check_word_steps=0, check_replay=0)
"""A build of seconds: the machinery, not a model that plays."""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VZFRAME_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def one_thread():
    """On a shared 2-core machine one torch thread runs a small build faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_register_models_odd_one_out_names_its_toy_model_built_on_first_use(monkeypatch, capsys):
    from vzframe.cli import main
    from vzframe.models import DEFAULT_MODEL_ENV, choose

    registry = build_registry(make_plugin_manager([GAME]))
    spec = registry.models[NAME]
    assert OddOneOutGame.default_model == NAME and registry.owners[("models", NAME)] == GAME
    assert callable(spec.path) and spec.images == "clevr_toy"  # a builder: nothing is built at registration
    assert "built on first use" in spec.description and f"build-toy DIR --game {GAME}" in spec.description

    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    choice = choose(None, None, "odd_one_out", OddOneOutGame, registry.models, registry.image_sources)
    assert (choice.model, choice.images, choice.note) == (NAME, "clevr_toy", None)  # chosen, still not built

    assert main(["model", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(NAME))
    assert GAME in line and "images=clevr_toy" in line and "built on first use" in line


def _game_plugin(game_cls: type):
    """A plugin that registers ``game_cls`` and nothing else (no register_models of its own)."""
    from vzframe.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_games(self, register):
            register(game_cls)

    return Plugin()


def test_register_models_gives_each_game_that_declares_a_toy_model_its_model():
    """A game declares its toy model as data (``toy_model``); plugins.toy_world registers it,
    listed under the game's plugin, to be built on first use with the declared settings."""
    from vzframe.models import ToyModel

    class Declares:
        name = "declares"
        toy_model = ToyModel("toy-declares", images="shapes", settings={"seed": 3, "game_steps": 2})

    class DeclaresNothing:
        name = "plain"

    pm = make_plugin_manager([])
    pm.register(_game_plugin(Declares), name="my_package.declares")
    pm.register(_game_plugin(DeclaresNothing), name="my_package.plain")
    registry = build_registry(pm)
    spec = registry.models["toy-declares"]
    assert registry.owners[("models", "toy-declares")] == "my_package.declares" and spec.images == "shapes"
    assert spec.path.args == ("my_package.declares", "toy-declares")  # a builder: nothing is built at registration
    assert spec.path.keywords == {"images": "shapes", "settings": WarmStart(seed=3, game_steps=2)}
    same = toy_model_spec("my_package.declares", "toy-declares", images="shapes", settings=WarmStart(seed=3, game_steps=2))
    assert spec.description == same.description and "--game my_package.declares --images shapes --seed 3" in spec.description
    assert set(registry.models) == {"tiny", "toy-world", "toy-declares"}

    Declares.toy_model = ToyModel("toy-declares", settings={"game_stepz": 2})
    with pytest.raises(PluginError, match="'my_package.declares': game 'declares' declares toy_model settings game_stepz, which"):
        build_registry(pm)


def test_register_models_game_keyword_names_a_registered_game():
    from vzframe.hookspecs import hookimpl
    from vzframe.models import ModelSpec

    class Plugin:
        def __init__(self, hook, game):
            self.hook, self.game = hook, game

        @hookimpl
        def register_models(self, register):
            if self.hook == "register_models":
                register(ModelSpec("for-spy", "/a/dir"), game=self.game)

        @hookimpl
        def register_probes(self, register):
            if self.hook == "register_probes":
                register(object(), game=self.game)

    pm = make_plugin_manager(["games.spy"])
    pm.register(Plugin("register_models", "spy"), name="mine")
    assert build_registry(pm).owners[("models", "for-spy")] == "games.spy"
    for hook, game in (("register_models", "nope"), ("register_probes", "spy")):
        pm = make_plugin_manager(["games.spy"])
        pm.register(Plugin(hook, game), name="mine")
        with pytest.raises(PluginError, match=rf"Plugin 'mine': {hook} calls register\(obj, game='{game}'\); only register_models"):
            build_registry(pm)


def test_the_cache_directory_changes_with_game_images_and_settings(cache):
    path = toy_model_dir(GAME, NAME, settings=SMALL)
    assert path.parent == cache / "toy-models" and path.name.startswith(f"{NAME}-")
    assert path == toy_model_dir(GAME, NAME, settings=WarmStart(**{**SMALL.__dict__}))
    others = {
        toy_model_dir(GAME, NAME), toy_model_dir(GAME, NAME, settings=WarmStart(caption_steps=1, game_steps=2)),
        toy_model_dir("games.spy", NAME, settings=SMALL), toy_model_dir(GAME, NAME, images="clevr", settings=SMALL),
    }  # fmt: skip
    assert path not in others and len(others) == 4


def test_the_cache_directory_changes_with_the_code_the_build_learns_from(cache, monkeypatch):
    """A changed teacher (or game, image source, build.py) builds anew: its source is in the key."""
    import plugins.toy_world as toy

    path = toy_model_dir(GAME, NAME, settings=SMALL)
    monkeypatch.setattr(toy, "source_digest", lambda *objects: "another teacher")
    assert toy_model_dir(GAME, NAME, settings=SMALL) != path


def test_source_digest_follows_the_files_that_define_the_objects(tmp_path, monkeypatch):
    import importlib

    from plugins.toy_world import source_digest

    module = tmp_path / "taught.py"
    module.write_text("class Teacher:\n    ADMIT_SHARE = 0.4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    taught = importlib.import_module("taught")
    first = source_digest(taught.Teacher, taught.Teacher())  # a class and an instance of it: one file
    assert first == source_digest(taught)
    module.write_text("class Teacher:\n    ADMIT_SHARE = 0.2\n")
    assert source_digest(taught.Teacher) != first


def test_the_builder_builds_once_then_reuses(cache, capsys, monkeypatch, one_thread):
    spec = toy_model_spec(GAME, NAME, images="clevr_toy", settings=SMALL)
    path = spec.local_dir()  # what a run does when it loads the model
    first = capsys.readouterr().err
    assert path == toy_model_dir(GAME, NAME, images="clevr_toy", settings=SMALL) and path.parent == cache / "toy-models"
    assert first.startswith(f"building toy model {NAME!r} for {GAME} once (") and f"into {path};" in first.splitlines()[0]
    assert f"`vzframe model build-toy DIR --game {GAME} --images clevr_toy --look-steps 1 --caption-steps 1 --game-steps 1" in first
    stamp = json.loads((path / "vzframe-toy.json").read_text())
    assert stamp["game"] == GAME and stamp["image_source"] == "clevr_toy" and stamp["warm_start"]["game_steps"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.lock"]  # no half-built leftovers

    def no_second_build(*args, **kwargs):
        raise AssertionError("built twice")

    monkeypatch.setattr("plugins.toy_world.build.build_toy", no_second_build)
    assert spec.local_dir() == path and capsys.readouterr().err == ""


def test_a_second_process_waits_for_the_first_build_instead_of_repeating_it(cache, monkeypatch):
    """flock locks conflict between open files even in one process: holding the lock here
    stands in for another process that is building."""
    path = toy_model_dir(GAME, NAME, settings=SMALL)
    monkeypatch.setattr("plugins.toy_world.build.build_toy", lambda *a, **k: pytest.fail("built twice"))
    lines: list[str] = []
    result: list = []
    path.parent.mkdir(parents=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: result.append(ensure_toy_model(GAME, NAME, settings=SMALL, log=lines.append)))
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and lines == [f"waiting for another process that is building toy model {NAME!r} into {path}"]
        path.mkdir()  # the other process's build lands (atomically) ...
        (path / "vzframe-toy.json").write_text("{}")
    waiter.join(10.0)  # ... and it lets go of the lock
    assert result == [path] and len(lines) == 1
