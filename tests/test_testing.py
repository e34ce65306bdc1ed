"""vzframe.testing.check_game: passes a correct toy game and catches each kind of broken one."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from pydantic import BaseModel, ConfigDict

from games.spy import SpyGame
from vzframe.testing import ADVERSARIAL, MUST_BE_INVALID, CheckReport, check_game
from vzframe.types import Action, Episode, Observation, PhaseSpec, Turn


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


def check(cls, **kw) -> CheckReport:
    return check_game(cls, episodes=kw.pop("episodes", 6), **kw)


# ---- what passes ------------------------------------------------------------------------


def test_toy_game_passes():
    report = check(ToyGame, episodes=20, reward_fns={"toy.len": LenReward()})
    assert report == CheckReport(20, 20 * 9, {"talk": 120, "vote": 60}, report.invalid_by_stage)
    assert 0 < report.invalid < report.turns


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
    (RaisesOnGarbage, r"turn \d+: step\(\d, .*\(100000 chars\)'\) raised ValueError: too long"),
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
