"""The built-in phase schedulers: Iterative-SPO (hysteresis) and the ablations."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedulers import alternate, clue_only, decision_only, hysteresis
from schedulers.alternate import AlternateScheduler
from schedulers.clue_only import ClueOnlyScheduler
from schedulers.decision_only import DecisionOnlyScheduler
from schedulers.hysteresis import HysteresisScheduler
from tests.fixtures import broken_schedulers
from vzframe.config import ConfigError
from vzframe.plugins import build_registry, make_plugin_manager
from vzframe.protocols import PhaseScheduler
from vzframe.runtime import check_contract
from vzframe.testing import check_scheduler

PHASES = ("clue", "decision")
EASY = {"acc": 1.0, "na": 0.0}  # spy always caught: decision -> clue
HARD = {"acc": 0.0, "na": 1.0}  # spy never caught: clue -> decision


def hyst(**config) -> HysteresisScheduler:
    return HysteresisScheduler(hysteresis.Config(**config), phases=PHASES)


def feed(scheduler, stream) -> list[str]:
    """The phase returned after each update."""
    return [scheduler.update(step, m) for step, m in enumerate(stream)]


def m(acc: float, na: float) -> dict[str, float]:
    return {"acc": acc, "na": na}


# -- start phase and EMA arithmetic ---------------------------------------------------------


def test_start_phase():
    assert hyst().phase == "decision"
    assert hyst(start="clue").phase == "clue"


def test_ema_arithmetic_matches_hand_computation():
    s = hyst(k_min=1000)  # alpha 0.9; no switch can happen
    assert math.isnan(s.metrics()["acc_ema"]) and math.isnan(s.metrics()["na_ema"])
    feed(s, [m(1.0, 0.2), m(0.0, 0.4), m(0.5, 0.0)])
    # acc: 1.0 (first value) -> 0.9*1.0 + 0.1*0.0 = 0.9 -> 0.9*0.9 + 0.1*0.5 = 0.86
    # na:  0.2 -> 0.9*0.2 + 0.1*0.4 = 0.22 -> 0.9*0.22 + 0.1*0.0 = 0.198
    assert s.metrics() == pytest.approx({"acc_ema": 0.86, "na_ema": 0.198, "steps_in_phase": 3.0})


def test_ema_alpha_is_configurable():
    s = hyst(ema_alpha=0.5, k_min=1000)
    feed(s, [m(0.2, 1.0), m(1.0, 0.0)])
    assert s.metrics()["acc_ema"] == pytest.approx(0.6)
    assert s.metrics()["na_ema"] == pytest.approx(0.5)


def test_switch_waits_for_the_ema_not_the_batch_value():
    s = hyst(k_min=1)  # alpha 0.9
    phases = feed(s, [m(0.5, 0.5)] + [EASY] * 20)
    # after n easy batches acc_ema = 1 - 0.5*0.9**n and na_ema = 0.5*0.9**n: both cross
    # their thresholds first at n = 16 (0.9**15 = 0.206 > 0.2 >= 0.9**16 = 0.185)
    assert phases.index("clue") == 16


# -- the switch rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acc", "na", "expected"),
    [
        (0.95, 0.2, "decision"),  # accuracy high, but too many N/A
        (0.5, 0.0, "decision"),  # no N/A, but accuracy low
        (0.95, 0.05, "clue"),  # both hold
        (0.9, 0.1, "clue"),  # both hold at the thresholds (>=, <=)
    ],
)
def test_decision_to_clue_needs_high_accuracy_and_low_na(acc, na, expected):
    s = hyst(ema_alpha=0.0, k_min=1)
    assert s.update(0, m(acc, na)) == expected
    assert s.phase == expected


@pytest.mark.parametrize(
    ("acc", "na", "expected"),
    [
        (0.7, 0.2, "clue"),  # error 0.3 < 0.4 and na 0.2 < 0.5
        (1.0, 0.0, "clue"),  # easy batches never leave the clue phase
        (0.5, 0.0, "decision"),  # high error alone
        (0.6, 0.0, "decision"),  # error at the threshold
        (0.95, 0.6, "decision"),  # high N/A alone
        (0.95, 0.5, "decision"),  # N/A at the threshold
    ],
)
def test_clue_to_decision_on_high_error_or_high_na(acc, na, expected):
    s = hyst(ema_alpha=0.0, k_min=1, start="clue")
    assert s.update(0, m(acc, na)) == expected


def test_between_thresholds_each_phase_stays_put():
    middle = [m(0.7, 0.2)] * 30
    assert set(feed(hyst(ema_alpha=0.0, k_min=1), middle)) == {"decision"}
    assert set(feed(hyst(ema_alpha=0.0, k_min=1, start="clue"), middle)) == {"clue"}


def test_k_min_blocks_then_allows_the_switch_exactly_at_k_min():
    s = hyst(ema_alpha=0.0, k_min=5)
    assert feed(s, [EASY] * 4) == ["decision"] * 4
    assert s.metrics()["steps_in_phase"] == 4.0
    assert s.update(4, EASY) == "clue"
    assert s.metrics()["steps_in_phase"] == 0.0
    # the count restarts in the new phase
    assert feed(s, [HARD] * 5) == ["clue"] * 4 + ["decision"]


@pytest.mark.parametrize(
    ("start", "metrics", "override"),
    [
        ("decision", m(0.8, 0.0), {"tau_acc_up": 0.75}),
        ("decision", m(1.0, 0.2), {"tau_na_down": 0.25}),
        ("clue", m(0.7, 0.0), {"tau_err_up": 0.25}),
        ("clue", m(1.0, 0.3), {"tau_na_up": 0.25}),
    ],
)
def test_thresholds_are_configurable(start, metrics, override):
    base = {"ema_alpha": 0.0, "k_min": 1, "start": start}
    assert hyst(**base).update(0, metrics) == start
    assert hyst(**base, **override).update(0, metrics) != start


def test_custom_phase_names():
    s = HysteresisScheduler(
        hysteresis.Config(clue_phase="describe", decision_phase="vote", start="vote", ema_alpha=0.0, k_min=1),
        phases=("vote", "describe"),
    )
    assert s.phase == "vote"
    assert s.update(0, EASY) == "describe"
    assert s.update(1, HARD) == "vote"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [HysteresisScheduler, AlternateScheduler])
def test_missing_metrics_name_the_keys_needed(cls):
    s = make(cls)
    assert cls.requires == ("acc", "na")
    with pytest.raises(KeyError, match=r"'acc', 'na'.*missing \['na'\], got \['acc'\]"):
        s.update(0, {"acc": 0.5})
    s = hyst()
    with pytest.raises(ValueError, match="'acc'.*\\[0, 1\\]"):
        s.update(0, {"acc": float("nan"), "na": 0.0})
    with pytest.raises(ValueError, match="'na'"):
        s.update(0, {"acc": 0.5, "na": 1.5})


@pytest.mark.parametrize("cls", [HysteresisScheduler, AlternateScheduler, ClueOnlyScheduler, DecisionOnlyScheduler])
def test_phase_missing_from_the_game_is_a_clear_error(cls):
    with pytest.raises(ValueError, match=r"phase=.* is not a phase of this game\. The game's phases: vote, describe"):
        cls(cls.Config(), phases=("vote", "describe"))


@pytest.mark.parametrize(
    "bad",
    [
        {"start": "train"},
        {"clue_phase": "decision"},
        {"k_mni": 3},  # typo: extra keys are rejected
        {"ema_alpha": 1.0},
        {"tau_acc_up": 1.5},
        {"k_min": 0},
    ],
)
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        hysteresis.Config(**bad)


def test_alternate_config_rejects_zero_period():
    with pytest.raises(ValidationError):
        alternate.Config(every=0)


# -- ablations -------------------------------------------------------------------------------


def random_stream(n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [m(rng.random(), rng.random()) for _ in range(n)]


@pytest.mark.parametrize(("cls", "phase"), [(ClueOnlyScheduler, "clue"), (DecisionOnlyScheduler, "decision")])
def test_fixed_ablations_never_switch_but_report_the_emas(cls, phase):
    stream = [EASY] * 30 + [HARD] * 30 + random_stream(40)
    s = cls(cls.Config(), phases=PHASES)
    assert s.phase == phase
    assert set(feed(s, stream)) == {phase}
    reference = hyst(k_min=10**6)
    feed(reference, stream)
    assert s.metrics() == pytest.approx({**reference.metrics(), "steps_in_phase": 100.0})


@pytest.mark.parametrize(
    ("every", "start", "expected"),
    [
        (1, "decision", "dcdcdcdc"),
        (3, "decision", "dddcccdd"),
        (2, "clue", "ccddccdd"),
    ],
)
def test_alternate_switches_every_k_steps(every, start, expected):
    s = AlternateScheduler(alternate.Config(every=every, start=start), phases=PHASES)
    trained = [s.phase] + feed(s, random_stream(len(expected) - 1))
    assert "".join(p[0] for p in trained) == expected
    assert not math.isnan(s.metrics()["acc_ema"])


# -- state round-trip ------------------------------------------------------------------------


def switching_stream() -> list[dict[str, float]]:
    """Noisy easy and hard stretches: the hysteresis scheduler switches several times."""
    rng = random.Random(1)
    stream = []
    for block in range(8):
        centre = (0.97, 0.02) if block % 2 == 0 else (0.3, 0.6)
        stream += [m(*(min(1.0, max(0.0, c + rng.uniform(-0.05, 0.05))) for c in centre)) for _ in range(25)]
    return stream


def make(cls, **config):
    return cls(cls.Config(**config), phases=PHASES)


@pytest.mark.parametrize(
    ("cls", "config"),
    [(HysteresisScheduler, {"k_min": 4}), (AlternateScheduler, {"every": 3}), (ClueOnlyScheduler, {})],
)
def test_state_dict_round_trip_continues_identically(cls, config):
    stream = switching_stream()
    whole = make(cls, **config)
    expected = feed(whole, stream)
    if cls is HysteresisScheduler:
        assert sum(a != b for a, b in zip(expected, expected[1:])) >= 4
    for cut in range(0, len(stream), 7):
        first = make(cls, **config)
        head = feed(first, stream[:cut])
        restored = make(cls, **config)
        restored.load_state_dict(json.loads(json.dumps(first.state_dict())))
        assert restored.phase == first.phase
        assert restored.metrics() == first.metrics() or cut == 0  # NaN != NaN before any update
        tail = [restored.update(cut + i, x) for i, x in enumerate(stream[cut:])]
        assert head + tail == expected, f"diverged after restoring at step {cut}"
    assert restored.metrics() == whole.metrics()


def test_state_dict_keeps_steps_in_phase():
    s = hyst(ema_alpha=0.0, k_min=5)
    feed(s, [EASY] * 3)
    restored = hyst(ema_alpha=0.0, k_min=5)
    restored.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert feed(restored, [EASY] * 2) == ["decision", "clue"]


def test_load_state_dict_rejects_a_phase_the_game_lacks():
    s = hyst()
    state = {**s.state_dict(), "phase": "judge"}
    with pytest.raises(ValueError, match="'judge' is not a phase of this game"):
        s.load_state_dict(state)


# -- declared requirements and the conformance kit ------------------------------------------


@pytest.mark.parametrize(("cls", "phase"), [(ClueOnlyScheduler, "clue"), (DecisionOnlyScheduler, "decision")])
def test_fixed_phase_ablations_require_nothing_and_log_the_rates_they_are_given(cls, phase):
    assert cls.requires == ()
    s = make(cls, ema_alpha=0.5)
    assert feed(s, [{}, {"reward_spy": 0.3}]) == [phase, phase]
    assert math.isnan(s.metrics()["acc_ema"]) and math.isnan(s.metrics()["na_ema"])
    feed(s, [{"acc": 0.2}, {"acc": 1.0, "na": 0.4}, {"acc": 1.5, "na": float("nan")}])  # not rates: skipped
    assert s.metrics() == pytest.approx({"acc_ema": 0.6, "na_ema": 0.4, "steps_in_phase": 5.0})
    restored = make(cls, ema_alpha=0.5)
    restored.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert restored.metrics() == s.metrics()


GAMES = [("games.spy", "SpyGame"), ("games.odd_one_out", "OddOneOutGame")]


@pytest.mark.parametrize("cls", [HysteresisScheduler, AlternateScheduler, ClueOnlyScheduler, DecisionOnlyScheduler])
@pytest.mark.parametrize(("module", "game"), GAMES)
def test_built_in_schedulers_pass_check_scheduler(cls, module, game):
    import importlib

    game_cls = getattr(importlib.import_module(module), game)
    report = check_scheduler(cls, phases=tuple(game_cls.phases), metrics=game_cls.metrics)
    assert report.updates == report.sequences * 100 and report.checked_across_processes
    if cls in (HysteresisScheduler, AlternateScheduler):
        assert set(report.phases_chosen) == {"clue", "decision"} and report.switches > 0


@pytest.mark.parametrize(
    ("cls", "config"),
    [(HysteresisScheduler, {"k_min": 1, "ema_alpha": 0.0, "start": "clue"}), (AlternateScheduler, {"every": 4})],
)
def test_check_scheduler_with_other_configs(cls, config):
    assert check_scheduler(cls, config).switches > 10


def test_clue_only_passes_check_scheduler_for_a_game_without_acc_and_na():
    assert check_scheduler(ClueOnlyScheduler, metrics=()).phases_chosen == {"clue": 2000}


def test_built_in_schedulers_declare_their_min_steps():
    assert make(HysteresisScheduler, k_min=4).min_steps == 4 and make(AlternateScheduler, every=3).min_steps == 3
    assert make(ClueOnlyScheduler).min_steps == 1


BROKEN = [
    ("OverwritesMetrics", r"OverwritesMetrics sequence 0 step 1: update\(\) changed the metrics it was given \('acc': 0\.\d+ -> 0\.\d+\); treat them as read-only \(copy with dict\(metrics\)"),
    ("LeavesEarly", r"LeavesEarly sequence 0: trained 'decision' for 2 step\(s\) \(steps 0 to 1\), then update\(\) at step 1 chose 'clue', but LeavesEarly.min_steps is 3"),
    ("MinStepsZero", r"MinStepsZero.min_steps is 0; it must be a positive int"),
    ("SeededFromHash", r"found 1 problem\(s\):\n- SeededFromHash sequence \d+: another process \(another rank, or a resumed run\) fed the same metrics chose '\w+' at step \d+ where this one chose '\w+'; seed randomness from the config or the step, never from hash\(\) of a str or the process id$"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "message"), BROKEN, ids=[n for n, _ in BROKEN])
def test_check_scheduler_catches(name, message):
    with pytest.raises(AssertionError, match=message) as info:
        check_scheduler(getattr(broken_schedulers, name))
    assert str(info.value).startswith(f"check_scheduler({name}) found ")


def test_check_scheduler_warns_when_another_process_cannot_import_the_scheduler():
    class Local(broken_schedulers.GoodScheduler):
        pass

    with pytest.warns(
        UserWarning, match=r"skipped its cross-process check: .*<locals>\.Local is defined inside a function.*at module level"
    ):
        report = check_scheduler(Local, sequences=2)
    assert not report.checked_across_processes
    assert check_scheduler(broken_schedulers.GoodScheduler, sequences=2).checked_across_processes


def test_the_runtime_gives_the_scheduler_a_copy_of_the_metrics_it_logs():
    """The loop logs the step's metrics after ``scheduler.update``: it must pass a copy, so a
    scheduler that changes the dict it is given cannot change the log."""
    import ast

    import vzframe.runtime

    tree = ast.parse(Path(vzframe.runtime.__file__).read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
        and ast.unparse(node.func.value).endswith("scheduler")
    ]  # fmt: skip
    assert [ast.unparse(c.args[1]) for c in calls] == ["dict(game_metrics)"]


class WatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    metric: str = "acc"
    """The rate to watch; the game must report it."""
    patience: int = Field(2, ge=1)
    """Fewest steps in a phase."""


class WatchScheduler:
    """Clue while the configured rate is at least 0.5, else decision: ``requires`` follows the config."""

    name = "watch"
    Config = WatchConfig

    def __init__(self, config: WatchConfig, *, phases: tuple[str, ...]) -> None:
        if not {"clue", "decision"} <= set(phases):
            raise ValueError(f"watch needs the phases 'clue' and 'decision'; this game has {phases}")
        self.config, self.requires, self.min_steps = config, (config.metric,), config.patience
        self.phase, self.steps = "decision", 0

    def update(self, step: int, metrics: Mapping[str, float]) -> str:
        if self.config.metric not in metrics:
            raise KeyError(f"watch needs the metric {self.config.metric!r} (scheduler.metric); got {sorted(metrics)}")
        self.steps += 1
        new = ("clue" if metrics[self.config.metric] >= 0.5 else "decision") if self.steps >= self.config.patience else self.phase
        if new != self.phase:
            self.phase, self.steps = new, 0
        return self.phase

    def metrics(self) -> dict[str, float]:
        return {"steps": float(self.steps)}

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.phase, self.steps = state["phase"], int(state["steps"])


def test_requires_set_per_instance_from_the_config():
    from games.spy import SpyGame

    phases = tuple(SpyGame.phases)
    report = check_scheduler(WatchScheduler, {"metric": "na"}, phases=phases, metrics=SpyGame.metrics)
    assert report.switches > 0 and report.checked_across_processes
    with pytest.raises(AssertionError, match=r"requires metrics \['vote_rate'\] that the game does not report"):
        check_scheduler(WatchScheduler, {"metric": "vote_rate"}, phases=phases, metrics=SpyGame.metrics)
    check_contract("spy", SpyGame, "watch", WatchScheduler(WatchConfig(metric="na"), phases=phases))
    with pytest.raises(ConfigError, match=r"Scheduler 'watch' needs the metrics \['vote_rate'\].*\(missing \['vote_rate'\]\)"):
        check_contract("spy", SpyGame, "watch", WatchScheduler(WatchConfig(metric="vote_rate"), phases=phases))


def test_docs_scheduler_example_passes_check_scheduler(tmp_path, monkeypatch):
    """docs/plugins.md's WarmupScheduler, saved as a module, so another process can import it."""
    import importlib

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "class WarmupScheduler" in b]
    (tmp_path / "warmup_checked.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = importlib.import_module("warmup_checked").WarmupScheduler
    assert check_scheduler(cls, {"warmup": 3}).checked_across_processes


# -- plugin contract -------------------------------------------------------------------------


def test_register_schedulers():
    pm = make_plugin_manager(
        ["schedulers.hysteresis", "schedulers.clue_only", "schedulers.decision_only", "schedulers.alternate"]
    )
    registry = build_registry(pm)
    assert registry.schedulers == {
        "hysteresis": HysteresisScheduler,
        "clue_only": ClueOnlyScheduler,
        "decision_only": DecisionOnlyScheduler,
        "alternate": AlternateScheduler,
    }
    for name, cls in registry.schedulers.items():
        scheduler = cls(cls.Config(), phases=PHASES)
        assert isinstance(scheduler, PhaseScheduler), name
        assert set(scheduler.metrics()) == {"acc_ema", "na_ema", "steps_in_phase"}


@pytest.mark.parametrize("module", [hysteresis, alternate, clue_only, decision_only])
def test_every_config_field_is_documented(module):
    config: type[BaseModel] = module.Config
    assert config.model_config["extra"] == "forbid"
    undocumented = [name for name, f in config.model_fields.items() if not f.description]
    assert not undocumented
