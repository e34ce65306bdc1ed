"""The one play driver (``vzframe.rollout.play.play_moves``/``play``) with each kind of policy:
what a policy is asked and when, what a referee sees, seeds, and errors that name the game."""

import random

import pytest
import torch

from games.spy.game import SpyConfig, SpyGame
from vzframe.plugins import PluginError
from vzframe.protocols import Facts
from vzframe.rollout import Generation
from vzframe.rollout.play import ImageCursor, play, play_moves, request_seed
from vzframe.rollout.policy import EnginePolicy, Referee, ScriptedPolicy, TeacherPolicy, as_policy, text_move
from vzframe.testing import image_source, play_teacher


def spy_games(n, seed=0):
    cursor = ImageCursor(image_source("clevr_toy", seed=seed), rank=0, world=1)
    return [SpyGame(SpyConfig(), seed=seed * 100 + i, images=cursor.draw) for i in range(n)]


def examples(move):
    return random.Random(move.seed ^ move.index).choice(SpyGame.example_completions(move.observation))


def test_the_documented_scripted_play_runs_games_to_the_end():
    """docs/plugins.md "Who plays": a scripted policy plays whole games; metrics follow."""
    games = spy_games(6)
    rollout = play(games, ScriptedPolicy(lambda move: random.Random(move.player).choice(SpyGame.example_completions(move.observation))))
    assert [g.to_act() for g in games] == [()] * 6
    assert all(t.action.kind != "invalid" for e in rollout.episodes for t in e.turns)
    metrics = SpyGame.collect_metrics(rollout.episodes)
    assert set(metrics) == set(SpyGame.metrics)
    assert rollout.tokens == 0  # scripted moves carry no model tokens
    assert [len(p.generations) for p in rollout.games] == [len(e.turns) for e in rollout.episodes]


class Recorder(Referee):
    """Every referee call, in order."""

    def __init__(self):
        self.calls = []

    def tick(self, index, game, acting):
        self.calls.append(("tick", index, acting))

    def observed(self, move):
        self.calls.append(("observed", move.index, move.player))

    def acted(self, move, generation):
        self.calls.append(("acted", move.index, move.player, move.game.to_act()))

    def before_step(self, move, generation):
        self.calls.append(("before_step", move.index, move.player))

    def stepped(self, move, generation, turn):
        self.calls.append(("stepped", move.index, move.player, turn.index))


def test_a_tick_observes_everyone_then_asks_once_then_steps_in_order():
    asked = []

    def choose(move):
        asked.append(move)
        return SpyGame.example_completions(move.observation)[0]

    recorder = Recorder()
    games = spy_games(2)
    play(games, ScriptedPolicy(choose), referee=recorder)
    kinds = [c[0] for c in recorder.calls]
    # every game is asked who moves before anyone is observed; all are observed before any answer
    first_tick = kinds[: kinds.index("before_step")]
    assert first_tick == ["tick", "tick", "observed", "observed", "acted", "acted"]
    # the vote: every voter answers on the state before any vote is stepped
    votes = [c for c in recorder.calls if c[0] == "acted" and len(c[3]) > 1]
    assert votes
    for g in range(len(games)):
        seen = [c[3] for c in votes if c[1] == g]
        assert seen == [seen[0]] * len(seen) == [tuple(c[2] for c in votes if c[1] == g)] * len(seen)
    stepped = [c for c in recorder.calls if c[0] == "stepped"]
    for g, game in enumerate(games):
        assert [c[3] for c in stepped if c[1] == g] == list(range(len(game.episode().turns)))


def test_order_shuffles_the_steps_of_a_tick_and_the_games_stay_valid():
    orders = []

    class Order(Referee):
        def before_step(self, move, generation):
            if move.observation.stage == "decision":
                orders.append(move.player)

    play(spy_games(4), ScriptedPolicy(examples), referee=Order(), order=random.Random(3))
    sorted_ticks = [orders[i : i + 3] == sorted(orders[i : i + 3]) for i in range(0, len(orders), 3)]
    assert not all(sorted_ticks)  # some vote was stepped out of to_act() order


def test_a_seeded_policy_gets_each_request_its_own_seed():
    class Seeds:
        seeded = True

        def __init__(self):
            self.moves = []

        def act(self, moves):
            self.moves += moves
            return [text_move(SpyGame.example_completions(m.observation)[0]) for m in moves]

    def seeds(n):
        torch.manual_seed(5)
        policy = Seeds()
        play(spy_games(n), policy)
        return policy.moves

    moves = seeds(3)
    torch.manual_seed(5)
    base = int(torch.randint(0, 2**31 - 1, ()))
    per_game = {}
    for m in moves:
        n = per_game.get(m.index, 0)
        assert m.seed == request_seed(base, m.index, n)
        per_game[m.index] = n + 1
    assert len({m.seed for m in moves}) == len(moves)
    # a game's seeds do not depend on how many games play beside it
    alone = [m.seed for m in seeds(1)]
    assert alone == [m.seed for m in moves if m.index == 0]


def test_an_unseeded_policy_draws_nothing_from_torch():
    torch.manual_seed(9)
    play(spy_games(2), ScriptedPolicy(examples))
    after = torch.randint(0, 100, (4,))
    torch.manual_seed(9)
    assert torch.equal(after, torch.randint(0, 100, (4,)))


def test_a_policy_must_answer_every_move():
    class Lazy:
        seeded = False

        def act(self, moves):
            return [text_move("<answer>hi</answer>")]

    with pytest.raises(RuntimeError, match="Lazy.act answered 1 of 2 moves; it must answer each"):
        play(spy_games(2), Lazy())


def test_a_game_error_names_the_game_the_call_and_the_completion():
    class Fragile(SpyGame):
        def step(self, player, completion):
            if len(completion) > 1000:
                raise ValueError("too long")
            return super().step(player, completion)

    cursor = ImageCursor(image_source("clevr_toy"), rank=0, world=1)
    game = Fragile(SpyConfig(), seed=0, images=cursor.draw)
    with pytest.raises(PluginError, match=r"Game 'spy' \(.*Fragile\) in step\(player=\d, 'xxx.*\(5000 chars\)'\) raised ValueError: too long"):
        play([game], ScriptedPolicy(lambda move: "x" * 5000))


def test_the_teacher_policy_plays_as_play_teacher_and_names_a_bad_move():
    source = image_source("clevr_toy")
    facts = Facts.of(source)
    cursor = ImageCursor(source, rank=0, world=1)
    game = SpyGame(SpyConfig(), seed=4, images=cursor.draw)
    taught = play_teacher(game, SpyGame.teacher, facts, random.Random(1))
    cursor = ImageCursor(source, rank=0, world=1)
    again = SpyGame(SpyConfig(), seed=4, images=cursor.draw)
    moved = list(play_moves([again], TeacherPolicy(SpyGame.teacher, facts, random.Random(1))))
    assert [m.generation.text for m in moved] == [t.move for t in taught]
    assert again.episode() == game.episode()
    assert all(t.action.kind != "invalid" for t in again.episode().turns)

    class Silent:
        def act(self, game, player, facts, rng):
            return None

        def clue_truth(self, game, player, completion, facts):
            return None

    cursor = ImageCursor(source, rank=0, world=1)
    with pytest.raises(TypeError, match=r"Game 'spy' .* teacher.act\(player=\d\) returned None, not a str"):
        play([SpyGame(SpyConfig(), seed=0, images=cursor.draw)], TeacherPolicy(Silent(), facts, random.Random(0)))


class Engine:
    """A rollout engine that answers from the request's seed: what ``EnginePolicy`` passes."""

    per_request_seeds = True

    def __init__(self):
        self.batches = []

    def generate(self, observations, seeds=None):
        self.batches.append(len(observations))
        return [Generation(f"<answer>{s % 7}</answer>", (s % 11, 1), 3) for s in seeds]


def test_an_engine_is_a_policy_with_one_generate_call_per_tick():
    engine = Engine()
    assert isinstance(as_policy(engine), EnginePolicy) and as_policy(engine).seeded
    torch.manual_seed(0)
    rollout = play(spy_games(3), engine)
    ticks = max(len(e.turns) for e in rollout.episodes)  # clue turns one at a time, then a vote tick
    assert len(engine.batches) < sum(len(e.turns) for e in rollout.episodes) and engine.batches[0] == 3
    assert rollout.tokens == 2 * sum(len(e.turns) for e in rollout.episodes)
    assert len(engine.batches) <= ticks
    unseeded = EnginePolicy(engine, seeded=False)
    assert not unseeded.seeded
