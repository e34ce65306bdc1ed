"""Plugin ``plugins.league``: the ``vzframe league`` command.

    vzframe league RUN_DIR [--games N] [--seed S]

A run's base model and checkpoints play each other in every role on the same held-out
games; OpenSkill fits a rating to each (``league.py``), written to ``RUN_DIR/league.json``
with a rating-over-step chart (``league.svg``) that ``vzframe report`` shows. Who won a game
comes from the game (its ``outcome`` staticmethod), so the league knows no game.
"""

from __future__ import annotations

import argparse

from vzframe.hookspecs import hookimpl


def _league(args: argparse.Namespace) -> int:
    from plugins.league.league import league, print_league

    print_league(league(args.run_dir, games=args.games, seed=args.seed))
    return 0


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    from plugins.league.league import LEAGUE_GAMES, LEAGUE_SEED

    p = subparsers.add_parser(
        "league",
        help="rate a run's checkpoints by playing them against each other: vzframe league RUN_DIR",
        description=(
            "The run's base model and every intact checkpoint play each other, each pair in every role, on the same "
            "held-out games; OpenSkill (Plackett-Luce) rates them. Writes RUN_DIR/league.json and league.svg "
            "(rating over step), shown by `vzframe report`. A run keeps its checkpoints with checkpoint_every=K "
            "and keep_last=N; n models play n(n-1) pairings of --games games."
        ),
    )
    p.add_argument("run_dir", help="the run's output directory")
    p.add_argument("--games", type=int, default=LEAGUE_GAMES, help=f"games per pairing (default {LEAGUE_GAMES})")
    p.add_argument("--seed", type=int, default=LEAGUE_SEED, help=f"seed of the games and their pictures (default {LEAGUE_SEED})")
    p.set_defaults(func=_league)
