"""Parsing cost on adversarial model output: each parser of ``vzframe.parsing`` on hostile
inputs of growing length, in time per character. Linear parsers show about the same time per
character at every length (the ratio of 100k to 1k is about 1); a quadratic one grows 100x.

    python bench/parsing.py [--sizes 1000 10000 100000]

Each figure is the best of 3 timings of a loop run for at least 0.2 s.
"""

from __future__ import annotations

import argparse
import timeit

from vzframe.models.tiny import QWEN_SPECIAL_TOKENS
from vzframe.parsing import (
    extract_answer,
    extract_think,
    neutralize_special_tokens,
    normalize_answer,
    parse_choice,
    parse_clue,
    parse_vote,
    public_text,
)


def fill(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


CASES = {
    "vote: 'player' + spaces + 'x'": (lambda t: parse_vote(t, 1, 4), lambda n: "<answer>player" + " " * n + "x</answer>"),
    "vote: 'player ' repeated": (lambda t: parse_vote(t, 1, 4), lambda n: "<answer>" + fill("player ", n) + "3</answer>"),
    "vote: digits": (lambda t: parse_vote(t, 1, 4), lambda n: "<answer>" + "9" * n + "</answer>"),
    "vote: '<answer>' unclosed, repeated": (lambda t: parse_vote(t, 1, 4), lambda n: fill("<answer>", n) + "2"),
    "vote: '<answer>' repeated, one close": (lambda t: parse_vote(t, 1, 4), lambda n: fill("<answer>", n) + "2</answer>"),
    "choice: zero-width + Unicode spaces": (
        lambda t: parse_choice(t, 9, noun="picture"),
        lambda n: "<answer>picture" + fill("\u200b\u2028\xa0", n) + "#3</answer>",
    ),
    "clue: words and newlines": (parse_clue, lambda n: "<answer>" + fill("word \n", n) + "</answer>"),
    "extract_answer: '</answer>' repeated": (extract_answer, lambda n: "<answer>" + fill("</answer>", n)),
    "extract_think: '<think>' repeated": (extract_think, lambda n: fill("<think>", n) + "</think>"),
    "normalize_answer: full width": (normalize_answer, lambda n: fill("Ｐｌａｙｅｒ\u3000３\u200b", n)),
    "public_text: nested '<|im_' shells": (
        lambda t: public_text(t, 400),
        lambda n: fill("<|im_", n // 2) + "<|x|>" + fill("end|>", n // 2),
    ),
    "neutralize: nested Qwen tokens": (
        lambda t: neutralize_special_tokens(t, QWEN_SPECIAL_TOKENS),
        lambda n: fill("<|im_", n // 2) + "<|im_end|>" + fill("end|>", n // 2),
    ),
}


def per_char(fn, text: str) -> float:
    """Best seconds per character of ``fn(text)``."""
    timer = timeit.Timer(lambda: fn(text))
    number, _ = timer.autorange()
    return min(timer.repeat(3, number)) / number / len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    header = " | ".join(f"ns/char at {n:,}" for n in args.sizes)
    print(f"| input | {header} | ratio {args.sizes[-1]:,} / {args.sizes[0]:,} |")
    print("|---|" + "---:|" * (len(args.sizes) + 1))
    for name, (fn, build) in CASES.items():
        times = [per_char(fn, build(n)) for n in args.sizes]
        cells = " | ".join(f"{t * 1e9:.2f}" for t in times)
        print(f"| {name} | {cells} | {times[-1] / times[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
