"""``vzframe report`` and ``vzframe compare`` (plugin ``plugins.report``), on run
directories written by hand: no model, no Chromium."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from plugins.report.compare import compare_charts
from plugins.report.page import esc
from plugins.report.runs import label_runs, load_run
from plugins.report.svg import LINE_COLORS, Segment, Series, line_chart, nice_ticks, segments
from plugins.report.transcripts import parse_steps
from vzframe.cli import build_parser, main
from vzframe.config import ConfigError
from vzframe.rundir import image_filename

PLUGINS = ["plugins.report"]
EVIL = "<script>alert(1)</script>"
STEPS = 12


def phase_of(step: int) -> str:
    return "decision" if step < 4 or step >= 8 else "clue"


SPY_META = {
    "game": "spy", "model": "toy-world", "roles": ["spy", "citizen", "judge"],
    "metrics": {"acc": {"label": "vote accuracy", "headline": True}, "na": {"label": "N/A rate", "headline": True},
                "invalid": {"label": "invalid votes", "headline": False}, "clue_valid": {"label": "valid clues", "headline": False},
                "spy_caught": {"label": "spy caught", "headline": True}},
}  # fmt: skip
"""What config.yaml's metadata says of a spy run (vzframe/runtime.py ``write_config``)."""


def make_run(path: Path, *, scheduler: str = "hysteresis", final_acc: float = 0.75, steps: int = STEPS, legacy: bool = False) -> Path:
    """A small run directory as `vzframe run` writes it: two games a step, phases switching
    at steps 4 and 8, one hostile completion, two pictures on disk. ``legacy``: as runs were
    written before config.yaml recorded the game's metrics, roles and model, and turns ``trained``."""
    path.mkdir(parents=True)
    meta = {"version": "0.1.0", "game": "spy", "scheduler": scheduler, **({} if legacy else SPY_META)}
    config = {"vzframe": meta, "seed": 0, "steps": steps, "games_per_step": 2}
    (path / "config.yaml").write_text("# vzframe: test\n" + yaml.safe_dump(config, sort_keys=False))
    (path / "images").mkdir()
    picture, blank = 'shapes:0:"1"<b>', "blank:#ffffff:56x56"
    Image.new("RGB", (56, 56), "red").save(path / "images" / image_filename(picture))
    Image.new("RGB", (56, 56), "white").save(path / "images" / image_filename(blank))
    with open(path / "metrics.jsonl", "w") as metrics, open(path / "episodes.jsonl", "w") as episodes:
        for step in range(steps):
            acc = final_acc if step == steps - 1 else 0.5 + 0.4 * math.sin(step)
            row = {"step": step, "phase": phase_of(step), "acc": acc, "acc_ema": 0.5, "na": 0.1, "na_ema": 0.1,
                   "spy_caught": 0.5, "reward_spy": -0.1 * step, "reward_citizen": 0.05 * step, "baseline_spy": -0.05,
                   "baseline_citizen": 0.02, "loss": 1.0 / (step + 1), "kl": 0.001 * step, "reward_<svg onload=x()>": 1.0}  # fmt: skip
            if not legacy:
                row.update(invalid=0.0, clue_valid=1.0, steps_in_phase=float(step % 4 + 1), lr=1e-5, time_step=1.0)
            metrics.write(json.dumps(row) + "\n")
            for game in range(2):
                turns = [
                    {"index": 0, "player": 1, "role": "citizen", "stage": "clue", "prompt": "[system] Rules <b>.\n[user] <image>Describe <img src=x>",
                     "images": [picture], "completion": EVIL if step == 0 else "a red square\x03", "action": {"kind": "clue", "value": "red", "reason": ""},
                     "reward": 0.1, "advantage": 0.2},
                    {"index": 1, "player": 2, "role": "spy", "stage": "clue", "prompt": "[user] <image>Describe", "images": [blank],
                     "completion": "white?", "action": {"kind": "invalid", "value": None, "reason": "no <answer> tag"}, "reward": -0.1, "advantage": None},
                    {"index": 2, "player": 1, "role": "citizen", "stage": "decision", "prompt": "[user] vote", "images": [picture],
                     "completion": "<answer>2</answer>", "action": {"kind": "vote", "value": 2, "reason": ""}, "reward": 1.0, "advantage": 0.0},
                ]  # fmt: skip
                if not legacy:
                    for turn in turns:
                        turn["trained"] = turn["stage"] == phase_of(step)
                episode = {"step": step, "phase": phase_of(step), "rank": 0, "game": "spy", "seed": 100 * step + game,
                           "roles": ["citizen", "spy"], "turns": turns, "info": {"spy": 2, "image": picture}}  # fmt: skip
                episodes.write(json.dumps(episode) + "\n")
    return path


def report(run: Path, *args: str) -> str:
    assert main(["report", str(run), *args], plugins=PLUGINS) == 0
    out = Path(args[args.index("--out") + 1]) if "--out" in args else run / "report.html"
    return out.read_text(encoding="utf-8")


def test_register_commands_adds_report_and_compare():
    parser = build_parser(PLUGINS)
    assert "report" in parser.format_help() and "compare" in parser.format_help()
    args = parser.parse_args(["compare", "a", "b", "--out", "x.html"])
    assert args.run_dirs == ["a", "b"] and args.out == "x.html" and callable(args.func)


def chart_titles(html: str) -> list[str]:
    """The titles of the curves, in page order (the phase timeline comes before them)."""
    titles = re.findall(r'<svg [^>]*aria-label="([^"]*)"', html)
    assert titles[0] == "phase timeline"
    return titles[1:]


def legend(html: str, title: str) -> list[str]:
    """The names in the legend of the chart ``title``."""
    svg = html[html.index(f'aria-label="{title}"') :].split("</svg>")[0]
    return re.findall(r"<title>([^<]*)</title>", svg)


def test_report_has_a_chart_per_metric_group_and_the_phase_switches(tmp_path):
    html = report(make_run(tmp_path / "run"))
    assert chart_titles(html) == [
        "Vote accuracy", "N/A rate", "Game outcomes", "Reward per role", "Baseline per role", "Loss",
        "KL to the reference model", "Other logged statistics",
    ]  # fmt: skip
    assert legend(html, "Vote accuracy")[:2] == ["vote accuracy", "acc_ema"]  # the declared label; the scheduler's EMA dashed
    assert legend(html, "Game outcomes")[:3] == ["spy caught", "invalid votes", "valid clues"]  # headline first
    assert legend(html, "Reward per role")[:2] == ["spy", "citizen"]  # the game's role names, in its order
    assert legend(html, "Other logged statistics")[0] == "steps_in_phase"  # the scheduler's own; not lr, not timings
    assert "step 4: decision → clue" in html and "step 8: clue → decision" in html
    assert "2 switches" in html


def test_report_of_a_run_written_before_metadata_looks_as_it_did(tmp_path):
    html = report(make_run(tmp_path / "run", legacy=True))
    assert chart_titles(html) == [
        "Vote accuracy", "N/A rate", "Game outcomes", "Reward per role", "Baseline per role", "Loss",
        "KL to the reference model",
    ]  # fmt: skip
    assert legend(html, "Game outcomes")[0] == "spy caught" and "model not recorded" in html
    assert "trained-mark" not in html.split("</style>")[-1] and 'class="untrained"' not in html


def test_report_header_names_the_model_the_run_used(tmp_path):
    html = report(make_run(tmp_path / "run"))
    assert "model toy-world" in html and "tiny default" not in html


def test_report_plots_another_games_declared_metrics_and_its_schedulers_statistics(tmp_path):
    run = tmp_path / "odd"
    run.mkdir()
    meta = {"game": "odd_one_out", "scheduler": "bandit", "model": "/models/x", "roles": ["odd", "common"],
            "metrics": {"acc": {"label": "vote accuracy", "headline": False}, "odd_found": {"label": "odd one found", "headline": True}}}  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump({"vzframe": meta, "steps": 3}))
    rows = [{"step": s, "phase": "vote", "acc": 0.5, "odd_found": 0.1 * s, "arm_value": 2.5 * s, "reward_common": 0.1, "reward_odd": -0.1,
             "loss": 1e-7, "kl": 0.0, "tokens_per_s": 9.0, "time_step": 1.0} for s in range(3)]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = report(run, "--max-games", "0")
    assert chart_titles(html) == ["Game outcomes", "Reward per role", "Loss", "KL to the reference model", "Other logged statistics"]
    assert legend(html, "Game outcomes")[:2] == ["odd one found", "vote accuracy"]  # headline first
    assert legend(html, "Reward per role")[:2] == ["odd", "common"] and legend(html, "Other logged statistics")[0] == "arm_value"
    assert "spy" not in html and "EMA" not in html and "model /models/x" in html
    table = html[html.index('<table class="figures">') : html.index("</table>")]
    assert "odd one found" in table and "reward: odd" in table and "1.00e-07" in table


def test_transcripts_mark_the_turns_the_step_trained_on(tmp_path):
    html = report(make_run(tmp_path / "run"), "--steps", "0,4")
    step0 = html[html.index('id="step-0"') : html.index('id="step-4"')]  # a decision step: clue turns untrained
    assert step0.count('<tr data-stage="decision" class="trained">') == 2 and step0.count('<tr data-stage="clue" class="untrained">') == 4
    assert step0.count('<span class="trained-mark"') == 2 and 'title="not trained: computed' in step0
    step4 = html[html.index('id="step-4"') :]
    assert step4.count('<tr data-stage="clue" class="trained">') == 4
    assert "vote accuracy" in step0.split("</summary>")[0]  # the step's summary names the headline metrics by label


def test_report_escapes_model_output_and_every_run_string(tmp_path):
    html = report(make_run(tmp_path / "run"), "--steps", "0,1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html and "&lt;img src=x&gt;" in html
    assert "<svg onload" not in html and "reward: &lt;svg onload=x()&gt;" in html and "<title>&lt;svg onload=x()&gt;</title>" in html
    assert 'shapes:0:&quot;1&quot;&lt;b&gt;' in html and "no &lt;answer&gt; tag" in html
    assert "\x03" not in html and "\u2403" in html  # control characters made visible
    assert html.count("<script>") == 1  # the page's own static script, admitted by its hash
    assert "script-src 'sha256-" in html and "default-src 'none'" in html


def test_report_embeds_each_picture_once_as_a_data_uri(tmp_path):
    html = report(make_run(tmp_path / "run"))
    assert html.count("data:image/") == 2  # two distinct pictures, however often they were seen
    assert 'class="thumb im0' in html and 'class="thumb im1' in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # nothing fetched from the network


def test_report_max_games_and_steps_choose_the_transcripts(tmp_path):
    run = make_run(tmp_path / "run")
    html = report(run, "--max-games", "4", "--out", str(tmp_path / "r.html"))
    assert html.count('<div class="game">') == 4
    assert 'id="step-0"' in html and f'id="step-{STEPS - 1}"' in html  # first and last step
    html = report(run, "--steps", "3,5-6", "--out", str(tmp_path / "r.html"))
    assert re.findall(r'id="step-(\d+)"', html) == ["3", "5", "6"]
    html = report(run, "--max-games", "0", "--out", str(tmp_path / "r.html"))
    assert '<div class="game">' not in html and "No transcripts embedded" in html


def test_report_bad_steps_spec_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(make_run(tmp_path / "run")), "--steps", "1,x"], plugins=PLUGINS) == 2
    assert "--steps '1,x'" in capsys.readouterr().err


def test_report_steps_ranges_are_never_expanded_and_bad_ranges_fail_with_exit_code_2(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    html = report(run, "--steps", "10-99999999999")  # a set of its steps would take minutes and gigabytes
    assert re.findall(r'id="step-(\d+)"', html) == ["10", "11"]
    html = report(run, "--steps", "3,40-50,60")
    assert re.findall(r'id="step-(\d+)"', html) == ["3"]
    assert "the run has no step 40-50,60" in capsys.readouterr().err
    for spec, message in [("5-1", "runs backwards"), ("-2", "is negative"), ("x", "not a step or a range"),
                          ("40-50,60", "--steps 40-50,60 matches none of the run's 12 steps (it has steps 0 to 11)")]:  # fmt: skip
        (run / "report.html").unlink(missing_ok=True)
        assert main(["report", str(run), "--steps", spec], plugins=PLUGINS) == 2, spec
        err = capsys.readouterr().err
        assert err.startswith("error: --steps ") and message in err and "Traceback" not in err, err
        assert not (run / "report.html").exists()


def test_report_missing_directory_fails_with_exit_code_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")], plugins=PLUGINS) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err


def test_report_directory_without_metrics_fails_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")], plugins=PLUGINS) == 2
    assert "has no metrics.jsonl" in capsys.readouterr().err


def test_report_skips_a_truncated_last_line_with_a_warning(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 12, "phase": "clu')
    with open(run / "episodes.jsonl", "a") as f:
        f.write('{"step": 11, "phase": "decision", "turns": [{"index"')
    html = report(run, "--steps", "11")
    err = capsys.readouterr().err
    assert err.count("warning:") == 2 and "truncated last line" in err
    assert "12 steps (last 11)" in html and "truncated last line" in html
    assert html.count('<div class="game">') == 2  # the complete games of step 11


def test_compare_two_runs_overlays_curves_and_tabulates_final_figures(tmp_path):
    a = make_run(tmp_path / "run-a", scheduler="hysteresis", final_acc=0.75)
    b = make_run(tmp_path / "run-b", scheduler="clue_only", final_acc=0.25, steps=8)
    out = tmp_path / "cmp.html"
    assert main(["compare", str(a), str(b), "--out", str(out)], plugins=PLUGINS) == 0
    html = out.read_text()
    table = html[html.index('<table class="figures">') : html.index("</table>")]
    rows = {r.split("</td>")[0].removeprefix("<td>"): r for r in table.split("<tr>")[3:]}
    assert set(rows) == {"run-a (hysteresis)", "run-b (clue_only)"}
    assert "<td>0.75</td>" in rows["run-a (hysteresis)"] and "<td>12</td>" in rows["run-a (hysteresis)"]
    assert "<td>0.25</td>" in rows["run-b (clue_only)"] and "<td>8</td>" in rows["run-b (clue_only)"]
    assert "Reward: citizen" in html and "Reward: spy" in html
    stacked = html[html.index('aria-label="phase timeline"') :].split("</svg>")[0]
    assert "run-a (hysteresis)" in stacked and "run-b (clue_only)" in stacked


def test_compare_writes_every_chart_as_a_standalone_svg_file(tmp_path):
    import xml.etree.ElementTree as ET

    a = make_run(tmp_path / "run-a", final_acc=0.75)
    b = make_run(tmp_path / "run-b", final_acc=0.25)
    folder = tmp_path / "svg"
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.html"), "--svg", str(folder)], plugins=PLUGINS) == 0
    names = {p.stem for p in folder.glob("*.svg")}
    assert {"acc", "na", "spy_caught", "reward_citizen", "reward_spy", "loss", "kl", "phases"} <= names
    root = ET.parse(folder / "acc.svg").getroot()  # well-formed on its own
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("aria-label") == "Vote accuracy (dashed: EMA)"
    assert "run-b" in (folder / "phases.svg").read_text()


def test_compare_plots_every_declared_metric_and_the_schedulers_statistics(tmp_path):
    a = make_run(tmp_path / "new")
    b = make_run(tmp_path / "old", legacy=True, steps=6)  # written before the metadata: read as the spy game's
    folder = tmp_path / "svg"
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.html"), "--svg", str(folder)], plugins=PLUGINS) == 0
    names = [p.name for p in folder.iterdir()]
    for stem in ("acc", "na", "spy_caught", "invalid", "clue_valid", "steps_in_phase", "reward_spy", "reward_citizen"):
        assert f"{stem}.svg" in names, stem
    assert "reward__svg_onload_x___.svg" in names  # a metric key is made safe as a file name
    spy = (folder / "spy_caught.svg").read_text()
    assert 'aria-label="Spy caught"' in spy and "new (hysteresis)" in spy and "old (hysteresis)" in spy
    html = (tmp_path / "c.html").read_text()
    header = html[html.index('<table class="figures">') :].split("</thead>")[0]
    assert [h for h in re.findall(r'colspan="2">([^<]*)<', header)][:3] == ["vote accuracy", "N/A rate", "spy caught"]


def test_compare_missing_directory_fails_with_exit_code_2(tmp_path, capsys):
    a = make_run(tmp_path / "a")
    assert main(["compare", str(a), str(tmp_path / "gone"), "--out", str(tmp_path / "c.html")], plugins=PLUGINS) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_with_the_same_name_get_distinct_labels(tmp_path):
    runs = [load_run(make_run(tmp_path / p / "run", steps=2)) for p in ("x", "y")] + [load_run(tmp_path / "x" / "run")]
    label_runs(runs)
    assert [r.label for r in runs] == ["x/run (hysteresis)", "y/run (hysteresis)", "x/run (hysteresis) #2"]


def test_report_shows_each_system_message_once_per_game(tmp_path):
    html = report(make_run(tmp_path / "run"), "--steps", "2")
    assert html.count("Rules &lt;b&gt;.") == 2  # two games, one system message each
    assert "system message 1 (to P1)" in html and "[system] (system message 1, shown above the turns)" in html


def test_split_system_doctest():
    import doctest

    from plugins.report import transcripts

    assert doctest.testmod(transcripts).failed == 0


def test_esc_makes_control_characters_visible_and_drops_lone_surrogates():
    assert esc('<a href="x">\x00\ud800') == "&lt;a href=&quot;x&quot;&gt;\u2400\ufffd"


def test_parse_steps():
    assert parse_steps("0, 3-5,3") == [range(0, 1), range(3, 6), range(3, 4)]
    assert parse_steps("all") is None
    assert parse_steps("0-99999999999") == [range(0, 100000000000)]  # a range, never a set of its steps
    for spec, message in [
        ("a-b", "'a-b' is not a step or a range"),
        ("1-", "'1-' is not a step or a range"),
        ("\u0665", "is not a step or a range"),  # an Arabic-Indic digit: int() takes it, --steps does not
        ("9" * 5000, "is not a step or a range"),
        ("-3", "'-3' is negative; steps count from 0"),
        ("2--1", "'2--1' is negative"),
        ("5-1", "the range '5-1' runs backwards; write it low-high (1-5)"),
        (" , ", "names no step"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)) as caught:
            parse_steps(spec)
        assert str(caught.value).startswith("--steps ") and "--steps 0,10,20-25" in str(caught.value), spec


def test_svg_helpers_segments_ticks_gaps_and_downsampling():
    assert segments([0, 1, 2, 3, 5], ["d", "d", "c", "c", "c"]) == [Segment("d", 0, 1), Segment("c", 2, 3), Segment("c", 5, 5)]
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 29, 8, integer=True) == [0, 5, 10, 15, 20, 25]
    gap = line_chart("t", [Series("s", [0, 1, 2, 3], [1.0, None, 2.0, 3.0], "#000")])
    assert re.search(r'd="M[\d. ]+M[\d. ]+L[\d. ]+"', gap)  # the gap lifts the pen
    long = line_chart("t", [Series("s", list(range(5000)), [float(i % 7) for i in range(5000)], "#000")])
    path = re.search(r'<path d="([^"]*)"', long).group(1)
    assert path.count("L") == 599 and "<circle" not in long


def test_a_long_switch_heavy_run_keeps_the_page_small(tmp_path):
    """alternate k=1 for 5000 steps: phase bands show each pixel's share of phases instead."""
    run = tmp_path / "long"
    run.mkdir()
    rows = ({"step": s, "phase": ("clue", "decision")[s % 2], "acc": (s % 10) / 10, "loss": 1.0, "kl": 0.0} for s in range(5000))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = report(run, "--max-games", "0")
    assert len(html) < 300_000
    assert "<title>clue 50%, decision 50%</title>" in html and "no config.yaml" in html


def test_a_fixed_rate_range_widens_for_values_outside_it():
    svg = line_chart("t", [Series("s", [0, 1], [0.5, 1.5], "#000")], y_range=(0.0, 1.0))
    assert ">1.5</text>" in svg


def test_report_of_a_non_utf8_run_folder_and_image_id(tmp_path, capsys):
    """A folder image source turns a file name that is not UTF-8 into an id with lone
    surrogates (``os.fsdecode``); the run folder's own name can be one too."""
    try:
        run = make_run(tmp_path / os.fsdecode(b"run-\xff"))
    except (OSError, UnicodeEncodeError):  # a file system that only takes UTF-8 names
        pytest.skip("this file system refuses non-UTF-8 file names")
    picture = "folder:\udcff\udcfe.png"
    Image.new("RGB", (56, 56), "blue").save(run / "images" / image_filename(picture))
    episode = {"step": 0, "phase": "decision", "rank": 0, "game": "spy", "seed": 7, "roles": ["citizen"], "info": {"image": picture},
               "turns": [{"index": 0, "player": 1, "role": "citizen", "stage": "clue", "prompt": "[user] <image>", "images": [picture],
                          "completion": "blue \udcff", "action": {"kind": "clue", "value": "blue"}, "reward": 0.0, "advantage": 0.0}]}  # fmt: skip
    with open(run / "episodes.jsonl", "a") as f:  # as the run writes it: json.dumps escapes the surrogates
        f.write(json.dumps(episode) + "\n")
    assert list(load_run(run).episodes())[-1] == episode  # and they come back unchanged
    html = report(run, "--steps", "0")
    assert "folder:\ufffd\ufffd.png" in html and "blue \ufffd" in html and "run-\ufffd" in html
    assert html.count("data:image/") == 3  # found under the same file name the run saved it as
    assert "Report written to " in capsys.readouterr().out


# Result files beside the logs: `vzframe eval` and `vzframe probe` write them; here by hand.


def write_eval(run: Path, step: int, *, gain: float = 0.125) -> None:
    """An ``eval-step-N.json`` as vzframe/evaluate.py writes it: three matchups, one metric that
    is not a headline one, one that no plugin declared, and a NaN standard error."""
    report = {
        "run": str(run), "step": step, "game": "spy", "base_model": "/models/base", "games": 64, "seed": 1000,
        "roles": ["spy", "citizen"],
        "metrics": {"acc": {"label": "vote accuracy", "headline": True}, "spy_caught": {"label": "spy caught", "headline": True},
                    "invalid": {"label": "invalid votes", "headline": False}},
        "matchups": {"base": {"acc": 0.5, "spy_caught": 0.4, "invalid": 0.1, "extra_stat": 2.0},
                     "trained spy": {"acc": 0.45, "spy_caught": 0.3, "invalid": 0.1, "extra_stat": 2.5},
                     "trained citizen": {"acc": 0.5 + gain, "spy_caught": 0.55, "invalid": 0.05, "extra_stat": 1.5}},
        "stderr": {"base": {"acc": 0.0623, "spy_caught": 0.06, "invalid": 0.02},
                   "trained spy": {"acc": 0.062, "spy_caught": float("nan"), "invalid": 0.02},
                   "trained citizen": {"acc": 0.0612, "spy_caught": 0.06, "invalid": 0.01}},
        "change_se": {"trained spy": {"acc": 0.03, "spy_caught": 0.04, "invalid": 0.0},
                      "trained citizen": {"acc": 0.0481, "spy_caught": 0.05, "invalid": 0.01}},
        "headline": {},
    }  # fmt: skip
    (run / f"eval-step-{step}.json").write_text(json.dumps(report, indent=1))


def probe_entry(label: str, acc: float, base: float | None, *, warm: bool | None = False, se: float = 0.049, change_se: float = 0.045) -> dict:
    """One probe of a ``probe-step-N.json`` (vzframe/probes/command.py ``make_report``)."""
    def summary(a: float, s: float) -> dict:
        return {"accuracy": a, "se": s, "n": 100, "format_rate": 1.0, "by_kind": {"yes": {"accuracy": a, "n": 50}}}

    entry = {"label": label, "format": "verify", "source": "clevr", "seed": 3, "items": 100, "skipped": 0, "in_warm_start": warm,
             "trained": summary(acc, se)}  # fmt: skip
    if base is not None:
        entry.update(base=summary(base, 0.05), change=acc - base, change_se=change_se)
    return entry


def with_p_right(entry: dict, trained: float, base: float | None = 0.508, *, se: float = 0.011, change_se: float = 0.002) -> dict:
    """``entry`` as likelihood scoring writes it: the mean probability on the right choices, its
    standard error, and the paired change from the base."""
    entry["trained"].update(p_right=trained, p_right_se=se)
    if base is not None:
        entry["base"].update(p_right=base, p_right_se=0.012)
        entry.update(change_p_right=trained - base, change_p_right_se=change_se)
    return entry


def write_probe(run: Path, step: int, probes: dict, *, seed: int = 0, mtime: float | None = None, score: str = "generate") -> None:
    decoding = {"score": score, "engine": "hf" if score == "generate" else "hf forward", "temperature": 0.0, "max_new_tokens": 32}
    report = {"run": str(run), "step": step, "model": f"{run}/checkpoints/step-{step}/model", "base_model": "/models/base",
              "items_per_probe": 100, "seed": seed, "decoding": decoding, "probes": probes}  # fmt: skip
    path = run / f"probe-step-{step}.json"
    path.write_text(json.dumps(report, indent=1))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def probe_run(path: Path, gains: tuple[float, ...] = (0.05, 0.12, 0.1), **kw) -> Path:
    """A run with probe files at steps 4, 8 and 11: clevr.verify (not in the warm start) and
    clevr.count (in it, its base not scored)."""
    run = make_run(path, **kw)
    for i, (step, gain) in enumerate(zip((4, 8, 11), gains)):
        write_probe(run, step, {"clevr.verify": probe_entry("CLEVR: is a player's claim true?", 0.5 + gain, 0.5),
                                "clevr.count": probe_entry("CLEVR: how many?", 0.3, None, warm=True)}, mtime=1e9 + i)  # fmt: skip
    return run


def likelihood_run(path: Path, p_rights: tuple[float, ...] = (0.512, 0.52, 0.531), **kw) -> Path:
    """A run scored by likelihood at steps 4, 8 and 11: clevr.verify with p(right) (its accuracy
    unmoved from the base's), clevr.count without it."""
    run = make_run(path, **kw)
    for i, (step, p_right) in enumerate(zip((4, 8, 11), p_rights)):
        verify = with_p_right(probe_entry("CLEVR: is a player's claim true?", 0.59, 0.59, change_se=0.0), p_right)
        write_probe(run, step, {"clevr.verify": verify, "clevr.count": probe_entry("CLEVR: how many?", 0.3, 0.3)},
                    mtime=1e9 + i, score="likelihood")  # fmt: skip
    return run


def svg_of(html: str, title: str) -> str:
    return html[html.index(f'aria-label="{title}"') :].split("</svg>")[0]


def cells(html: str, first_cell: str) -> list[str]:
    """The cells of the table row that starts with ``first_cell``."""
    row = html[html.index(f"<tr><td>{first_cell}</td>") :].split("</tr>")[0]
    return re.findall(r"<td>(.*?)</td>", row)


def test_report_shows_each_held_out_evaluation_as_a_table_newest_first(tmp_path):
    run = make_run(tmp_path / "run")
    write_eval(run, 4, gain=0.0)
    write_eval(run, 11)
    html = report(run, "--max-games", "0")
    section = html[html.index("<h2>Held-out evaluation</h2>") :]
    assert re.findall(r'<h3 id="eval-step-(\d+)">', section) == ["11", "4"]
    assert "Step 11: 64 held-out games (seed 1000)" in section
    newest = section[: section.index('<h3 id="eval-step-4">')]
    headline = newest[: newest.index("<details")]
    assert re.findall(r"<th>([^<]*)</th>", headline) == ["metric", "base", "trained spy", "trained citizen"]
    assert cells(headline, "vote accuracy") == ["vote accuracy", "0.500 ± 0.062", "0.450 ± 0.062 (-0.050 ± 0.030)", "0.625 ± 0.061 (+0.125 ± 0.048)"]
    assert cells(headline, "spy caught")[2] == "0.300 (-0.100 ± 0.040)"  # a NaN standard error is left out
    assert "invalid votes" not in headline and "extra_stat" not in headline  # not headline metrics
    every = newest[newest.index("<details") : newest.index("</details>")]
    assert "all 4 metrics" in every and cells(every, "invalid votes")[3] == "0.050 ± 0.010 (-0.050 ± 0.010)"
    assert cells(every, "extra_stat")[1:] == ["2.000", "2.500 (+0.500)", "1.500 (-0.500)"]  # no se, no paired se recorded
    assert "0.500 ± 0.061 (+0.000 ± 0.048)" in section[section.index('<h3 id="eval-step-4">') :]


def test_report_draws_each_probe_over_the_checkpoints_against_the_base_model(tmp_path):
    html = report(probe_run(tmp_path / "run"), "--max-games", "0")
    section = html[html.index("<h2>Transfer: probes</h2>") :]
    assert "(answers generated by hf, temperature 0.0, at most 32 new tokens; 100 items per probe, seed 0)" in section
    verify = svg_of(section, "CLEVR: is a player&#x27;s claim true? (clevr.verify)")
    assert legend(section, "CLEVR: is a player&#x27;s claim true? (clevr.verify)")[:2] == ["base model", "checkpoints"]
    assert verify.count("<circle") == 3 and "checkpoints at step 8: 0.62 ± 0.049" in verify  # a point per step, with its se
    assert verify.count("M", verify.index('class="whiskers"'), verify.index('class="whiskers"') + 400) >= 3  # whiskers
    assert '<polygon points="' in verify and 'stroke-dasharray="6 4"' in verify  # the base: dashed, with its band
    count = svg_of(section, "CLEVR: how many? (clevr.count)")
    assert count.count("<circle") == 3 and "base model" not in count and "<polygon" not in count
    assert re.findall(r"<th>([^<]*)</th>", section.split("</thead>")[0]) == ["probe", "items", "in warm start", "base", "step 4", "step 8", "step 11"]
    assert cells(section, "CLEVR: is a player&#x27;s claim true? (clevr.verify)")[1:] == [
        "100", "no", "0.500 ± 0.050", "0.550 ± 0.049 (+0.050 ± 0.045)", "0.620 ± 0.049 (+0.120 ± 0.045)", "0.600 ± 0.049 (+0.100 ± 0.045)",
    ]  # fmt: skip
    assert cells(section, "CLEVR: how many? (clevr.count)")[1:4] == ["100", "yes", "–"]
    assert chart_titles(html)[-2:] == ["CLEVR: is a player&#x27;s claim true? (clevr.verify)", "CLEVR: how many? (clevr.count)"]


def test_report_shows_the_probe_files_of_the_newest_settings_and_names_the_others(tmp_path):
    run = probe_run(tmp_path / "run")
    write_probe(run, 2, {"clevr.verify": probe_entry("verify", 0.9, 0.5)}, seed=7, mtime=1e9 - 10)  # older, other seed
    html = report(run, "--max-games", "0")
    section = html[html.index("<h2>Transfer: probes</h2>") :]
    assert "Not shown: step 2, scored with other settings (answers generated by hf, temperature 0.0, at most 32 new tokens; 100 items per probe, seed 7)" in section
    assert re.findall(r"<th>(step \d+)</th>", section) == ["step 4", "step 8", "step 11"] and "0.900" not in section
    write_probe(run, 2, {"clevr.verify": probe_entry("verify", 0.9, 0.5)}, seed=7, mtime=2e9)  # now the newest
    section = report(run, "--max-games", "0").split("<h2>Transfer: probes</h2>")[1]
    assert "seed 7" in section.split("</p>")[0] and "Not shown: steps 4, 8, 11" in section and "0.900" in section


def test_report_escapes_result_strings_and_skips_malformed_result_files_with_a_warning(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    write_probe(run, 4, {EVIL: probe_entry(EVIL, 0.6, float("nan"), change_se=float("nan")), "clevr.bad": {"label": "no score"}})
    (run / "probe-step-8.json").write_text('{"step": 8, "probes": {')  # killed mid-write
    (run / "probe-step-9.json").write_text("[1, 2]")
    (run / "probe-step-10.json").write_text(json.dumps({"probes": "none"}))
    (run / "eval-step-3.json").write_text(json.dumps({"matchups": {"base": {}}}))
    (run / "eval-step-5.json").write_text(json.dumps({"matchups": {"<b>base</b>": {"acc": 0.5}, "trained <i>": {"acc": "x"}},
                                                      "metrics": {"acc": {"label": EVIL, "headline": "yes"}}, "games": {"a": 1}}))  # fmt: skip
    (run / "eval-step-7.json").write_text("NaN")
    html = report(run, "--max-games", "0")
    page_text = html.split("</style>")[-1]
    assert "<script>alert" not in page_text and "<b>base" not in page_text and "trained <i>" not in page_text
    assert f"<td>{esc(EVIL)}</td>" in html and "&lt;b&gt;base&lt;/b&gt;" in html and "Step 5: ? held-out games" in html
    assert cells(html, esc(f"{EVIL} ({EVIL})"))[1:] == ["100", "no", "–", "0.600 ± 0.049"]  # a NaN base: no base, no change
    assert f'aria-label="{esc(EVIL)} ({esc(EVIL)})"' in html and svg_of(html, f"{esc(EVIL)} ({esc(EVIL)})").count("<circle") == 1
    box = html[html.index('<div class="warnings">') :].split("</div>")[0]
    for name, why in [("probe-step-8.json", "unreadable (JSONDecodeError)"), ("probe-step-9.json", "holds no JSON object"),
                      ("probe-step-10.json", "holds no probe result"), ("probe-step-4.json", "skipped probe clevr.bad, without a trained score"),
                      ("eval-step-3.json", "holds no matchup with a metric"), ("eval-step-7.json", "holds no JSON object")]:  # fmt: skip
        assert re.search(rf"{re.escape(name)}: [^<]*{re.escape(why)}", box), (name, box)
    assert "run `vzframe probe " in box and "--step 8` again" in box
    assert capsys.readouterr().err.count("warning:") == 6


def test_compare_overlays_each_runs_probes_and_tabulates_their_newest_change(tmp_path):
    import xml.etree.ElementTree as ET

    a = probe_run(tmp_path / "run-a")
    b = probe_run(tmp_path / "run-b", gains=(0.0, -0.05), scheduler="clue_only", steps=9)  # steps 4 and 8
    c = make_run(tmp_path / "run-c", scheduler="bandit")
    out, folder = tmp_path / "c.html", tmp_path / "svg"
    assert main(["compare", str(a), str(b), str(c), "--out", str(out), "--svg", str(folder)], plugins=PLUGINS) == 0
    html = out.read_text()
    section = html[html.index("<h2>Transfer: probes</h2>") : html.index("<h2>Runs</h2>")]
    title = "CLEVR: is a player&#x27;s claim true? (clevr.verify)"
    assert legend(section, title)[:3] == ["base model", "run-a (hysteresis)", "run-b (clue_only)"]  # one shared base line
    verify = svg_of(section, title)
    assert verify.count("<circle") == 5 and verify.count(f'fill="{LINE_COLORS[0]}"') == 3 and verify.count(f'fill="{LINE_COLORS[1]}"') == 2
    assert "No probe results in run-c (bandit)." in section and "(answers generated by hf, temperature 0.0" in section
    assert cells(section, "run-a (hysteresis)")[1:3] == ["11", "0.600 ± 0.049 (+0.100 ± 0.045)"]
    assert cells(section, "run-b (clue_only)")[1:3] == ["8", "0.450 ± 0.049 (-0.050 ± 0.045)"]
    assert "Curves" in html and section.count("<svg") == 2  # the probe charts are not among the curves
    for stem in ("probe-clevr.verify", "probe-clevr.count"):
        root = ET.parse(folder / f"{stem}.svg").getroot()  # well-formed on its own
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "run-b (clue_only)" in (folder / "probe-clevr.verify.svg").read_text()


def test_compare_draws_a_base_line_per_run_when_their_base_models_differ(tmp_path):
    a = probe_run(tmp_path / "run-a")
    b = make_run(tmp_path / "run-b")
    write_probe(b, 5, {"clevr.verify": probe_entry("CLEVR: is a player's claim true?", 0.7, 0.6)})
    charts = compare_charts([load_run(a), load_run(b)])
    assert list(charts)[-3:] == ["phases", "probe-clevr.verify", "probe-clevr.count"]
    verify = charts["probe-clevr.verify"]
    assert re.findall(r"<title>([^<]*)</title>", verify)[:4] == ["run-a (hysteresis)", "run-b (hysteresis)", "run-a (hysteresis) base", "run-b (hysteresis) base"]
    assert "<polygon" not in verify  # no bands for per-run base lines


FINE_TITLE = "CLEVR: is a player&#x27;s claim true? (clevr.verify) · p(right)"


def test_report_draws_and_tabulates_p_right_beside_accuracy_where_the_probe_has_it(tmp_path):
    html = report(likelihood_run(tmp_path / "run"), "--max-games", "0")
    section = html[html.index("<h2>Transfer: probes</h2>") :]
    verify = "CLEVR: is a player&#x27;s claim true? (clevr.verify)"
    assert chart_titles(html)[-3:] == [verify, FINE_TITLE, "CLEVR: how many? (clevr.count)"]  # beside its accuracy chart
    fine = svg_of(section, FINE_TITLE)
    assert legend(section, FINE_TITLE)[:2] == ["base model", "checkpoints"]
    assert fine.count("<circle") == 3 and fine.count(f'fill="{LINE_COLORS[1]}"') == 3  # a point per step, in another colour
    assert "checkpoints at step 8: 0.52 ± 0.011" in fine and '<polygon points="' in fine  # its se; the base with its band
    assert ">1</text>" not in fine and ">1</text>" in svg_of(section, verify)  # fitted to the values, accuracy 0 to 1
    accuracy, fine_table = section.split("<h3>Probability on the right choices: p(right)</h3>")
    assert "<h3>Accuracy</h3>" in accuracy and cells(accuracy, verify)[3:] == ["0.590 ± 0.050"] + ["0.590 ± 0.049 (+0.000 ± 0.000)"] * 3
    assert re.findall(r"<th>([^<]*)</th>", fine_table.split("</thead>")[0]) == ["probe", "base", "step 4", "step 8", "step 11"]
    assert cells(fine_table, verify)[1:] == ["0.508 ± 0.012", "0.512 ± 0.011 (+0.004 ± 0.002)", "0.520 ± 0.011 (+0.012 ± 0.002)",
                                             "0.531 ± 0.011 (+0.023 ± 0.002)"]  # fmt: skip
    assert "clevr.count" not in fine_table.split("</table>")[0]  # no p(right): no row, no chart
    assert "<i>p(right)</i>: the mean probability the model puts on the right choices, normalised over each item" in section


def test_report_p_right_of_untrusted_files_is_checked_like_accuracy(tmp_path):
    run = make_run(tmp_path / "run")
    entries = [with_p_right(probe_entry(EVIL, 0.6, 0.5), 0.55), with_p_right(probe_entry(EVIL, 0.6, 0.5), float("nan")),
               with_p_right(probe_entry(EVIL, 0.6, 0.5), 0.57, change_se=float("nan")), with_p_right(probe_entry(EVIL, 0.6, 0.5), 0.58)]  # fmt: skip
    entries[0]["trained"]["p_right_se"] = "0.01"  # text: no se
    entries[3]["change_p_right"] = True  # not a number: the difference of the two (the mean of the paired changes)
    count = probe_entry("how many?", 0.3, 0.3)
    count["trained"]["p_right"] = [0.4]
    for i, (step, entry) in enumerate(zip((2, 4, 6, 8), entries)):
        write_probe(run, step, {EVIL: entry, "clevr.count": count}, score="likelihood", mtime=1e9 + i)
    html = report(run, "--max-games", "0")
    page_text = html.split("</style>")[-1]
    assert "<script>alert" not in page_text
    fine_table = html.split("<h3>Probability on the right choices: p(right)</h3>")[1].split("</table>")[0]
    assert cells(fine_table, esc(f"{EVIL} ({EVIL})"))[1:] == ["0.508 ± 0.012", "0.550 (+0.042 ± 0.002)", "–", "0.570 ± 0.011 (+0.062)",
                                                              "0.580 ± 0.011 (+0.072 ± 0.002)"]  # fmt: skip
    assert svg_of(html, f"{esc(EVIL)} ({esc(EVIL)}) · p(right)").count("<circle") == 3  # the NaN step left out
    assert "how many?" not in fine_table and "how many? (clevr.count) · p(right)" not in html  # a list is no number


def test_compare_draws_p_right_per_probe_a_line_per_run_that_has_it(tmp_path):
    import xml.etree.ElementTree as ET

    a = likelihood_run(tmp_path / "run-a")
    b = likelihood_run(tmp_path / "run-b", p_rights=(0.5, 0.49), scheduler="clue_only", steps=9)  # steps 4 and 8
    c = probe_run(tmp_path / "run-c", scheduler="bandit")  # generated answers: accuracy only
    out, folder = tmp_path / "c.html", tmp_path / "svg"
    assert main(["compare", str(a), str(b), str(c), "--out", str(out), "--svg", str(folder)], plugins=PLUGINS) == 0
    html = out.read_text()
    section = html[html.index("<h2>Transfer: probes</h2>") : html.index("<h2>Runs</h2>")]
    assert section.count("<svg") == 3  # verify, verify p(right), count; the accuracy charts as before
    assert legend(section, "CLEVR: is a player&#x27;s claim true? (clevr.verify)")[:3] == ["run-a (hysteresis)", "run-b (clue_only)", "run-c (bandit)"]
    assert legend(section, FINE_TITLE)[:3] == ["base model", "run-a (hysteresis)", "run-b (clue_only)"]  # no line for run-c
    fine = svg_of(section, FINE_TITLE)
    assert fine.count("<circle") == 5 and fine.count(f'fill="{LINE_COLORS[0]}"') == 3 and fine.count(f'fill="{LINE_COLORS[1]}"') == 2
    assert "run-c" not in fine
    accuracy, fine_table = section.split("<h3>Probability on the right choices: p(right)</h3>")
    assert cells(accuracy, "run-a (hysteresis)")[1:3] == ["11", "0.590 ± 0.049 (+0.000 ± 0.000)"]
    assert re.findall(r"<th>([^<]*)</th>", fine_table.split("</thead>")[0]) == ["run", "newest step", "CLEVR: is a player&#x27;s claim true? (clevr.verify)"]
    assert cells(fine_table, "run-a (hysteresis)")[1:] == ["11", "0.531 ± 0.011 (+0.023 ± 0.002)"]
    assert cells(fine_table, "run-b (clue_only)")[1:] == ["8", "0.490 ± 0.011 (-0.018 ± 0.002)"]
    assert cells(fine_table, "run-c (bandit)")[1:] == ["11", "–"]
    assert "<i>p(right)</i>: the mean probability" in section
    root = ET.parse(folder / "probe-clevr.verify-p_right.svg").getroot()  # written by --svg, well-formed on its own
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and "run-b (clue_only)" in (folder / "probe-clevr.verify-p_right.svg").read_text()
    assert not (folder / "probe-clevr.count-p_right.svg").exists()
