"""How step time and peak memory grow with the number of players, clue rounds and
concurrent games. Each point is a short real run (spy game, tiny model unless --model) in
its own process; every figure is reported as a ratio to the reference point (3 citizens,
2 clue rounds, 4 games) measured in the same invocation.

    python bench/scaling.py [--steps 3] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"game.num_citizens": 3, "game.clue_rounds": 2, "games_per_step": 4}
AXES = {
    "game.num_citizens": [2, 3, 5, 7],
    "game.clue_rounds": [1, 2, 3, 4],
    "games_per_step": [1, 4, 16],
}

CHILD = """
import json, resource, sys
from vzframe.config import load_config
from vzframe.runtime import train
out = train(load_config(None, sys.argv[1:], ["games.spy", "schedulers.decision_only"]), display=False)
rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
print("RESULT", json.dumps({"rows": rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def point(settings: dict, steps: int, max_new_tokens: int, tmp: Path) -> dict:
    out = tmp / "-".join(f"{k}{v}" for k, v in settings.items())
    args = [f"{k}={v}" for k, v in settings.items()] + [
        f"steps={steps}", f"rollout.max_new_tokens={max_new_tokens}", "checkpoint_every=0", "save_images=false", f"output_dir={out}",
    ]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    rows = result["rows"][1:]  # the first step includes warm-up
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    turns = [t for ep in episodes for t in ep["turns"]]
    return {
        "step_s": statistics.mean(r["time_step"] for r in rows),
        "generate_s": statistics.mean(r["time_generate"] for r in rows),
        "train_s": statistics.mean(r["time_train"] for r in rows),
        "turns_per_game": len(turns) / len(episodes),
        "prompt_chars": statistics.mean(len(t["prompt"]) for t in turns),
        "peak_rss_mb": result["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = point(REFERENCE, args.steps, args.max_new_tokens, Path(tmp))
        print(f"reference {REFERENCE}: step {ref['step_s']:.2f} s, peak RSS {ref['peak_rss_mb']:.0f} MB")
        print(f"{'setting':28} {'step':>7} {'x ref':>6} {'gen x':>6} {'train x':>7} {'turns/game':>10} {'prompt chars':>12} {'RSS MB':>7}")
        for key, values in AXES.items():
            for value in values:
                p = ref if REFERENCE[key] == value else point({**REFERENCE, key: value}, args.steps, args.max_new_tokens, Path(tmp))
                print(
                    f"{key + '=' + str(value):28} {p['step_s']:7.2f} {p['step_s'] / ref['step_s']:6.2f} "
                    f"{p['generate_s'] / ref['generate_s']:6.2f} {p['train_s'] / ref['train_s']:7.2f} "
                    f"{p['turns_per_game']:10.1f} {p['prompt_chars']:12.0f} {p['peak_rss_mb']:7.0f}"
                )


if __name__ == "__main__":
    main()
