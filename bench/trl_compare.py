"""vzframe's time per trained sample against TRL's GRPOTrainer, on the spy decision stage.

Same tiny model, batch, lengths and optimiser settings on both sides, measured in one run.

    .venv-bench/bin/python bench/trl_compare.py [--games 4] [--group 3] [--max-new-tokens 32]
        [--steps 8] [--lr 1e-5] [--beta 0.04] [--temperature 0.8] [--zero-stage 2] [--model DIR] [--share-prefix]

Needs TRL, which vzframe does not depend on: install it in a separate environment so the
project's own stays clean (torch first: on this machine pip takes it from local disk)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1
    .venv-bench/bin/pip install trl -e . --no-build-isolation

Checked with trl 1.16.0 (it needs transformers>=4.56.2; pip keeps vzframe's 5.x).

The task (identical prompts and reward on both sides)
    ``--games`` spy games per step (``--group`` citizens + 1 spy, 2 clue rounds, ``shapes``
    pictures) are built with ``games.spy.game.SpyGame`` and their clue stage is played with
    fixed scripted clues (not timed). The prompt is a citizen's decision observation: system
    rules + role brief, the picture, every clue, its own earlier reasoning, the vote task.
    The reward is ``games.spy.rewards.vote_reward`` of ``vzframe.parsing.parse_vote``:
    +1 correct, -0.5 N/A, -1 wrong or invalid. Advantages are normalised within each group.

What is timed
    vzframe: per step, the decision-phase path of ``vzframe/runtime.py``: observe every
    citizen, one batched ``HFEngine.generate``, ``SpyGame.step`` per vote, the ``spy.vote``
    reward on the episode, ``group_normalize`` per game, then ``Trainer.step(samples)``
    (DeepSpeed on CPU, ZeRO ``--zero-stage``, reference log-probs + k3 KL, one AdamW step).
    TRL: one optimizer step of ``GRPOTrainer.train()``, from its ``on_step_begin`` callback to
    its ``on_step_end`` (generation, reward, reference log-probs, loss, backward, optimizer).
    TRL's per-step logging and the fetch of the next batch fall between the two callbacks and
    are not timed: their mean is printed (milliseconds), so it can be checked. Each step is
    split into generation (prompt encoding, ``generate``, decoding: ``HFEngine.generate`` and
    TRL's ``GRPOTrainer._generate``) and the rest (reward, advantages, training).
    Both sides: one untimed warm-up step, ``--steps`` timed steps, one untimed cool-down step
    (so neither side tears its process down during the other's last step); seconds per trained
    sample = wall time of the timed steps / (steps * samples per step). Printed beside it: the
    same with the process's CPU time (all threads), and the median over steps of the
    per-step ratio, which one step disturbed by other load cannot move.

How noise is kept out
    The machines here are shared and their load changes by the minute, so the two sides are
    not run one after the other. Each runs in its own child process of this script (same
    interpreter, same thread count), both alive at once, and the parent lets them take turns
    step by step (vzframe, TRL, TRL, vzframe, vzframe, ...): only one computes at a time, and
    a busy minute slows both alike. The ratio vzframe/TRL is the figure to quote; absolute
    times are not comparable across runs or machines.

What is the same
    model (``vzframe.models.tiny`` unless ``--model``), float32 on CPU, samples per step
    (games x group), max completion length, sampling (temperature, top_p 1, top_k 0, image
    token suppressed), learning rate, KL coefficient beta with a frozen reference model,
    loss aggregation (token mean per sequence, then mean over sequences: TRL
    ``loss_type="grpo"``), group-normalised advantages, one optimizer step per generation
    batch, no gradient checkpointing, gradient clipping 1.0, one forward/backward over the
    whole batch (vzframe ``micro_batch_size`` = samples per step; TRL
    ``per_device_train_batch_size`` = samples per step, no accumulation). The script checks
    that both sides render the same prompt text through the chat template.

What differs (unavoidable or by design)
    - The group. TRL samples G completions of ONE prompt; vzframe's decision group is the G
      citizens of one game, each with its own observation (player number, own reasoning),
      voting on the same clues. The TRL prompt is the game's first citizen's observation, so
      the number of samples and the prompt lengths match (printed: mean prompt tokens).
    - The engine. vzframe trains through DeepSpeed (ZeRO-2 by default, even in a world of one,
      as ``vzframe run`` does) with ``torch.optim.AdamW``; TRL through Accelerate on a plain
      torch module with fused AdamW. Learning-rate schedules differ (vzframe warmup + cosine,
      TRL linear decay): no effect on time.
    - TRL computes per-token entropies in its loss pass (its chunked log-prob kernel) and
      gathers a dozen metrics inside the step; vzframe's timed loop here writes no files
      (``vzframe run`` would also append metrics.jsonl and episodes.jsonl). vzframe
      suppresses the vision start/end and video tokens in sampling, TRL only the image token.
    - Group std: vzframe divides by n, TRL by n - 1 (scale of the advantages only).
    - Completion lengths depend on what each side samples (random weights rarely stop early):
      both sides print their mean completion tokens so a length mismatch is visible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CITIZEN_CLUES = (
    ("I see a few flat shapes on a light background.", "There are some coloured shapes in the picture."),
    ("The shapes have different colours.", "One of the shapes is bigger than the others."),
)
SPY_CLUES = (
    ("My picture is plain; I should stay vague.", "The picture is quite simple."),
    ("The others talk about shapes; I will follow them.", "I can see a shape in it."),
)
"""Scripted clue-stage completions (think, clue) per round, for citizens and for the spy."""


# --------------------------------------------------------------------------------------
# The task: spy games whose clue stage is over, and their citizens' decision prompts
# --------------------------------------------------------------------------------------
def decision_games(n_games: int, citizens: int) -> list[Any]:
    """``n_games`` spy games (seeds 0, 1, ...) with the clue stage played from the scripts;
    every game now waits for its citizens' votes."""
    from games.spy.game import SpyConfig, SpyGame
    from plugins.shapes import ShapesSource
    from vzframe.rollout.play import ImageCursor

    cursor = ImageCursor(ShapesSource(ShapesSource.Config(), seed=0), rank=0, world=1)
    games = []
    for seed in range(n_games):
        game = SpyGame(SpyConfig(num_citizens=citizens), seed=seed, images=cursor.draw)
        turn = 0
        while game.stage == "clue":  # seat order, round after round
            (player,) = game.to_act()
            script = SPY_CLUES if player == game.spy else CITIZEN_CLUES
            think, clue = script[(turn // game.num_players) % len(script)]
            game.step(player, f"<think>{think}</think><answer>{clue}</answer>")
            turn += 1
        games.append(game)
    return games


def trl_row(game: Any) -> dict[str, Any]:
    """The game's first citizen's decision prompt as a TRL dataset row: conversational prompt
    with text contents (TRL inserts the image before the user text, as vzframe's observation
    has it), the picture, and what the reward function needs."""
    voter = game.to_act()[0]
    obs = game.observe(voter)
    system, user = obs.messages
    text = "".join(part["text"] for part in user["content"] if part["type"] == "text")
    return {
        "prompt": [{"role": "system", "content": system["content"]}, {"role": "user", "content": text}],
        "image": obs.images[0].image,
        "voter": voter,
        "spy": game.spy,
        "num_players": game.num_players,
    }


def spy_vote_reward(completions: list[Any], voter: list[int], spy: list[int], num_players: list[int], **_: Any) -> list[float]:
    """TRL reward function: the spy game's vote reward of each completion.

    >>> spy_vote_reward([[{"content": "<answer>2</answer>"}], "<answer>N/A</answer>", "3"], [1, 1, 1], [2, 2, 2], [4, 4, 4])
    [1.0, -0.5, -1.0]
    """
    from games.spy.game import SpyConfig
    from games.spy.rewards import vote_reward
    from vzframe.parsing import parse_vote

    config = SpyConfig()
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [vote_reward(parse_vote(t, v, n), s, config) for t, v, s, n in zip(texts, voter, spy, num_players)]


def prompt_tokens(processor: Any, observations: list[Any]) -> list[int]:
    from vzframe.rollout import encode

    return encode(processor, observations)["attention_mask"].sum(dim=1).tolist()


# --------------------------------------------------------------------------------------
# Taking turns: a child computes a step only when the parent says so
# --------------------------------------------------------------------------------------
class Baton:
    """The child's end of the turn-taking: ``wait()`` blocks until the parent says go,
    ``done(report)`` hands the turn back with the step's figures. Run by hand (no pipes), a
    child just runs straight through and prints its report."""

    def __init__(self, fds: str | None) -> None:
        self.reader = self.writer = None
        if fds:
            read_fd, write_fd = (int(x) for x in fds.split(","))
            self.reader, self.writer = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")

    def wait(self) -> None:
        if self.reader and self.reader.readline().strip() != "go":
            raise SystemExit("The parent process went away.")

    def done(self, report: dict[str, Any]) -> None:
        if self.writer:
            self.writer.write(json.dumps(report) + "\n")
            self.writer.flush()
        else:
            print(json.dumps(report), flush=True)


class StepClock:
    """Wall and CPU time of one step."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> dict[str, float]:
        return {"wall": time.perf_counter() - self.wall, "cpu": time.process_time() - self.cpu}


def total_steps(args: argparse.Namespace) -> int:
    """A warm-up step, the timed steps, and a cool-down step: while the last timed step runs,
    the other side is not yet tearing down its process."""
    return args.steps + 2


# --------------------------------------------------------------------------------------
# vzframe side
# --------------------------------------------------------------------------------------
def run_vzframe(args: argparse.Namespace, baton: Baton) -> dict[str, Any]:
    from vzframe import dist

    dist.setup_environment()
    import torch
    from transformers import AutoProcessor

    from games.spy.rewards import VoteReward
    from vzframe.advantages import group_normalize
    from vzframe.config import RolloutConfig, TrainConfig
    from vzframe.models.tiny import ensure_default_model
    from vzframe.rollout.hf import HFEngine
    from vzframe.train.trainer import Trainer
    from vzframe.types import Sample

    path = args.model or str(ensure_default_model())
    processor = AutoProcessor.from_pretrained(path)
    samples_per_step = args.games * args.group
    train_cfg = TrainConfig(
        lr=args.lr,
        kl_coef=args.beta,
        micro_batch_size=args.micro_batch or samples_per_step,
        zero_stage=args.zero_stage,
        bf16=False,
        gradient_checkpointing=False,
        share_prefix=args.share_prefix,
    )
    trainer = Trainer(path, processor, train_cfg, total_steps=total_steps(args), temperature=args.temperature)
    engine = HFEngine(trainer.model, processor, RolloutConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens))
    reward = VoteReward()
    clock = StepClock()

    completion_tokens, prompt_lens, rewards = [], [], []
    # Built up front, like TRL's dataset: nothing runs while the other side has its turn.
    all_games = decision_games(args.games * total_steps(args), args.group)
    for step in range(total_steps(args)):
        games = all_games[step * args.games : (step + 1) * args.games]
        timed = 0 < step <= args.steps
        torch.manual_seed(args.seed + step)
        baton.wait()
        clock.start()
        moves = [(g, voter) for g, game in enumerate(games) for voter in game.to_act()]
        observations = [games[g].observe(voter) for g, voter in moves]
        t_gen = time.perf_counter()
        generations = engine.generate(observations)
        t_gen = time.perf_counter() - t_gen
        generated = {}
        for (g, voter), obs, gen in zip(moves, observations, generations):
            turn = games[g].step(voter, gen.text)
            generated[(g, turn.index)] = (obs, gen)
        samples = []
        for g, game in enumerate(games):
            episode = game.episode()
            scored = reward(episode, game.config)
            turns = episode.turns_of("decision")
            advantages = group_normalize([scored[t.index] for t in turns])
            for t, adv in zip(turns, advantages):
                obs, gen = generated[(g, t.index)]
                prompt = None if args.reencode else gen.prompt  # reuse rollout's encoding, as vzframe/runtime.py
                samples.append(Sample(obs, gen.token_ids, adv, g, t.index, prompt=prompt))
            rewards += [scored[t.index] for t in turns] if timed else []
        engine.sleep()
        trainer.step(samples)
        engine.wake_up()
        engine.sync_weights(trainer.model)  # no-ops for the HF engine, as in vzframe/runtime.py
        times = clock.stop()
        baton.done({**times, "generate": t_gen, "rest": times["wall"] - t_gen})
        if timed:
            completion_tokens += [len(gen.token_ids) for gen in generations]
            prompt_lens += [gen.prompt_tokens for gen in generations]
    return {
        "samples_per_step": samples_per_step,
        "mean_completion_tokens": statistics.mean(completion_tokens),
        "mean_prompt_tokens": statistics.mean(prompt_lens),
        "mean_reward": statistics.mean(rewards),
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------------------
# TRL side
# --------------------------------------------------------------------------------------
def run_trl(args: argparse.Namespace, baton: Baton) -> dict[str, Any]:
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.data_utils import prepare_multimodal_messages

    from vzframe.models.tiny import ensure_default_model

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = args.model or str(ensure_default_model())
    processor = AutoProcessor.from_pretrained(path, padding_side="left")
    samples_per_step = args.games * args.group

    # One row per game (its first citizen's prompt), args.games distinct prompts per step.
    games = decision_games(args.games * total_steps(args), args.group)
    rows = [trl_row(game) for game in games]
    check_same_prompt(processor, games[0], rows[0], prepare_multimodal_messages)
    timed_games = games[args.games : args.games * (args.steps + 1)]
    prompt_lens = prompt_tokens(processor, [g.observe(g.to_act()[0]) for g in timed_games])

    class TakeTurns(TrainerCallback):
        def __init__(self) -> None:
            self.clock = StepClock()
            self.logs: list[dict[str, float]] = []
            self.gaps: list[float] = []  # TRL's logging and the next batch's fetch, between steps
            self.last_end = 0.0
            self.generate = 0.0  # seconds in GRPOTrainer._generate during this step

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            if self.last_end:
                self.gaps.append(time.perf_counter() - self.last_end)
            baton.wait()
            self.generate = 0.0
            self.clock.start()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            times = self.clock.stop()
            baton.done({**times, "generate": self.generate, "rest": times["wall"] - self.generate})
            self.last_end = time.perf_counter()

        def timed(self, generate: Any) -> Any:
            """Wrap TRL's rollout (prompt encoding, ``generate``, decoding: what
            ``HFEngine.generate`` does) to split the step as vzframe's is split."""

            def wrapper(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return generate(*a, **k)
                finally:
                    self.generate += time.perf_counter() - t0

            return wrapper

        def on_log(self, _args: Any, _state: Any, _control: Any, logs: dict | None = None, **__: Any) -> None:
            if logs and "loss" in logs:
                self.logs.append(dict(logs))

    turns = TakeTurns()
    with tempfile.TemporaryDirectory(prefix="trl-compare-") as out:
        config = GRPOConfig(
            output_dir=out,
            use_cpu=True,
            per_device_train_batch_size=samples_per_step,
            gradient_accumulation_steps=1,
            num_generations=args.group,
            max_completion_length=args.max_new_tokens,
            temperature=args.temperature,
            top_p=1.0,
            top_k=0,
            beta=args.beta,
            learning_rate=args.lr,
            loss_type="grpo",
            scale_rewards="group",
            num_iterations=1,
            max_grad_norm=1.0,
            weight_decay=0.0,
            use_vllm=False,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            max_steps=total_steps(args),
            shuffle_dataset=False,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            dataloader_num_workers=0,
            seed=args.seed,
            disable_tqdm=True,
        )
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=spy_vote_reward,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=processor,
            callbacks=[turns],
        )
        trainer._generate = turns.timed(trainer._generate)  # a private method: only for the split
        trainer.train()
    if len(turns.logs) != total_steps(args):
        raise RuntimeError(f"TRL logged {len(turns.logs)} optimizer steps, expected {total_steps(args)}.")
    timed = turns.logs[1 : args.steps + 1]
    return {
        "samples_per_step": samples_per_step,
        "mean_completion_tokens": statistics.mean(log["completions/mean_length"] for log in timed),
        "mean_prompt_tokens": statistics.mean(prompt_lens),
        "mean_reward": statistics.mean(log["reward"] for log in timed),
        "threads": torch.get_num_threads(),
        "untimed_between_steps": statistics.mean(turns.gaps),
    }


def check_same_prompt(processor: Any, game: Any, row: dict[str, Any], prepare: Any) -> None:
    """Both sides must feed the model the same text: TRL's prompt, after it inserts the image,
    rendered through the chat template, equals vzframe's observation rendered the same way."""
    ours = processor.apply_chat_template(list(game.observe(row["voter"]).messages), add_generation_prompt=True, tokenize=False)
    theirs = processor.apply_chat_template(
        prepare(row["prompt"], images=[row["image"]]), add_generation_prompt=True, tokenize=False
    )
    if ours != theirs:
        raise RuntimeError(f"TRL's prompt differs from vzframe's observation:\n--- vzframe\n{ours}\n--- trl\n{theirs}")


# --------------------------------------------------------------------------------------
# Driver: both sides as child processes, taking turns step by step
# --------------------------------------------------------------------------------------
class Child:
    """One side in its own process, driven through a pair of pipes; its output goes to a log."""

    def __init__(self, side: str, argv: list[str], log_dir: str) -> None:
        self.side = side
        go_read, self._go = os.pipe()
        self._done, done_write = os.pipe()
        self.log_path = Path(log_dir) / f"{side}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--side", side, "--fds", f"{go_read},{done_write}", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(go_read, done_write),
            )
        os.close(go_read)
        os.close(done_write)
        self.go_pipe, self.done_pipe = os.fdopen(self._go, "w"), os.fdopen(self._done, "r")

    def receive(self) -> dict[str, Any]:
        line = self.done_pipe.readline()
        if not line:
            self.proc.wait()
            sys.stderr.write(self.log_path.read_text()[-6000:])
            raise SystemExit(f"The {self.side} side failed (exit {self.proc.returncode}); the end of its log is above.")
        return json.loads(line)

    def step(self) -> dict[str, Any]:
        self.go_pipe.write("go\n")
        self.go_pipe.flush()
        return self.receive()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("vzframe", "torch", "transformers", "deepspeed", "trl", "accelerate", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, {cpu}; load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=4, help="prompts per step: spy games (TRL: distinct prompts)")
    parser.add_argument("--reencode", action="store_true", help="vzframe side: encode trained prompts again (before reuse)")
    parser.add_argument("--share-prefix", action="store_true", help="vzframe side: train.share_prefix=true")
    parser.add_argument("--group", type=int, default=3, help="group size: citizens per game (TRL: num_generations)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="max completion length")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (plus a warm-up and a cool-down step)")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate")
    parser.add_argument("--beta", type=float, default=0.04, help="KL coefficient")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--zero-stage", type=int, default=2, choices=(0, 1, 2, 3), help="vzframe's DeepSpeed ZeRO stage")
    parser.add_argument("--micro-batch", type=int, default=0, help="vzframe micro-batch (0: the whole step, as TRL)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="model directory (default: the tiny built-in model)")
    parser.add_argument("--side", choices=("vzframe", "trl"), help="run one side alone and print its per-step figures")
    parser.add_argument("--fds", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:
        baton = Baton(args.fds)
        summary = (run_vzframe if args.side == "vzframe" else run_trl)(args, baton)
        baton.done({"summary": summary})
        return

    try:
        import trl  # noqa: F401
    except ImportError:
        raise SystemExit(
            "TRL is not installed in this environment. Make a separate one (see this script's docstring):\n"
            "  python3 -m venv .venv-bench && .venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1\n"
            "  .venv-bench/bin/pip install trl -e . --no-build-isolation"
        ) from None
    from vzframe.models.tiny import ensure_default_model

    # DeepSpeed JIT-builds a CPU communication op into torch's shared extension cache; another
    # environment building it there makes the next run rebuild it (~30 s). Keep one per environment.
    tag = hashlib.sha1(sys.prefix.encode()).hexdigest()[:8]
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions" / f"venv-{tag}"))
    if not args.model:
        ensure_default_model()  # build once here, not in both children at once
    samples = args.games * args.group
    print(f"machine: {machine()}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(
        f"task: spy decision stage, {args.games} prompts x group {args.group} = {samples} samples/step, "
        f"max {args.max_new_tokens} new tokens, temperature {args.temperature}, lr {args.lr}, beta {args.beta}, "
        f"{args.steps} timed steps between a warm-up and a cool-down step, the sides taking turns",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="trl-compare-logs-") as logs:
        children = {side: Child(side, sys.argv[1:], logs) for side in ("vzframe", "trl")}
        steps: dict[str, list[dict[str, float]]] = {"vzframe": [], "trl": []}
        for step in range(total_steps(args)):
            order = ("vzframe", "trl") if step % 2 == 0 else ("trl", "vzframe")
            timed = 0 < step <= args.steps
            for side in order:
                report = children[side].step()
                if timed:
                    steps[side].append(report)
            if timed:
                vz, tr = steps["vzframe"][-1], steps["trl"][-1]
                print(
                    f"step {step}: vzframe {vz['wall']:.2f} s (generate {vz['generate']:.2f}, rest {vz['rest']:.2f}), "
                    f"TRL {tr['wall']:.2f} s (generate {tr['generate']:.2f}, rest {tr['rest']:.2f})",
                    flush=True,
                )
        summaries = {side: child.receive()["summary"] for side, child in children.items()}
        for child in children.values():
            child.proc.wait()

    def per_sample(side: str, key: str) -> float:
        return sum(s[key] for s in steps[side]) / (len(steps[side]) * summaries[side]["samples_per_step"])

    vz, tr = summaries["vzframe"], summaries["trl"]
    rows = [
        ("samples/step", f"{vz['samples_per_step']}", f"{tr['samples_per_step']}"),
        ("seconds per trained sample", f"{per_sample('vzframe', 'wall'):.4f}", f"{per_sample('trl', 'wall'):.4f}"),
        ("  of which generation", f"{per_sample('vzframe', 'generate'):.4f}", f"{per_sample('trl', 'generate'):.4f}"),
        ("  of which the rest", f"{per_sample('vzframe', 'rest'):.4f}", f"{per_sample('trl', 'rest'):.4f}"),
        ("trained samples per second", f"{1 / per_sample('vzframe', 'wall'):.2f}", f"{1 / per_sample('trl', 'wall'):.2f}"),
        ("CPU seconds per sample", f"{per_sample('vzframe', 'cpu'):.4f}", f"{per_sample('trl', 'cpu'):.4f}"),
        ("mean prompt tokens", f"{vz['mean_prompt_tokens']:.1f}", f"{tr['mean_prompt_tokens']:.1f}"),
        ("mean completion tokens", f"{vz['mean_completion_tokens']:.1f}", f"{tr['mean_completion_tokens']:.1f}"),
        ("mean reward", f"{vz['mean_reward']:.2f}", f"{tr['mean_reward']:.2f}"),
        ("torch threads", f"{vz['threads']}", f"{tr['threads']}"),
    ]
    print()
    print(f"{'':28}{'vzframe':>12}{'TRL':>12}")
    for name, a, b in rows:
        print(f"{name:28}{a:>12}{b:>12}")
    wall = per_sample("vzframe", "wall") / per_sample("trl", "wall")
    cpu = per_sample("vzframe", "cpu") / per_sample("trl", "cpu")
    paired = statistics.median(v["wall"] / t["wall"] for v, t in zip(steps["vzframe"], steps["trl"]))
    print(f"TRL's untimed work between steps (logging, next batch): {tr['untimed_between_steps'] * 1000:.0f} ms per step")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ratio vzframe/TRL, time per trained sample (< 1: vzframe is faster): {wall:.3f}")
    print(f"  CPU time: {cpu:.3f}; median of the per-step ratios (robust to a disturbed step): {paired:.3f}")


if __name__ == "__main__":
    main()
