"""Plugin ``plugins.report``: the ``vzframe report`` and ``vzframe compare`` commands.

    vzframe report OUTPUT_DIR [--out FILE] [--max-games N] [--steps 0,10,20-25]
    vzframe compare RUN_DIR... [--out FILE.html] [--last N] [--png FILE.png] [--svg DIR]

Both write one self-contained HTML file (inline SVG charts, pictures as data URIs, no
network access). Beside the training curves they show the result files a run folder may hold:
``eval-step-N.json`` (``vzframe eval``, in the report) and ``probe-step-N.json`` (``vzframe
probe``, in both). The page modules are imported only when one of the commands runs, so
every other ``vzframe`` command starts as fast as before.
"""

from __future__ import annotations

import argparse

from vzframe.hookspecs import hookimpl


def _report(args: argparse.Namespace) -> int:
    from plugins.report.report import cmd_report

    return cmd_report(args)


def _compare(args: argparse.Namespace) -> int:
    from plugins.report.compare import cmd_compare

    return cmd_compare(args)


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write a self-contained HTML report of a run: vzframe report OUTPUT_DIR")
    p.add_argument("output_dir", help="the run's output directory (holds metrics.jsonl)")
    p.add_argument("--out", help="the HTML file to write (default: OUTPUT_DIR/report.html)")
    p.add_argument("--max-games", type=int, default=40, help="most game transcripts to embed (default 40; 0 for none)")
    p.add_argument("--steps", help="steps whose games to show, e.g. 0,10,20-25 or all (default: evenly spaced steps)")
    p.add_argument("--image-size", type=int, default=160, help="longest side of embedded pictures, in pixels (default 160)")
    p.set_defaults(func=_report)

    c = subparsers.add_parser("compare", help="overlay several runs' curves and phases in one HTML page: vzframe compare RUN_DIR...")
    c.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="output directories of the runs to compare")
    c.add_argument("--out", default="compare.html", help="the HTML file to write (default: compare.html)")
    c.add_argument("--last", type=int, default=10, help="the final figures also average the last N steps (default 10)")
    c.add_argument("--png", help="also write a PNG screenshot of the page (needs Chromium)")
    c.add_argument("--svg", metavar="DIR", help="also write every chart as a standalone SVG file into DIR (for docs and papers)")
    c.set_defaults(func=_compare)
