"""Probe cost: scoring N probe items against playing N held-out game turns, on the toy model.

    python bench/probes.py [--items 500] [--repeats 3] [--model plugins/toy_world/model]

Both sides run as their commands run them, with the same model and the toy world's rollout
settings (``examples/toy-world.yaml``: temperature 0.8, at most 32 new tokens):

- **probes**: ``--items`` items spread over the four CLEVR probes on ``clevr_toy`` pictures,
  answered greedily through the transformers engine in batches of 32 (``vzframe probe``'s
  defaults), and the same items by ``--score likelihood``;
- **game turns**: held-out spy games as ``vzframe eval`` plays them (``play_matchup``: every
  game alive at once, one batched generate per tick), enough games for ``--items`` turns; the
  time is scaled to exactly ``--items`` turns.

The two alternate ``--repeats`` times; each repeat gives a probe/turns ratio, printed as
min / median / max. The claim (issue 28): scoring N items costs at most N held-out turns
(ratio <= 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from vzframe import dist

dist.configure_threads()
import torch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="plugins/toy_world/model")
    args = parser.parse_args()

    from transformers import AutoProcessor

    from vzframe.config import RunConfig, load_config
    from vzframe.evaluate import play_matchup
    from vzframe.plugins import build_registry, make_plugin_manager
    from vzframe.probes.score import answer, likelihood, prepare
    from vzframe.rollout.hf import HFEngine
    from vzframe.runtime import resolve
    from vzframe.train.trainer import load_model, quiet_libraries

    quiet_libraries()
    config = load_config("examples/toy-world.yaml", [f"model={os.path.abspath(args.model)}"])
    assert isinstance(config, RunConfig)
    setup = resolve(config)
    processor = AutoProcessor.from_pretrained(args.model)
    model = load_model(args.model, bf16=False).eval()
    engine = HFEngine(model, processor, config.rollout)
    greedy = HFEngine(model, processor, config.rollout.model_copy(update={"temperature": 0.0}))

    registry = build_registry(make_plugin_manager())
    clevr = {n: p for n, p in registry.probes.items() if n.startswith("clevr.")}
    sets = prepare(clevr, n=-(-args.items // len(clevr)), seed=0, sources=registry.image_sources, run_source=setup.image_source)
    while sum(len(s.items) for s in sets) > args.items:  # exactly --items
        biggest = max(sets, key=lambda s: len(s.items))
        biggest.items.pop()
    n_items = sum(len(s.items) for s in sets)

    turns_per_game = len([t for e in play_matchup(setup, {}, engine, games=4, seed=7) for t in e.turns]) / 4
    games = max(1, round(args.items / turns_per_game))
    print(f"toy model {args.model}; {n_items} probe items (4 CLEVR probes); {games} held-out games for about "
          f"{args.items} turns; torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")

    rows = []
    for repeat in range(args.repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            answer(greedy, sets, batch_size=32)
        t_probe = time.perf_counter() - t0
        t0 = time.perf_counter()
        likelihood(model, processor, sets)
        t_like = time.perf_counter() - t0
        t0 = time.perf_counter()
        played = play_matchup(setup, {}, engine, games=games, seed=1000 + repeat)
        t_games = time.perf_counter() - t0
        turns = sum(len(e.turns) for e in played)
        t_turns = t_games * args.items / turns
        rows.append((t_probe / t_turns, t_like / t_turns))
        print(f"repeat {repeat}: probes (generate) {t_probe:.1f} s, probes (likelihood) {t_like:.1f} s, "
              f"{turns} game turns {t_games:.1f} s -> {t_turns:.1f} s per {args.items} turns; "
              f"ratios {rows[-1][0]:.2f} / {rows[-1][1]:.2f}")
    for i, what in enumerate(("generate", "likelihood")):
        r = sorted(x[i] for x in rows)
        print(f"probes ({what}) / held-out turns, {args.items} each: min {r[0]:.2f}, median {statistics.median(r):.2f}, "
              f"max {r[-1]:.2f} over {len(r)} repeats (claim <= 1: {'held' if r[-1] <= 1 else 'not held'})")


if __name__ == "__main__":
    main()
