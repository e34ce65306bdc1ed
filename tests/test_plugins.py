"""Plugin loading, naming and registration; every hook has a test and a doc section."""

import inspect
import re
from pathlib import Path

import pytest

from vzframe import hookspecs
from vzframe.plugins import (
    DEFAULT_PLUGINS,
    PluginError,
    build_registry,
    check_rewards,
    installed_plugins,
    load_plugin,
    make_plugin_manager,
    plugin_infos,
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
    module, version = load_plugin("games.spy")
    assert module.__name__ == "games.spy" and version == "0.1.0"


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
    with pytest.raises(PluginError, match="'raises_in_register' raised in hook register_games: RuntimeError: boom"):
        build_registry(pm)


def test_register_schedulers_duplicate_name_is_refused():
    pm = make_plugin_manager(["schedulers.hysteresis"])
    from tests.fixtures import broken_plugins

    pm.register(broken_plugins.duplicates_hysteresis, name="duplicates_hysteresis")
    with pytest.raises(PluginError, match="'hysteresis' registered twice.*schedulers.hysteresis.*duplicates_hysteresis"):
        build_registry(pm)


def test_register_reward_fns_and_image_sources_by_name():
    registry = build_registry(make_plugin_manager(["games.spy"]))
    assert {"spy.vote", "spy.clue"} <= set(registry.reward_fns)
    assert registry.reward_fns["spy.vote"].stage == "decision"
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
