"""Who limits a toy base's votes: its voters, or the clues they judge? (docs/toy-world.md,
"Why a longer look stage").

    python examples/toy_world_votes.py plugins/toy_world/model                 # the shipped spy base
    python examples/toy_world_votes.py MODEL_DIR --game games.odd_one_out --games 64

Plays the held-out games of ``vzframe model heldout`` (the same seeds, pictures and sampling,
so the model's figures are the stamp's), with every seat the model. At each of the model's
votes (turns of stage ``--stage``) it also asks the game's teacher what it would answer in
the same state, on a copy of the game, and scores those answers as the game scores votes.
So the second column is a perfect voter judging the model's own clues: when it is no better
than the model's voters, the clues are what limits the votes, not the voting.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a toy model directory, e.g. plugins/toy_world/model")
    parser.add_argument("--game", default="games.spy")
    parser.add_argument("--games", type=int, default=None, help="held-out games (default: the stamp's 128)")
    parser.add_argument("--stage", default="decision", help="the stage whose turns are votes (default: decision)")
    args = parser.parse_args()

    import torch
    from transformers import AutoProcessor

    from plugins.toy_world.heldout import BATCH_GAMES, HELDOUT_GAMES, HELDOUT_SEED, LABELS, Judge, Measured, measure, new_games
    from plugins.toy_world.world import toy_world
    from vzframe.config import RolloutConfig
    from vzframe.evaluate import jackknife_se
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.play import play
    from vzframe.rollout.policy import EnginePolicy
    from vzframe.train.trainer import load_model, quiet_libraries

    world = toy_world(args.game, None)
    if not world.describes:
        raise SystemExit(f"{world.images!r} pictures cannot be described, so the teacher cannot judge them; pick a source with describe().")
    teacher, seed, games = world.teacher, HELDOUT_SEED, args.games or HELDOUT_GAMES
    facts = world.facts(world.source(seed))
    rng = random.Random(f"votes:{seed}")
    asked: dict[tuple[int, int], list] = {}  # (game index, player) -> the teacher's actions, in turn order

    class TeacherVotes(Judge):
        def acted(self, move, generation) -> None:  # type: ignore[no-untyped-def]
            super().acted(move, generation)
            if move.observation.stage == args.stage:
                shadow = copy.deepcopy(move.game)  # the state the model voted in; the real game goes on untouched
                turn = shadow.step(move.player, teacher.act(shadow, move.player, facts, rng))
                asked.setdefault((move.index, move.player), []).append(turn.action)

    quiet_libraries()
    engine = HFEngine(load_model(args.model, bf16=False).eval(), AutoProcessor.from_pretrained(args.model), RolloutConfig())
    policy = EnginePolicy(engine, seeded=False)  # as the stamp's held-out games were played
    torch.manual_seed(seed)
    live, model_records, teacher_records = new_games(world, games, seed), [], []
    judge = lambda game, player, completion: teacher.clue_truth(game, player, completion, facts)  # noqa: E731
    for start in range(0, games, BATCH_GAMES):
        asked.clear()
        referee = TeacherVotes(len(live[start : start + BATCH_GAMES]), judge)
        rollout = play(live[start : start + BATCH_GAMES], policy, referee=referee)
        for i, (episode, truths) in enumerate(zip(rollout.episodes, referee.truths)):
            model_records.append(Measured(episode, tuple(truths)))
            turns = [
                dataclasses.replace(t, action=asked[(i, t.player)].pop(0)) if t.stage == args.stage else t for t in episode.turns
            ]
            teacher_records.append(Measured(dataclasses.replace(episode, turns=tuple(turns)), tuple(truths)))

    labels = {**LABELS, **{k: m.label for k, m in world.game_cls.metrics.items()}}
    columns = {"the model's votes": model_records, "the teacher's votes on the same games": teacher_records}
    figures = {name: (measure(world, recs), jackknife_se(functools.partial(measure, world), recs)) for name, recs in columns.items()}
    print(f"{games} held-out games of {world.game_name} (seed {seed}), every seat {args.model}; "
          f"votes: turns of stage {args.stage!r}; ± one standard error (jackknife over games)\n")
    print("| figure | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for key in figures["the model's votes"][0]:
        if key.startswith("valid"):
            continue
        cells = [f"{f[key]:.3f} ± {se.get(key, float('nan')):.3f}" if key in f else "-" for f, se in figures.values()]
        print(f"| {labels.get(key, key)} (`{key}`) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
