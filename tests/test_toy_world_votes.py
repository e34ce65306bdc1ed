"""examples/toy_world_votes.py on the shipped spy base, 3 held-out games: the teacher answers
every one of the model's votes on a copy of the same game, so both columns judge the same
clues, and the teacher's answers are always valid: a seat or N/A (on the model's clues, not
always the spy's seat: a citizen's false clue singles that citizen out)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_teacher_votes_on_the_models_own_games():
    result = subprocess.run([sys.executable, "examples/toy_world_votes.py", "plugins/toy_world/model", "--games", "3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| .* \(`(\w+)`\) \| (\S+) ± \S+ \| (\S+) ± \S+ \|$", result.stdout, re.M)}
    assert {"clue_true", "acc", "na", "invalid", "spy_caught"} <= set(rows), result.stdout
    assert rows["clue_true"][0] == rows["clue_true"][1]  # the same games: the same clues
    assert float(rows["invalid"][1]) == 0.0  # the teacher always answers a seat or N/A
