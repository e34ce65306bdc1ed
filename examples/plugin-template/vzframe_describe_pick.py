"""games.describe_pick: a two-player referential game, the smallest complete vzframe game.

| | |
|---|---|
| Roles | `describer` (player 1) sees the target picture; `picker` (player 2) sees `candidates` numbered pictures |
| Stages | `clue`: the describer describes its picture. `decision`: the picker names the target's number |
| Action format | `<think>…</think><answer>description</answer>`; `<answer>k</answer>` or `<answer>N/A</answer>` |
| Rewards | `pick.guess`: +1 right, -0.5 N/A, -1 wrong or invalid. `pick.clue`: 1 when the picker is right, else 0 |
| Metrics | `acc` (right picks / picks), `na` (N/A / picks) |
| Config keys | `candidates` (2, 2..8) |
| Teacher | `PickTeacher`: the describer names a thing only the target shows; the picker checks it against each picture (`<think>1 red cube no, 2 red cube yes.</think>`) and takes the one that shows it, N/A if none or several do |
| Probe | `describe_pick.shows`: "Does the picture show a red cube?" on held-out pictures (yes: a phrase of it; no: another picture's) |
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vzframe.hookspecs import hookimpl
from vzframe.parsing import extract_answer, normalize_answer, parse_choice, parse_clue, public_text, without_article
from vzframe.probes import Ask, GeneratedProbe
from vzframe.protocols import Facts, ImageDraw, RewardFn
from vzframe.types import Action, Episode, Metric, Observation, PhaseSpec, Turn


class Config(BaseModel):
    """Settings of one describe-and-pick game (keys ``game.KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    candidates: int = Field(2, ge=2, le=8)
    """Pictures the picker chooses from; one of them is the describer's."""


@dataclass(frozen=True)
class Role:
    name: str
    brief: str


DESCRIBER = Role("describer", "You see a picture. Describe it in one sentence so that your partner can pick it out.")
PICKER = Role("picker", "Your partner described one of the pictures you see. Pick the one it described.")
CLUE_TASK = "Reply exactly as <think>your reasoning</think><answer>one-sentence description</answer>."
PICK_TASK = (
    'The description: "{clue}". Which picture is it? Reply exactly as <think>your reasoning</think>'
    "<answer>k</answer> with k the picture's number, or <answer>N/A</answer> if you cannot tell."
)


def stated(description: str) -> str:
    """The thing a description names, as the teacher says it: ``"There is a red cube."`` ->
    ``"a red cube"``. Any other text comes back whole (lower-case) and names no such thing.

    >>> stated("There is a Red cube."), stated("There is a red cube. Pick 2.")
    ('a red cube', 'a red cube. pick 2')
    """
    return normalize_answer(description).lower().removeprefix("there is ").removesuffix(".")


def checks(thing: str, shows: list[set[str]]) -> str:
    """The picker's reasoning: one check per picture, in order: its number, the thing without
    its article (as build-toy's check stage repeats a claim) and "yes" if it shows it, else "no".

    >>> checks("a red cube", [{"a blue sphere"}, {"a red cube", "a gray cylinder"}])
    '1 red cube no, 2 red cube yes.'
    """
    claim = without_article(thing)
    return ", ".join(f"{k} {claim} {'yes' if thing in s else 'no'}" for k, s in enumerate(shows, 1)) + "."


class PickTeacher:
    """The scripted player ``vzframe model build-toy --game games.describe_pick`` learns from
    (``check_game`` plays it too). ``facts.describe(picture)`` lists what a picture shows.

    The picker writes out the checks its pick rests on (``checks``), and its answer follows
    from them: a small model finds the picture in one step far less easily than it checks one
    claim against one picture, which build-toy's check stage teaches on its own."""

    def act(self, game: DescribePickGame, player: int, facts: Facts, rng: random.Random) -> str:
        shows = [{p.lower() for p in facts.describe(picture)} for picture in game.pictures]
        if player == 1:  # something true of the target, and of no other candidate if possible
            mine = sorted(shows[game.target - 1])
            only_mine = [p for p in mine if not any(p in s for k, s in enumerate(shows, 1) if k != game.target)]
            phrase = rng.choice(only_mine or mine)
            return f"<think>I name what stands out in my picture.</think><answer>There is {phrase}.</answer>"
        said = game.turns[0].action
        if said.kind != "clue":
            return "<think>There is no description.</think><answer>N/A</answer>"
        thing = stated(said.value)
        fits = [k for k, s in enumerate(shows, 1) if thing in s]
        return f"<think>{checks(thing, shows)}</think><answer>{fits[0] if len(fits) == 1 else 'N/A'}</answer>"

    def clue_truth(self, game: DescribePickGame, player: int, completion: str, facts: Facts) -> bool | None:
        if player != 1:  # the picker's answer is a choice, not a statement about a picture
            return None
        answer = extract_answer(completion)
        target = game.pictures[game.target - 1]
        return answer is not None and stated(answer) in {p.lower() for p in facts.describe(target)}


def guess_reward(action: Action, target: int) -> float:
    """+1 for the target, -0.5 for N/A, -1 otherwise.

    >>> [guess_reward(a, 2) for a in (Action("vote", 2), Action("na"), Action("vote", 1), Action("invalid"))]
    [1.0, -0.5, -1.0, -1.0]
    """
    if action.kind == "na":
        return -0.5
    return 1.0 if action == Action("vote", target) else -1.0


class GuessReward:
    name: ClassVar[str] = "pick.guess"
    stage: ClassVar[str] = "decision"

    def __call__(self, episode: Episode, config: Config) -> dict[int, float]:
        return {t.index: guess_reward(t.action, episode.info["target"]) for t in episode.turns_of("decision")}


class ClueReward:
    name: ClassVar[str] = "pick.clue"
    stage: ClassVar[str] = "clue"

    def __call__(self, episode: Episode, config: Config) -> dict[int, float]:
        right = any(t.action == Action("vote", episode.info["target"]) for t in episode.turns_of("decision"))
        return {t.index: float(right) for t in episode.turns_of("clue")}


class DescribePickGame:
    """Player 1 describes the target picture; player 2 picks it among ``candidates``."""

    name: ClassVar[str] = "describe_pick"
    Config: ClassVar[type[Config]] = Config
    roles: ClassVar[tuple[Role, ...]] = (DESCRIBER, PICKER)
    # One pick per game, so a group of one would always get advantage 0: both phases use
    # role baselines (reward minus the role's running mean reward).
    phases: ClassVar[dict[str, PhaseSpec]] = {
        "decision": PhaseSpec("decision", ("pick.guess",), "role"),
        "clue": PhaseSpec("clue", ("pick.clue",), "role"),
    }
    # What collect_metrics reports: checked against what the scheduler needs before a run.
    metrics: ClassVar[dict[str, Metric]] = {"acc": Metric("pick accuracy", headline=True), "na": Metric("N/A rate")}
    # The reward functions its phases name.
    reward_fns: ClassVar[tuple[RewardFn, ...]] = (GuessReward(), ClueReward())
    # Optional: a scripted player, for `vzframe model build-toy` and check_game.
    teacher: ClassVar[PickTeacher] = PickTeacher()

    def __init__(self, config: Config, *, seed: int, images: ImageDraw) -> None:
        self.config, self.seed = config, seed
        self.pictures = tuple(images() for _ in range(config.candidates))
        self.target = random.Random(seed).randint(1, config.candidates)  # the describer's picture
        self.turns: list[Turn] = []

    def to_act(self) -> tuple[int, ...]:
        return ((1,), (2,), ())[len(self.turns)]  # the describer, then the picker, then over

    def observe(self, player: int) -> Observation:
        if player == 1:
            role, stage, images = DESCRIBER, "clue", (self.pictures[self.target - 1],)
            content = [{"type": "image"}, {"type": "text", "text": CLUE_TASK}]
        elif player == 2:
            role, stage, images = PICKER, "decision", self.pictures
            said = self.turns[0].action if self.turns else Action("invalid")
            clue = public_text(said.value, 300) if said.kind == "clue" else "(no description)"
            content = [p for k in range(len(images)) for p in ({"type": "text", "text": f"Picture {k + 1}:"}, {"type": "image"})]
            content.append({"type": "text", "text": PICK_TASK.format(clue=clue)})
        else:
            raise ValueError(f"No player {player!r}; players are 1 and 2.")
        messages = ({"role": "system", "content": role.brief}, {"role": "user", "content": content})
        return Observation(player, role.name, stage, messages, images)

    def step(self, player: int, completion: str) -> Turn:
        if player not in self.to_act():
            raise ValueError(f"Player {player!r} cannot act now; to_act() is {self.to_act()}.")
        obs = self.observe(player)  # parse untrusted text with vzframe's total parsers: never raises
        action = parse_clue(completion) if player == 1 else parse_choice(completion, self.config.candidates, noun="picture")
        ids = tuple(im.id for im in obs.images)
        turn = Turn(len(self.turns), player, obs.role, obs.stage, obs.prompt_text(), ids, completion, action)
        self.turns.append(turn)
        return turn

    def episode(self) -> Episode:
        if self.to_act():
            raise RuntimeError(f"The game is not over: player {self.to_act()} must still act.")
        info = {"target": self.target, "pictures": [p.id for p in self.pictures]}
        return Episode(self.name, self.seed, ("describer", "picker"), tuple(self.turns), info)

    @staticmethod
    def example_completions(observation: Observation) -> list[str]:  # for vzframe.testing.check_game
        if observation.stage == "clue":
            return ["<think>What stands out?</think><answer>Two red circles on grey.</answer>"]
        return [f"<answer>{k}</answer>" for k in range(1, len(observation.images) + 1)] + ["<answer>N/A</answer>"]

    @staticmethod
    def collect_metrics(episodes: Iterable[Episode]) -> dict[str, float] | None:
        picks = [(t.action, e.info["target"]) for e in episodes if e.game == "describe_pick" for t in e.turns_of("decision")]
        if not picks:
            return None
        return {
            "acc": sum(a == Action("vote", target) for a, target in picks) / len(picks),
            "na": sum(a.kind == "na" for a, _ in picks) / len(picks),
        }


class ShowsProbe(GeneratedProbe):
    """A probe of the skill this game trains, asked outside it: does a picture show a thing?
    Answers come from the image source's ``describe``: yes for a phrase of the picture, no for
    a phrase of another picture of the same source that this one lacks. ``vzframe probe`` hands
    ``ask`` pictures of a source seeded out of every run's range, never a run's."""

    name = format = "describe_pick.shows"
    label = "Does the picture show X?"
    sources = ("clevr_toy", "clevr", "charts")

    def ask(self, picture, rng, source) -> Ask | None:
        shown = source.describe(picture)
        other = source.get(10**6 + rng.randrange(10**6))  # another picture of the same source
        elsewhere = [p for p in source.describe(other) if p not in shown]
        if not shown or not elsewhere:
            return None
        yes = rng.random() < 0.5
        answer = "yes" if yes else "no"
        return Ask(f"Does the picture show {rng.choice(shown if yes else elsewhere)}?", (answer,), answer, ("yes", "no"))


@hookimpl
def register_games(register) -> None:
    register(DescribePickGame)


@hookimpl
def register_probes(register) -> None:
    register(ShowsProbe())
