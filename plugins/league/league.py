"""``vzframe league RUN_DIR``: a run's checkpoints play each other, and each gets a rating.

The players are the run's base model (step 0) and every intact checkpoint. For every ordered
pair (A, B) and every role R of the game, A plays R and B every other seat, on the same
held-out games (the image source re-seeded with ``seed``; ``evaluate.play_matchup``, so every
seat samples from its own seed whoever plays the others). Who won each game comes from the
game, through its ``outcome`` staticmethod: each role's result in [0, 1].

Ratings are fitted with OpenSkill's Plackett-Luce model: each game is a match between two
teams, A with a pseudo-player for the roles A played, and B with one for the roles B played.
The pseudo-players absorb the advantage of a role (a spy is caught more often than not), so
a model's rating says how it plays across roles. Games are rated in a fixed interleaved
order (game 1 of every pairing, then game 2, ...), so the ratings are reproducible and no
pairing is rated last. A rating mixes the roles; ``by_role`` keeps them apart: each model's
mean result in each role, over every opponent and against the base alone. ``league.json``
holds the ratings, the results by role, each pairing's mean result with its standard error,
and the settings; ``league.svg`` charts rating over step, which
``vzframe report`` shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vzframe.config import ConfigError

LEAGUE_SEED = 2000
"""Seed of the league's games and pictures: not the run's (0), not ``vzframe eval``'s (1000)."""
LEAGUE_GAMES = 16


def outcome(game_cls: type, pm: Any, episode: Any, roles: Sequence[str]) -> dict[str, float]:
    """Each role's result in ``episode``: the game's ``outcome`` (or the one plugin whose
    ``game_outcome`` hook knows the game)."""
    from vzframe.gamespec import outcome_of

    results = outcome_of(game_cls, pm, episode)
    if not results:
        raise ConfigError(
            f"No plugin reports who won a {episode.game!r} game. The game needs an `outcome` staticmethod "
            "(docs/plugins.md): each role's result in [0, 1]."
        )
    if len(results) > 1:
        raise ConfigError(f"{len(results)} plugins report the outcome of a {episode.game!r} game; keep one.")
    result = results[0]
    if not isinstance(result, dict) or not set(roles) <= set(result) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in result.values()
    ):
        raise ConfigError(
            f"game_outcome for a {episode.game!r} game returned {result!r}: it must map each role "
            f"({', '.join(roles)}) to a number in [0, 1]."
        )
    return {role: float(result[role]) for role in roles}


def pairings(players: Sequence[str], roles: Sequence[str]) -> list[tuple[str, ...]]:
    """Each seating: ``seating[i]`` plays ``roles[i]``. For every ordered pair (A, B) and role
    R, A plays R and B the others; seatings that come out alike are played once.

    >>> pairings(["a", "b"], ["spy", "citizen"])
    [('a', 'b'), ('b', 'a')]
    """
    out: dict[tuple[str, ...], None] = {}
    for a in players:
        for b in players:
            if a != b:
                for r in range(len(roles)):
                    out[tuple(a if i == r else b for i in range(len(roles)))] = None
    return list(out)


def rate(results: list[tuple[tuple[str, ...], list[dict[str, float]]]], roles: Sequence[str], players: Sequence[str]) -> dict[str, Any]:
    """OpenSkill (Plackett-Luce) ratings of ``players`` from each seating's game results, in
    the interleaved order of the module docstring; with a pseudo-player per set of roles."""
    from openskill.models import PlackettLuce

    model = PlackettLuce()
    ratings = {p: model.rating(name=p) for p in players}
    sides: dict[str, Any] = {}
    for g in range(max((len(r) for _, r in results), default=0)):
        for seating, games in results:
            if g >= len(games):
                continue
            teams = sorted(set(seating), key=seating.index)
            side = {p: "+".join(r for r, q in zip(roles, seating) if q == p) for p in teams}
            for name in side.values():
                sides.setdefault(name, model.rating(name=name))
            score = {p: max(games[g][r] for r, q in zip(roles, seating) if q == p) for p in teams}
            order = sorted({-v for v in score.values()})
            rated = model.rate([[ratings[p], sides[side[p]]] for p in teams], ranks=[order.index(-score[p]) for p in teams])
            for p, (player, role_side) in zip(teams, rated):
                ratings[p], sides[side[p]] = player, role_side
    as_dict = lambda r: {"mu": r.mu, "sigma": r.sigma, "ordinal": r.ordinal()}  # noqa: E731
    return {"players": {p: as_dict(r) for p, r in ratings.items()}, "roles": {n: as_dict(r) for n, r in sides.items()}}


def _mean_se(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) if len(values) > 1 else 0.0
    return {"mean": mean, "se": se, "games": len(values)}


def by_role(
    results: list[tuple[tuple[str, ...], list[dict[str, float]]]], roles: Sequence[str], players: Sequence[str], base: str
) -> dict[str, dict[str, Any]]:
    """Each player's results per role: ``all`` (its mean result in that role over the games of
    every seating that gives it the role, ± the standard error over those games) and ``vs_base``
    (the seating where ``base`` plays every other seat; None for the base itself).

    >>> r = by_role([(("a", "b"), [{"spy": 1.0, "citizen": 0.0}] * 2), (("b", "a"), [{"spy": 1.0, "citizen": 0.0}] * 2)],
    ...             ["spy", "citizen"], ["a", "b"], "a")
    >>> r["b"]["spy"]["all"]["mean"], r["b"]["citizen"]["vs_base"]["mean"], r["a"]["spy"]["vs_base"]
    (1.0, 0.0, None)
    """
    out: dict[str, dict[str, Any]] = {}
    for player in players:
        out[player] = {}
        for i, role in enumerate(roles):
            seatings = [(seating, games) for seating, games in results if seating[i] == player]
            pooled = [g[role] for _, games in seatings for g in games]
            against = [g[role] for seating, games in seatings for g in games
                       if player != base and all(q == base for j, q in enumerate(seating) if j != i)]  # fmt: skip
            out[player][role] = {"all": _mean_se(pooled) if pooled else None, "vs_base": _mean_se(against) if against else None}
    return out


def league(run_dir: str | Path, *, games: int = LEAGUE_GAMES, seed: int = LEAGUE_SEED) -> dict[str, Any]:
    """Play the league of the run in ``run_dir`` (module docstring); write and return ``league.json``."""
    from vzframe import checkpoint
    from vzframe.config import load_config
    from vzframe.evaluate import play_matchup
    from vzframe.rollout.hf import HFEngine
    from vzframe.runtime import resolve, resolve_model
    from vzframe.train.trainer import load_model, quiet_libraries

    run = Path(run_dir).expanduser().resolve()
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} holds no run (no config.yaml). Give the output_dir of a `vzframe run`.")
    if games < 2:
        raise ConfigError(f"league: --games must be at least 2 (for a standard error); got {games}.")
    checkpoints = checkpoint.intact(run)
    if not checkpoints:
        raise ConfigError(
            f"{run} has no intact checkpoint to play against its base model. Train with checkpoint_every > 0; "
            "keep several with keep_last=N."
        )
    config = load_config(run / "config.yaml", [])
    setup = resolve(config)
    quiet_libraries()
    from transformers import AutoProcessor

    base_path = resolve_model(setup)
    processor = AutoProcessor.from_pretrained(base_path)
    paths = {"step 0": base_path} | {f"step {c.step}": str(c.path / "model") for c in checkpoints}
    engines = {name: HFEngine(load_model(path, bf16=False).eval(), processor, config.rollout) for name, path in paths.items()}
    base = engines["step 0"]
    # the roles that play in these games (the spy game's judges only with decision=judge), in the game's order
    acting = {t.role for e in play_matchup(setup, {}, base, games=games, seed=seed) for t in e.turns}
    roles = [r.name for r in setup.game_cls.roles if r.name in acting] + sorted(acting - {r.name for r in setup.game_cls.roles})
    results = []
    for seating in pairings(list(paths), roles):
        episodes = play_matchup(setup, dict(zip(roles, (engines[p] for p in seating))), base, games=games, seed=seed)
        results.append((seating, [outcome(setup.game_cls, setup.pm, e, roles) for e in episodes]))
    ratings = rate(results, roles, list(paths))
    report = {
        "run": str(run), "game": setup.game_name, "roles": roles, "games": games, "seed": seed,
        "players": [{"name": p, "step": int(p.split()[1]), "path": paths[p], **ratings["players"][p]} for p in paths],
        "role_sides": ratings["roles"],
        "by_role": by_role(results, roles, list(paths), "step 0"),
        "pairings": [_pairing(seating, roles, res) for seating, res in results],
    }  # fmt: skip
    (run / "league.json").write_text(json.dumps(report, indent=1))
    (run / "league.svg").write_text(chart(report))
    return report


def _pairing(seating: tuple[str, ...], roles: Sequence[str], results: list[dict[str, float]]) -> dict[str, Any]:
    """One seating's mean result per role, with the standard error over games."""
    out: dict[str, Any] = {"seats": dict(zip(roles, seating)), "mean": {}, "se": {}}
    for role in roles:
        summary = _mean_se([r[role] for r in results])
        out["mean"][role], out["se"][role] = summary["mean"], summary["se"]
    return out


def chart(report: dict[str, Any]) -> str:
    """Rating over step: mu, with mu ± sigma dashed (an SVG from the report plugin's charts)."""
    from plugins.report.svg import LINE_COLORS, Series, line_chart

    players = sorted(report["players"], key=lambda p: p["step"])
    xs = [p["step"] for p in players]
    lines = [
        Series("rating (mu)", xs, [p["mu"] for p in players], LINE_COLORS[0]),
        Series("mu + sigma", xs, [p["mu"] + p["sigma"] for p in players], LINE_COLORS[0], dashed=True),
        Series("mu - sigma", xs, [p["mu"] - p["sigma"] for p in players], LINE_COLORS[0], dashed=True),
    ]
    return line_chart(f"League rating over training ({report['games']} games a pairing)", lines)


def league_html(run_dir: Path) -> str:
    """The league section of ``vzframe report``: the rating chart and table, drawn again from
    the numbers of ``league.json`` (a run folder is untrusted: no markup is taken from it).
    Empty when the run has no league, a note when its file cannot be read."""
    from plugins.report.page import esc, fmt, table
    from plugins.report.runs import as_float
    from vzframe.checkpoint import DamagedCheckpoint, read_json

    path = Path(run_dir) / "league.json"
    if not path.exists():
        return ""
    try:
        data = read_json(path)
        players = [
            {"name": str(p["name"]), "step": int(p["step"]), "mu": as_float(p["mu"]), "sigma": as_float(p["sigma"]),
             "ordinal": as_float(p["ordinal"])}
            for p in data["players"]
        ]  # fmt: skip
        if any(p["mu"] is None or p["sigma"] is None for p in players):
            raise ValueError("a rating is not a number")
        games, seed = int(data["games"]), int(data["seed"])
        roles = [str(r) for r in data["roles"]] if "by_role" in data else []
        results = {p["name"]: {r: _html_results(data["by_role"][p["name"]][r]) for r in roles} for p in players} if roles else {}
    except (DamagedCheckpoint, KeyError, TypeError, ValueError) as exc:
        return f'<h2>League</h2><p class="note">league.json could not be read ({esc(exc)}); run `vzframe league` again.</p>'
    rows = [[esc(p["name"]), fmt(p["mu"]), fmt(p["sigma"]), fmt(p["ordinal"])] for p in sorted(players, key=lambda p: p["step"])]
    by_role = ""
    if roles:
        head = ["model", *(f"as {esc(r)}{k}" for r in roles for k in ("", " vs base"))]
        cells = lambda v: "" if v is None else f"{fmt(v[0])} ± {fmt(v[1])}"  # noqa: E731
        role_rows = [[esc(p["name"]), *(cells(results[p["name"]][r][k]) for r in roles for k in (0, 1))]
                     for p in sorted(players, key=lambda p: p["step"])]  # fmt: skip
        by_role = '<p class="note">Mean result by role ± standard error over games: over every opponent, and against the base.</p>'
        by_role += table(head, role_rows)
    svg = chart({"players": players, "games": games})
    return (
        "<h2>League</h2>"
        f'<p class="note">The base model (step 0) and the checkpoints played each other in every role, {games} held-out '
        f"games a pairing (seed {seed}); OpenSkill ratings (<code>vzframe league</code>).</p>"
        f'<div class="card">{svg}</div>' + table(["model", "rating (mu)", "sigma", "ordinal (mu - 3 sigma)"], rows) + by_role
    )


def _html_results(entry: Any) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """(all, vs_base) of one ``by_role`` entry as (mean, se) numbers; ValueError when one is not."""
    from plugins.report.runs import as_float

    def pair(value: Any) -> tuple[float, float] | None:
        if value is None:
            return None
        mean, se = as_float(value["mean"]), as_float(value["se"])
        if mean is None or se is None:
            raise ValueError("a result by role is not a number")
        return mean, se

    return pair(entry["all"]), pair(entry["vs_base"])


def role_table(report: dict[str, Any]) -> Any:
    """Each model's mean result per role (a rich Table): over every opponent, and against the base."""
    from rich.table import Table

    table = Table(title="Results by role: mean result ± standard error over games (all opponents; against the base)")
    table.add_column("model", justify="right")
    for role in report["roles"]:
        table.add_column(f"as {role}", justify="right")
        table.add_column(f"as {role} vs base", justify="right")
    cell = lambda r: "" if r is None else f"{r['mean']:.3f} ± {r['se']:.3f}"  # noqa: E731
    for p in sorted(report["players"], key=lambda p: p["step"]):
        results = report["by_role"][p["name"]]
        table.add_row(p["name"], *[cell(results[role][k]) for role in report["roles"] for k in ("all", "vs_base")])
    return table


def print_league(report: dict[str, Any]) -> None:
    """The ratings, best first, and each pairing's result for its first role."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"{report['run']}: league of {len(report['players'])} models, {report['games']} games a pairing (seed {report['seed']})")
    for column in ("model", "rating (mu)", "sigma", "ordinal (mu - 3 sigma)"):
        table.add_column(column, justify="right")
    for p in sorted(report["players"], key=lambda p: -p["mu"]):
        table.add_row(p["name"], f"{p['mu']:.2f}", f"{p['sigma']:.2f}", f"{p['ordinal']:.2f}")
    console.print(table, highlight=False)
    if "by_role" in report:
        console.print(role_table(report), highlight=False)
    first = report["roles"][0]
    rows = Table(title=f"Results: mean {first} result ± standard error over games")
    for column in report["roles"]:
        rows.add_column(column)
    rows.add_column(f"{first} result", justify="right")
    for p in report["pairings"]:
        rows.add_row(*[p["seats"][r] for r in report["roles"]], f"{p['mean'][first]:.3f} ± {p['se'][first]:.3f}")
    console.print(rows, highlight=False)
