"""vzframe.testing: check_game and check_scheduler pass correct games and schedulers and catch
each kind of broken one, with a message that says what is wrong and where."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from games.spy import SpyGame
from games.spy.rewards import REWARD_FNS as SPY_REWARD_FNS
from tests.fixtures import broken_schedulers, careless_game
from vzframe.config import ConfigError
from vzframe.plugins import PluginError, check_zero_sum
from vzframe.testing import (
    ADVERSARIAL,
    MUST_BE_INVALID,
    CheckReport,
    SchedulerReport,
    check_game,
    check_scheduler,
    draw_images,
    image_source,
)
from vzframe.types import Action, Episode, Metric, Observation, PhaseSpec, Turn


@dataclass(frozen=True)
class ToyRole:
    name: str
    brief: str


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    players: int = 3
    rounds: int = 2


class ToyGame:
    """Each player talks ``rounds`` times in seat order, then everyone votes at once."""

    name = "toy"
    Config = ToyConfig
    roles = (ToyRole("talker", "Say something."),)
    phases = {"talk": PhaseSpec("talk", ("toy.len",), "role"), "vote": PhaseSpec("vote", (), "group")}
    metrics = {"talk_valid": Metric("valid talk", headline=True)}

    def __init__(self, config, *, seed, images):
        self.config, self.seed, self.image = config, seed, images()
        self.turns: list[Turn] = []
        self.voted: list[int] = []

    @property
    def talks(self) -> int:
        return self.config.players * self.config.rounds

    def to_act(self):
        n = len(self.turns)
        if n < self.talks:
            return (n % self.config.players + 1,)
        return tuple(p for p in range(1, self.config.players + 1) if p not in self.voted)

    def observe(self, player):
        stage = "talk" if len(self.turns) < self.talks else "vote"
        said = " | ".join(str(t.action.value) for t in self.turns if t.stage == "talk")
        content = [{"type": "image"}, {"type": "text", "text": f"Player {player}. Said so far: {said}"}]
        return Observation(player, "talker", stage, ({"role": "user", "content": content},), (self.image,))

    def parse(self, completion):
        text = completion.strip()
        return Action("say", text[:20]) if text else Action("invalid", None, "empty")

    def step(self, player, completion):
        if player not in self.to_act():
            raise ValueError(f"player {player} cannot act")
        obs = self.observe(player)
        if obs.stage == "vote":
            self.voted.append(player)
        turn = Turn(len(self.turns), player, "talker", obs.stage, obs.prompt_text(), (self.image.id,), completion,
                    self.parse(completion))
        self.turns.append(turn)
        return turn

    def episode(self):
        return Episode("toy", self.seed, ("talker",) * self.config.players, tuple(self.turns), {"n": len(self.turns)})


class LenReward:
    name = "toy.len"
    stage = "talk"

    def __call__(self, episode, config):
        return {t.index: float(len(str(t.action.value))) for t in episode.turns_of("talk")}


def toy_metrics(episodes):
    """The toy game's collect_metrics (passed to check_game: it is not a module-level hook here)."""
    talks = [t for e in episodes if e.game == "toy" for t in e.turns_of("talk")]
    if not talks:
        return None
    return {"talk_valid": sum(t.action.kind != "invalid" for t in talks) / len(talks)}


def check(cls, **kw) -> CheckReport:
    if issubclass(cls, ToyGame):
        kw.setdefault("collect_metrics", toy_metrics)
    return check_game(cls, episodes=kw.pop("episodes", 6), **kw)


# ---- what passes ------------------------------------------------------------------------


def test_toy_game_passes():
    report = check(ToyGame, episodes=20, reward_fns={"toy.len": LenReward()})
    assert report == CheckReport(20, 20 * 9, {"talk": 120, "vote": 60}, report.invalid_by_stage, report.metrics)
    assert 0 < report.invalid < report.turns
    assert set(report.metrics) == {"talk_valid"} and 0 < report.metrics["talk_valid"] < 1


def test_config_dict_and_determinism_of_report():
    a = check(ToyGame, config={"players": 4}, seed=5)
    b = check(ToyGame, config=ToyConfig(players=4), seed=5)
    assert a == b and a.turns == 6 * 12


def test_adversarial_strings_cover_the_brief():
    assert set(MUST_BE_INVALID) <= set(ADVERSARIAL)
    assert any(len(s) >= 100_000 for s in ADVERSARIAL)
    assert "<answer>-1</answer>" in ADVERSARIAL and "<answer>999</answer>" in ADVERSARIAL
    assert any("\x00" in s for s in ADVERSARIAL) and any(ord(c) > 0xFFFF for s in ADVERSARIAL for c in s)


# ---- what fails: each broken game is caught, with a message that says where -------------


class NeverEnds(ToyGame):
    def to_act(self):
        return (1,)


class NotJsonable(ToyGame):
    def episode(self):
        ep = super().episode()
        return Episode(ep.game, ep.seed, ep.roles, ep.turns, {"seen": {1, 2}})


class TupleInInfo(ToyGame):
    def episode(self):
        ep = super().episode()
        return Episode(ep.game, ep.seed, ep.roles, ep.turns, {"pair": (1, 2)})


class RaisesOnGarbage(ToyGame):
    def parse(self, completion):
        if len(completion) > 10_000:
            raise ValueError("too long")
        return super().parse(completion)


class CrashesOnUnicode(ToyGame):
    def parse(self, completion):
        completion.encode("ascii")
        return super().parse(completion)


class AcceptsWrongPlayer(ToyGame):
    def step(self, player, completion):
        if player in self.to_act():
            return super().step(player, completion)
        return Turn(len(self.turns), player, "talker", "talk", "", (), completion, Action("invalid"))


class WrongErrorType(ToyGame):
    def step(self, player, completion):
        if player not in self.to_act():
            raise KeyError(player)
        return super().step(player, completion)


class OnlyRejectsOutOfRange(ToyGame):
    def step(self, player, completion):
        if not 1 <= player <= self.config.players:
            raise ValueError(player)
        turn = Turn(len(self.turns), player, "talker", "talk", "", (self.image.id,), completion, self.parse(completion))
        self.turns.append(turn)
        return turn


class Nondeterministic(ToyGame):
    def episode(self):
        ep = super().episode()
        return Episode(ep.game, ep.seed, ep.roles, ep.turns, {"salt": random.random()})


class MissingPlaceholder(ToyGame):
    def observe(self, player):
        obs = super().observe(player)
        return Observation(player, obs.role, obs.stage, ({"role": "user", "content": "text only"},), obs.images)


class WrongObservedPlayer(ToyGame):
    def observe(self, player):
        obs = super().observe(player)
        return Observation(player + 1, obs.role, obs.stage, obs.messages, obs.images)


class PhantomPhase(ToyGame):
    phases = {**ToyGame.phases, "bluff": PhaseSpec("bluff", (), "role")}


class EmptyIsAMove(ToyGame):
    def parse(self, completion):
        return Action("say", completion)


class SeatZero(ToyGame):
    def to_act(self):
        return tuple(p - 1 for p in super().to_act())


class BadTurnIndex(ToyGame):
    def step(self, player, completion):
        turn = super().step(player, completion)
        return Turn(turn.index + 1, *[getattr(turn, f) for f in list(Turn.__dataclass_fields__)[1:]])


class VotesLeak(ToyGame):
    def observe(self, player):
        obs = super().observe(player)
        text = obs.messages[0]["content"][1]["text"] + f" Votes so far: {len(self.voted)}"
        content = [{"type": "image"}, {"type": "text", "text": text}]
        return Observation(player, obs.role, obs.stage, ({"role": "user", "content": content},), obs.images)


class RoleMismatch(ToyGame):
    roles = (ToyRole("talker", "Talk."), ToyRole("liar", "Lie."))

    def episode(self):
        ep = super().episode()
        return Episode(ep.game, ep.seed, ("liar",) * len(ep.roles), ep.turns, ep.info)


class RejectsOwnExamples(ToyGame):
    @staticmethod
    def example_completions(observation):
        return ["well formed"]

    def parse(self, completion):
        if completion == "well formed":
            return Action("invalid", None, "nothing is ever valid")
        return super().parse(completion)


class NeverEndingSpy(SpyGame):
    def step(self, player, completion):
        turn = super().step(player, completion)
        if self.stage is None:
            self._clue_pos = 0  # a bug: the clue rounds start over
        return turn


class SpyCrashesOnEmptyVote(SpyGame):
    def step(self, player, completion):
        if self.stage == "decision" and not completion:
            raise IndexError("empty vote")
        return super().step(player, completion)


BROKEN = [
    (NeverEnds, "did not end within"),
    (NotJsonable, "not JSON-serialisable"),
    (TupleInInfo, "changed in a JSON round-trip: info"),
    (RaisesOnGarbage, r"turn \d+: Game 'toy' \(.*RaisesOnGarbage\) in step\(player=\d, .*\(100000 chars\)'\) raised ValueError: too long at .*in parse"),
    (CrashesOnUnicode, "raised UnicodeEncodeError"),
    (AcceptsWrongPlayer, r"step\(0\) was accepted"),
    (WrongErrorType, "raised KeyError.*expected ValueError"),
    (OnlyRejectsOutOfRange, r"step\(\d\) was accepted while to_act\(\) is"),
    (Nondeterministic, "same seed, different episode: info"),
    (MissingPlaceholder, "0 image placeholders but 1 images"),
    (WrongObservedPlayer, r"observe\(\d\) is for player"),
    (PhantomPhase, "trains stage 'bluff', which no episode had"),
    (EmptyIsAMove, "carries no move"),
    (SeatZero, "players are ints from 1"),
    (BadTurnIndex, "Turn.index is 1; expected its position 0"),
    (VotesLeak, "move simultaneously"),
    (RoleMismatch, "acted as 'talker' but Episode.roles says 'liar'"),
    (RejectsOwnExamples, "own example completion"),
    (NeverEndingSpy, "did not end within 1000 steps"),
    (SpyCrashesOnEmptyVote, "raised IndexError: empty vote"),
]


@pytest.mark.parametrize("cls, message", BROKEN, ids=[c.__name__ for c, _ in BROKEN])
def test_check_game_catches(cls, message):
    with pytest.raises(AssertionError, match=message) as info:
        check(cls, episodes=12)
    assert cls.__name__ in str(info.value)


class NanReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: float("nan") for t in episode.turns_of("talk")}


class WrongStageReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: 1.0 for t in episode.turns}


class CrashingReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: 1.0 / 0 for t in episode.turns_of("talk")}


@pytest.mark.parametrize(
    "fns, message",
    [
        ({"toy.len": NanReward()}, "non-finite reward nan"),
        ({"toy.len": WrongStageReward()}, "not a turn of its stage"),
        ({"toy.len": CrashingReward()}, "raised ZeroDivisionError"),
        ({}, r"uses reward fns \['toy.len'\] not in reward_fns"),
        ({"toy.other": LenReward()}, "registered as 'toy.other' has .name 'toy.len'"),
    ],
)
def test_check_game_catches_bad_reward_fns(fns, message):
    with pytest.raises(AssertionError, match=message):
        check(ToyGame, reward_fns=fns)


def test_class_level_checks():
    class NoConfig(ToyGame):
        Config = dict

    class NoPhases(ToyGame):
        phases = {}

    for cls, message in ((NoConfig, "Config must be a pydantic model"), (NoPhases, "phases must be a non-empty")):
        with pytest.raises(AssertionError, match=message):
            check(cls)


# ---- declared contracts: metrics, float rewards, zero-sum phases, degenerate groups ---------


class CenteredLenReward(LenReward):
    """Zero-sum: each talk turn's length minus the mean length of the episode's talk turns."""

    def __call__(self, episode, config):
        lengths = super().__call__(episode, config)
        mean = sum(lengths.values()) / len(lengths)
        return {i: v - mean for i, v in lengths.items()}


class ZeroSumToy(ToyGame):
    phases = {**ToyGame.phases, "talk": PhaseSpec("talk", ("toy.len",), "role", zero_sum=True)}


class OneVoter(ToyGame):
    """Only player 1 votes: a group of one."""

    def to_act(self):
        acting = super().to_act()
        return acting if len(self.turns) < self.talks else tuple(p for p in acting if p == 1)


def test_zero_sum_phase_passes_with_zero_sum_rewards():
    report = check(ZeroSumToy, reward_fns={"toy.len": CenteredLenReward()})
    assert report.episodes == 6
    assert ZeroSumToy.phases["talk"] == PhaseSpec("talk", ("toy.len",), "role", True)  # positional still works
    assert PhaseSpec("clue", ("x",), "role").zero_sum is False


def test_the_built_in_clue_phases_are_declared_zero_sum():
    from games.odd_one_out import OddOneOutGame

    for game in (SpyGame, OddOneOutGame):
        assert game.phases["clue"].zero_sum and not game.phases["decision"].zero_sum


def test_check_zero_sum():
    check_zero_sum("Game 'toy'", "talk", {0: 1.0, 1: -0.5, 2: -0.5})
    check_zero_sum("Game 'toy'", "talk", {})
    check_zero_sum("Game 'toy'", "talk", {0: 1e9, 1: -1e9 + 1e-3})  # relative tolerance
    for rewards in ({0: 1.0, 1: -0.9}, {0: float("nan")}):
        with pytest.raises(PluginError, match=r"Game 'toy': phase 'talk' is declared zero-sum, but .* sum to"):
            check_zero_sum("Game 'toy'", "talk", rewards)


class IntReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: len(t.completion) % 3 for t in episode.turns_of("talk")}


class BoolReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: t.action.kind != "invalid" for t in episode.turns_of("talk")}


class NumpyReward(LenReward):
    def __call__(self, episode, config):
        return {t.index: np.float64(1.0) for t in episode.turns_of("talk")}


class OneScoredVote:
    name, stage = "toy.first_vote", "vote"

    def __call__(self, episode, config):
        return {t.index: 1.0 for t in episode.turns_of("vote")[:1]}


class ScoresOneVote(ToyGame):
    phases = {**ToyGame.phases, "vote": PhaseSpec("vote", ("toy.first_vote",), "group")}


class NoMetrics(ToyGame):
    metrics = None


class MetricAsText(ToyGame):
    metrics = {"talk_valid": "valid talk"}


class DeclaresMore(ToyGame):
    metrics = {**ToyGame.metrics, "won": Metric("games won")}


class DeclaresLess(ToyGame):
    metrics = {}


class NoHookFound(ToyGame):
    pass


def crashing_metrics(episodes):
    return {"talk_valid": 1 / len([e for e in episodes if e.info.get("missing")])}


def text_metrics(episodes):
    return {"talk_valid": "high"}


def none_for_own(episodes):
    return None


CONTRACTS = [
    (ZeroSumToy, {"reward_fns": {"toy.len": LenReward()}}, r"phase 'talk' is declared zero-sum, but an episode's rewards sum to"),
    (ToyGame, {"reward_fns": {"toy.len": IntReward()}}, r"gave turn \d+ the int reward"),
    (ToyGame, {"reward_fns": {"toy.len": BoolReward()}}, r"gave turn \d+ the bool reward"),
    (ToyGame, {"reward_fns": {"toy.len": NumpyReward()}}, r"gave turn \d+ the float64 reward"),
    (OneVoter, {}, r"phases\['vote'\] uses advantage 'group', but no episode had more than 1 scored turn.*Use advantage 'role'"),
    (ScoresOneVote, {"reward_fns": {"toy.len": LenReward(), "toy.first_vote": OneScoredVote()}}, "Use advantage 'role'"),
    (NoMetrics, {}, r"NoMetrics.metrics must be a mapping of metric name -> vzframe.types.Metric"),
    (MetricAsText, {}, r"metrics\['talk_valid'\] is 'valid talk'; declare it as vzframe.types.Metric"),
    (DeclaresMore, {}, r"without the metrics \['won'\] that DeclaresMore.metrics declares"),
    (DeclaresLess, {}, r"collect_metrics returned \['talk_valid'\], which DeclaresLess.metrics does not declare"),
    (NoHookFound, {"collect_metrics": None}, r"no collect_metrics was found in (tests\.)?test_testing or a package.*collect_metrics=your_hook"),
    (ToyGame, {"collect_metrics": crashing_metrics}, r"collect_metrics\(episodes=<1 episodes>\) raised ZeroDivisionError"),
    (ToyGame, {"collect_metrics": text_metrics}, r"collect_metrics returned 'talk_valid': 'high'"),
    (ToyGame, {"collect_metrics": none_for_own}, r"collect_metrics returned None for ToyGame's own episodes"),
]


@pytest.mark.parametrize("cls, kw, message", CONTRACTS, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CONTRACTS)])
def test_check_game_catches_broken_contracts(cls, kw, message):
    with pytest.raises(AssertionError, match=message) as info:
        check(cls, **kw)
    assert cls.__name__ in str(info.value)


def test_collect_metrics_is_found_beside_the_game():
    """games.spy.game.SpyGame's hook is games.spy.collect_metrics; subclasses elsewhere find it too."""
    report = check_game(SpyGame, episodes=6, reward_fns={fn.name: fn for fn in SPY_REWARD_FNS})
    assert set(report.metrics) == set(SpyGame.metrics)


def test_a_spy_judge_of_one_sample_is_refused_as_a_degenerate_group():
    """One judge sample per game would make the decision group one vote, whose advantage is
    always 0: the spy game's config refuses it (check_game found it)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="judge_samples"):
        SpyGame.Config.model_validate({"decision": "judge", "judge_samples": 1})


def test_a_group_phase_whose_rewards_never_differ_within_a_game_is_caught():
    """A team reward (every voter of a game gets the same) or a constant: group-normalised
    advantages are all 0 (tests/fixtures/careless_game.py)."""
    for cls, fn in ((careless_game.TeamVoteSpy, "careless.team_vote"), (careless_game.TurnoutSpy, "careless.turnout")):
        with pytest.raises(AssertionError) as info:
            check_game(cls, reward_fns=careless_game.REWARD_FNS_BY_NAME)
        assert str(info.value) == (
            f"{cls.__name__}.phases['decision'] uses advantage 'group', but its reward fns ['{fn}'] gave all the scored "
            "turns of a game the same reward, in each of the 50 games (of 50 played with example, adversarial and random "
            "moves) that had more than one: group-normalised advantages (GRPO) are then always 0, and the phase trains "
            "nothing. Reward each turn for its own move (a voter's own vote, not the team's result), or use advantage "
            "'role' (reward minus the role's running baseline)."
        )


def test_the_same_reward_for_a_whole_game_is_fine_with_role_baselines_and_in_few_games():
    """Role advantages subtract a running baseline, so a team reward still trains; and fewer
    than GROUPS_TO_TELL games cannot tell a team reward from a game whose votes happened to
    agree (check_game's policies give all the votes of a healthy spy game the same reward in
    a fifth to nearly all of its games, by policy)."""
    check_game(careless_game.TeamVoteSpyByRole, reward_fns=careless_game.REWARD_FNS_BY_NAME, teacher_episodes=0)
    check_game(careless_game.TeamVoteSpy, episodes=19, reward_fns=careless_game.REWARD_FNS_BY_NAME, teacher_episodes=0)
    with pytest.raises(AssertionError, match="in each of the 20 games"):
        check_game(careless_game.TeamVoteSpy, episodes=20, reward_fns=careless_game.REWARD_FNS_BY_NAME, teacher_episodes=0)


# ---- check_scheduler ----------------------------------------------------------------------


def test_good_scheduler_passes():
    report = check_scheduler(broken_schedulers.GoodScheduler)
    assert isinstance(report, SchedulerReport) and report.sequences == 20 and report.updates == 20 * 100
    assert set(report.phases_chosen) == {"clue", "decision"} and report.switches > 10
    assert check_scheduler(broken_schedulers.GoodScheduler, {"patience": 1}, metrics=("acc", "na")).switches > 10


BROKEN_SCHEDULERS = [
    ("Nondeterministic", r"fed the same metrics, rank \d chose '\w+' at step \d+ where the first chose"),
    ("SetInState", r"state_dict\(\) is not JSON \(Object of type set"),
    ("NanInState", r"state_dict\(\) is not JSON .*NaN or infinity is not JSON: store None"),
    ("ForgetsSteps", r"state saved after step \d+: (metrics\(\) after a round trip|the restored scheduler chose)"),
    ("LoadIgnoresPhase", r"state saved after step \d+: the restored scheduler is in phase 'decision', the original in 'clue'"),
    ("OffMenuPhase", r"update\(\) chose phase 'judge', which is not one of the game's \('clue', 'decision'\)"),
    ("ForgetsToSetPhase", r"update\(\) returned 'clue' but scheduler.phase is 'decision'"),
    ("BareKeyError", r"without the required metric 'acc' raised KeyError\('acc'\); say what is missing"),
    ("CrashesOnMissingMetric", r"without the required metric 'acc' crashed with TypeError"),
    ("IgnoresMissingMetric", r"accepted metrics without the required 'acc'"),
    ("RequiresUndeclared", r"RequiresUndeclared.requires is not declared"),
    ("RequiresList", r"RequiresList.requires is \['acc'\]; it must be a tuple of metric names"),
    ("RequiresNothingButReadsAcc", r"requires no metric, but update\(step, \{\}\) raised KeyError"),
    ("AcceptsAnyPhases", r"accepted a game without its phases but would train 'decision'; raise ValueError"),
    ("WrongErrorForPhases", r"raised KeyError: 'clue'; a phase the game lacks must be a ValueError"),
    ("IntStatistics", r"metrics\(\)\['steps'\] is the int 0; return floats"),
    ("InfiniteStatistics", r"metrics\(\)\['ratio'\] is inf"),
]


def test_every_broken_scheduler_is_tested():
    module = broken_schedulers
    classes = {n for n, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__}
    elsewhere = {"OverwritesMetrics", "LeavesEarly", "MinStepsZero", "SeededFromHash"}  # tests/test_schedulers.py
    assert classes - {"Config", "_Base", "GoodScheduler"} - elsewhere == {name for name, _ in BROKEN_SCHEDULERS}


@pytest.mark.parametrize("name, message", BROKEN_SCHEDULERS, ids=[n for n, _ in BROKEN_SCHEDULERS])
def test_check_scheduler_catches(name, message):
    with pytest.raises(AssertionError, match=message) as info:
        check_scheduler(getattr(broken_schedulers, name))
    assert str(info.value).startswith(f"check_scheduler({name}) found ")


def test_check_scheduler_lists_every_problem():
    class TwoBugs(broken_schedulers.IntStatistics):
        requires = ["acc"]

    with pytest.raises(AssertionError) as info:
        check_scheduler(TwoBugs)
    message = str(info.value)
    assert message.startswith("check_scheduler(TwoBugs) found 2 problem(s):\n- ")
    assert "requires is ['acc']" in message and "metrics()['steps'] is the int 0" in message


def test_check_scheduler_checks_requires_against_the_game():
    with pytest.raises(AssertionError, match=r"requires metrics \['acc'\] that the game does not report \(it reports \['na'\]\)"):
        check_scheduler(broken_schedulers.GoodScheduler, metrics={"na": Metric("N/A rate")})


def test_check_scheduler_restores_the_global_random_state():
    random.seed(7)
    expected = random.random()
    random.seed(7)
    check_scheduler(broken_schedulers.GoodScheduler, sequences=2)
    assert random.random() == expected


# ---- image_source and draw_images: real pictures in a plugin's tests ----------------------


SMALL_CLEVR = {"width": 112, "height": 84, "max_objects": 3}


def test_image_source_builds_a_registered_source_as_a_run_does():
    source = image_source("clevr_toy", SMALL_CLEVR, seed=4)
    assert type(source).__name__ == "ClevrToySource" and source.config.supersample == 1  # clevr_toy's own default
    item = source.get(2)
    assert item.id == "clevr_toy:4:2" and item.image.size == (112, 84)
    objects, visible = item.meta["objects"], item.meta["visible_pixels"]
    assert 2 <= len(objects) <= 3 and len(visible) == len(objects) and all(v > 0 for v in visible)
    assert {"shape", "color", "size", "material", "x", "y", "rotation", "pixel", "depth"} <= set(objects[0])
    twin = item.twin()
    assert twin.meta["twin_of"] == item.id and len(twin.meta["changes"]) == 2


def test_draw_images_is_what_the_source_serves_and_is_deterministic():
    items = draw_images("charts", 3, {"width": 224, "height": 168}, seed=1, start=10)
    assert [i.id for i in items] == ["charts:1:10", "charts:1:11", "charts:1:12"]
    again = draw_images("charts", 1, {"width": 224, "height": 168}, seed=1, start=11)[0]
    assert again.meta == items[1].meta and again.image.tobytes() == items[1].image.tobytes()
    assert {"kind", "title", "categories", "series", "layout"} <= set(items[0].meta)


def test_image_source_takes_a_config_object_and_checks_settings():
    from plugins.shapes import Config as ShapesConfig

    assert image_source("shapes", ShapesConfig(size=56)).get(0).image.size == (56, 56)
    with pytest.raises(ConfigError, match="Unknown config key 'image_source.objects'"):
        image_source("clevr", {"objects": 3})
    with pytest.raises(ConfigError, match="set image_source.path=DIR"):
        image_source("folder")


def test_image_source_unknown_name_lists_the_registered_ones():
    with pytest.raises(PluginError, match="Unknown image source 'nope'. Registered: charts, clevr, clevr_toy, folder, shapes"):
        image_source("nope")


def test_image_source_loads_a_plugin_by_name(tmp_path, monkeypatch):
    (tmp_path / "solid_images.py").write_text(
        "from PIL import Image\n"
        "from pydantic import BaseModel\n"
        "from vzframe.hookspecs import hookimpl\n"
        "from vzframe.types import ImageItem\n\n"
        "class Config(BaseModel):\n"
        "    side: int = 28\n\n"
        "class Solid:\n"
        "    name, Config = 'solid', Config\n"
        "    def __init__(self, config, *, seed):\n"
        "        self.config, self.seed = config, seed\n"
        "    def get(self, index):\n"
        "        return ImageItem(f'solid:{self.seed}:{index}', Image.new('RGB', (self.config.side,) * 2), {'index': index})\n\n"
        "@hookimpl\n"
        "def register_image_sources(register):\n"
        "    register(Solid)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    items = draw_images("solid", 2, {"side": 56}, seed=9, plugins=["solid_images"])
    assert [(i.id, i.image.size, i.meta) for i in items] == [("solid:9:0", (56, 56), {"index": 0}), ("solid:9:1", (56, 56), {"index": 1})]


def test_check_game_plays_on_an_image_source():
    seen: list[str] = []

    class Recording(ToyGame):
        def __init__(self, config, *, seed, images):
            super().__init__(config, seed=seed, images=images)
            seen.append(self.image.id)

    report = check(Recording, episodes=3, images=image_source("clevr_toy", SMALL_CLEVR))
    assert report.episodes == 3
    assert seen == ["clevr_toy:0:0", "clevr_toy:0:0", "clevr_toy:0:64", "clevr_toy:0:64", "clevr_toy:0:128", "clevr_toy:0:128"]
