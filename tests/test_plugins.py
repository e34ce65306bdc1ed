"""Plugin loading, naming and registration; every hook has a test and a doc section."""

import inspect
import re
from pathlib import Path

import pytest

from vzframe import __version__, hookspecs
from vzframe.config import ConfigError
from vzframe.plugins import (
    DEFAULT_PLUGINS,
    PluginError,
    build_registry,
    check_rewards,
    installed_plugins,
    load_plugin,
    make_plugin_manager,
    plugin_infos,
    plugin_versions,
)

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "vzframe_spec"))


def test_hookspecs_found():
    assert {"register_games", "register_schedulers", "on_step_end", "collect_metrics"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_tests(hook):
    """datasette's rule: every hook has a test whose name contains the hook's name."""
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"def (test_\w+)", path.read_text()))
    assert any(hook in name for name in names if name != "test_plugin_hooks_have_tests"), f"no test named after hook {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook):
    doc = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### `{hook}\(", doc, re.M), f"docs/plugins.md has no section for hook {hook}"


def test_reference_plugins_are_entry_points():
    installed = installed_plugins()
    assert {"games.spy", "schedulers.hysteresis", "plugins.shapes"} <= set(installed)
    assert load_plugin("games.spy").__name__ == "games.spy"
    assert plugin_versions(make_plugin_manager(["games.spy"]))["games.spy"] == __version__


def test_unknown_plugin_lists_installed_ones():
    with pytest.raises(PluginError) as err:
        make_plugin_manager(["games.spi"])
    message = str(err.value)
    assert "Unknown plugin 'games.spi'" in message
    assert "games.spy" in message and "vzframe plugins" in message


def test_module_path_fallback_loads_a_plugin_without_entry_point():
    pm = make_plugin_manager(["tests.fixtures.recorder"])
    names = [name for name, _ in pm.list_name_plugin()]
    assert names == [*DEFAULT_PLUGINS, "tests.fixtures.recorder"]
    info = {i.name: i for i in plugin_infos(pm)}["tests.fixtures.recorder"]
    assert "on_step_end" in info.hooks and "register_games" not in info.hooks


def test_import_error_inside_a_plugin_is_not_reported_as_unknown(tmp_path, monkeypatch):
    (tmp_path / "needs_missing.py").write_text("import not_a_real_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="failed to import.*not_a_real_dependency_xyz"):
        make_plugin_manager(["needs_missing"])


def test_only_named_plugins_are_loaded():
    pm = make_plugin_manager(["games.spy"])
    registry = build_registry(pm)
    assert set(registry.games) == {"spy"}
    assert registry.schedulers == {}
    assert set(registry.image_sources) == {"shapes", "clevr", "clevr_toy", "charts", "folder"}  # the default image sources


def test_each_manager_is_fresh():
    a = make_plugin_manager(["games.spy"])
    b = make_plugin_manager([])
    assert a is not b
    assert "games.spy" not in [n for n, _ in b.list_name_plugin()]


def test_register_games_error_names_plugin_and_hook():
    pm = make_plugin_manager([])
    from tests.fixtures import broken_plugins

    pm.register(broken_plugins.raises_in_register, name="raises_in_register")
    with pytest.raises(PluginError, match="'raises_in_register' in hook register_games raised RuntimeError: boom at .*broken_plugins.py"):
        build_registry(pm)


def test_register_schedulers_duplicate_name_is_refused():
    pm = make_plugin_manager(["schedulers.hysteresis"])
    from tests.fixtures import broken_plugins

    pm.register(broken_plugins.duplicates_hysteresis, name="duplicates_hysteresis")
    with pytest.raises(PluginError, match="'hysteresis' registered twice.*schedulers.hysteresis.*duplicates_hysteresis"):
        build_registry(pm)


def test_register_reward_fns_and_image_sources_by_name():
    registry = build_registry(make_plugin_manager(["tests.fixtures.length_reward"]))  # reward fns for another's game
    assert {"test.short_votes", "spy.clue"} <= set(registry.reward_fns)
    assert registry.reward_fns["test.short_votes"].stage == "decision"
    assert registry.owners[("image_sources", "shapes")] == "plugins.shapes"


@pytest.mark.parametrize(
    "rewards, message",
    [
        ({7: 1.0}, "scored turn 7, which is not a turn of its stage"),
        ({0: float("nan")}, "non-finite reward nan"),
        ({0: float("inf")}, "non-finite reward inf"),
        ([1.0], "returned list"),
        ({0: "1"}, "non-finite reward '1'"),
    ],
)
def test_malformed_rewards_are_rejected(rewards, message):
    with pytest.raises(PluginError, match=re.escape(message)):
        check_rewards("bad.fn", rewards, {0, 1})


def test_valid_rewards_pass_through():
    assert check_rewards("ok", {0: 1, 1: -0.5}, {0, 1}) == {0: 1.0, 1: -0.5}


def _models_plugin(*registrations):
    """A plugin whose register_models hook calls ``register(*args)`` for each of ``registrations``."""
    from vzframe.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_models(self, register):
            for args in registrations:
                register(*args)

    return Plugin()


def test_register_models_names_models_with_their_image_source(tmp_path):
    from vzframe.models import ModelSpec, model_dir

    registry = build_registry(make_plugin_manager([]))
    assert registry.owners[("models", "tiny")] == "vzframe.models"  # the core's own default plugin
    assert registry.owners[("models", "toy-world")] == "plugins.toy_world"
    toy = registry.models["toy-world"]
    assert toy.images == "clevr_toy" and toy.path == ROOT / "plugins" / "toy_world" / "model"
    assert model_dir("toy-world", registry.models) == toy.path

    built = []
    (tmp_path / "config.json").write_text("{}")
    pm = make_plugin_manager([])
    pm.register(_models_plugin((ModelSpec("mine", lambda: built.append(1) or tmp_path, images="shapes"),)), name="mine")
    registry = build_registry(pm)
    assert built == []  # a builder runs when a run loads the model, not when it is registered
    assert model_dir("mine", registry.models) == tmp_path and built == [1]
    with pytest.raises(ConfigError, match=r"Model 'gone' is missing: .* holds no config.json"):
        ModelSpec("gone", tmp_path / "nothing").local_dir()


def test_register_models_refuses_duplicates_and_other_registrations():
    from vzframe.models import ModelSpec

    pm = make_plugin_manager([])
    pm.register(_models_plugin((ModelSpec("tiny", "/elsewhere"),)), name="also_tiny")
    with pytest.raises(PluginError, match="model 'tiny' registered twice: by plugin 'vzframe.models' and by 'also_tiny'"):
        build_registry(pm)
    pm = make_plugin_manager([])
    pm.register(_models_plugin(("mine", "/a/path")), name="two_args")
    with pytest.raises(PluginError, match=re.escape("Plugin 'two_args': register_models calls register(obj) with one object")):
        build_registry(pm)
    pm = make_plugin_manager([])
    pm.register(_models_plugin((object(),)), name="not_a_spec")
    with pytest.raises(PluginError, match=re.escape("Plugin 'not_a_spec': register_models calls register(obj) with one object")):
        build_registry(pm)


def test_every_register_hook_takes_one_named_object():
    """One signature for every kind: register(obj), named by obj.name."""
    from vzframe.hookspecs import hookimpl
    from vzframe.plugins import REGISTER_HOOKS

    for hook in REGISTER_HOOKS:
        plugin = type("Old", (), {hook: hookimpl(lambda self, register: register("named", object))})()
        pm = make_plugin_manager([])
        pm.register(plugin, name="old_style")
        with pytest.raises(PluginError, match=re.escape(f"Plugin 'old_style': {hook} calls register(obj) with one object")):
            build_registry(pm)


def test_register_models_choice_precedence(monkeypatch, tmp_path):
    """config > $VZFRAME_DEFAULT_MODEL > the game's default_model > tiny; images: config > the
    game's default_images > the model's images > clevr_toy."""
    from vzframe.models import DEFAULT_MODEL_ENV, Choice, choose

    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    registry = build_registry(make_plugin_manager(["games.spy", "games.odd_one_out"]))
    spy, odd = registry.games["spy"], registry.games["odd_one_out"]

    def pick(model, images, game=spy, name="spy"):
        return choose(model, images, name, game, registry.models, registry.image_sources)

    assert pick(None, None) == Choice("toy-world", "clevr_toy", None)  # the README's first command
    assert pick(None, None, odd, "odd_one_out") == Choice("toy-odd-one-out", "clevr_toy", None)  # chosen, not built

    class Untrained:  # a game that names no model: the tiny one, said plainly
        pass

    plain = pick(None, None, Untrained, "untrained")
    assert (plain.model, plain.images) == ("tiny", "clevr_toy")
    assert "game 'untrained' names no default model" in plain.note and "vzframe model list" in plain.note
    explicit = pick(str(tmp_path), "shapes")
    assert (explicit.model, explicit.images, explicit.note) == (str(tmp_path.resolve()), "shapes", None)
    assert pick("tiny", None, odd, "odd_one_out").note is None

    monkeypatch.setenv(DEFAULT_MODEL_ENV, "tiny")  # the test suite's switch: every default, never an explicit model
    assert pick(None, None).model == "tiny" and pick("toy-world", None).model == "toy-world"
    monkeypatch.delenv(DEFAULT_MODEL_ENV)

    class Game:
        default_model, default_images = "toy-world", "shapes"

    assert pick(None, None, Game, "g").images == "shapes"  # the game's images beat the model's
    with pytest.raises(ConfigError, match=r"model='nope' is neither a registered model \(tiny, toy-odd-one-out, toy-world\) nor a directory"):
        pick("nope", None)
    Game.default_model = "gone"
    with pytest.raises(ConfigError, match=r"model='gone' \(game 'g'.s default_model\) is neither"):
        pick(None, None, Game, "g")
    Game.default_model, Game.default_images = None, "nope"
    with pytest.raises(ConfigError, match=r"Unknown image source 'nope' \(game 'g'.s default_images\)\. Available: charts"):
        pick(None, None, Game, "g")


def test_register_models_resolve_records_the_choice(monkeypatch, capsys):
    from vzframe.config import load_config
    from vzframe.models import DEFAULT_MODEL_ENV
    from vzframe.runtime import resolve

    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    setup = resolve(load_config(None, [], ["games.odd_one_out", "schedulers.hysteresis"]))
    assert (setup.config.model, setup.config.images) == ("toy-odd-one-out", "clevr_toy")  # what config.yaml and the report show
    assert capsys.readouterr().err == ""  # its own toy model: no note, and resolving builds nothing
    setup = resolve(load_config(None, ["images=shapes"], ["games.spy", "schedulers.hysteresis"]))
    assert (setup.config.model, setup.config.images, type(setup.image_source).__name__) == ("toy-world", "shapes", "ShapesSource")
    assert capsys.readouterr().err == ""


def test_register_commands_adds_model_subcommands(capsys):
    from vzframe.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["model", "build-toy", "--help"], plugins=[])  # from plugins.toy_world, a default plugin
    assert exit_.value.code == 0 and "--caption-steps" in capsys.readouterr().out
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny " in out and "toy-world " in out and "images=clevr_toy" in out


def test_a_run_names_what_a_game_lacks_before_reading_it():
    """A game without ``Config`` and ``phases`` is one plugin error naming both, not an
    AttributeError from the first line that reads them."""
    from vzframe.config import load_config
    from vzframe.runtime import resolve

    config = load_config(None, ["model=tiny"], ["tests.fixtures.half_game", "schedulers.hysteresis"])
    with pytest.raises(PluginError, match=r"Game 'half'.* lacks Config, phases, observe, step, episode of the Game protocol"):
        resolve(config)


# ---- vzframe's own top-level packages (games, plugins, schedulers) and folders named alike ---


def _vzframe_in(cwd, *args, isolated=False):
    """``vzframe ARGS`` in a fresh Python started in ``cwd``: as ``python -m`` (the current
    directory first on sys.path) or, with ``isolated``, as the console script (it is not)."""
    import subprocess
    import sys

    code = f"import sys; from vzframe.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, *(["-I"] if isolated else []), "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_folder_named_like_an_own_package_is_reported_or_avoided(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    (tmp_path / "plugins" / "mine.py").write_text("")
    shadowed = _vzframe_in(tmp_path, "plugins")
    assert shadowed.returncode != 0
    assert f"The package 'plugins' was imported from {tmp_path.resolve() / 'plugins'}, not from vzframe's" in shadowed.stderr
    assert "Rename yours" in shadowed.stderr and "docs/plugins.md 'Package names'" in shadowed.stderr
    # the console script does not put the current directory first: vzframe's packages load first,
    # and a plugin in the look-alike folder is named as the clash it is
    listed = _vzframe_in(tmp_path, "plugins", isolated=True)
    assert listed.returncode == 0, listed.stderr
    assert "games.spy" in listed.stdout
    mine = _vzframe_in(tmp_path, "run", "games.spy", "schedulers.hysteresis", "plugins.mine", "--help-config", isolated=True)
    assert mine.returncode != 0
    assert "Unknown plugin 'plugins.mine'" in mine.stderr and "'plugins' is vzframe's own package" in mine.stderr


def test_own_packages_accepts_vzframe_s_own():
    from vzframe.plugins import OWN_PACKAGES, own_packages

    own_packages()  # the checkout's (or the wheel's) games, plugins and schedulers
    import importlib

    root = Path(importlib.import_module("vzframe").__file__).resolve().parent.parent
    assert all((root / top / "__init__.py").is_file() for top in OWN_PACKAGES)
