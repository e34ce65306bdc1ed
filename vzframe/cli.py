"""The ``vzframe`` command: thin wrappers over the runtime.

    vzframe run games.spy schedulers.hysteresis [--config FILE.yaml] [key=value ...]
    vzframe resume OUTPUT_DIR [key=value ...]
    vzframe export OUTPUT_DIR [--step N] DEST
    vzframe plugins
    vzframe eval OUTPUT_DIR [--games N] [--seed S] [--step N] [--base-cache DIR]
    vzframe probe OUTPUT_DIR|MODEL_DIR [--probes NAME ...] [--labelled FILE] [--items N] [--step N]
    vzframe model list
    vzframe model build-tiny DIR
    vzframe model build-toy DIR      (added by plugins.toy_world)
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from vzframe.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from vzframe.protocols import Game, ImageSource, PhaseScheduler

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _split_run_args(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional words without ``=`` are plugin names; ``key=value`` are overrides."""
    plugins = [a for a in items if "=" not in a]
    overrides = [a for a in items if "=" in a]
    return plugins, overrides


def cmd_run(args: argparse.Namespace) -> int:
    from vzframe.config import load_config

    plugins, overrides = _split_run_args(args.items)
    config = load_config(args.config, overrides, plugins)
    if args.help_config:
        print(_help_config(config))
        return 0
    from vzframe import dist
    from vzframe.runtime import train

    out = train(config, display=not args.quiet)
    if dist.rank() == 0:
        print(f"Run written to {out}")
        print(next_steps(out))
    return 0


def next_steps(out: Path) -> str:
    """What to look at once a run has finished."""
    return (
        "Next:\n"
        f"  vzframe report {out}      # an HTML page: curves, phases, games\n"
        f"  vzframe eval {out}        # held-out games against the frozen base model\n"
        f"  vzframe probe {out}       # did it transfer? held-out questions, base vs checkpoints\n"
        f"  vzframe resume {out} steps=N   # train on"
    )


def _help_config(config: RunConfig) -> str:
    """Every key a run with ``config`` takes: the core's, then those of the game, scheduler and
    image source it names (their own pydantic ``Config``), with defaults and meanings."""
    from vzframe.config import describe, format_keys
    from vzframe.models import choose
    from vzframe.plugins import build_registry, make_plugin_manager

    registry = build_registry(make_plugin_manager(config.plugins))
    owner = registry.owners.get
    games: dict[str, type[Game]] = registry.games
    schedulers: dict[str, type[PhaseScheduler]] = registry.schedulers
    image_sources: dict[str, type[ImageSource]] = registry.image_sources
    blocks = [format_keys("Core keys (key=value, or in --config FILE.yaml):", describe(RunConfig))]
    for name, game_cls in games.items():
        title = f"Game {name!r} ({owner(('games', name))}), keys game.KEY:"
        blocks.append(format_keys(title, describe(game_cls.Config, "game.")))
    for name, scheduler_cls in schedulers.items():
        title = f"Scheduler {name!r} ({owner(('schedulers', name))}), keys scheduler.KEY:"
        blocks.append(format_keys(title, describe(scheduler_cls.Config, "scheduler.")))
    images, why = config.images, f"images={config.images}"
    if len(registry.games) == 1:  # the source a run would use, chosen as runtime.resolve does
        (game_name, game_cls), = registry.games.items()
        images = choose(config.model, config.images, game_name, game_cls, registry.models, registry.image_sources).images
        why = why if config.images else f"game {game_name!r} runs on it; images=NAME chooses another"
    if images and images not in registry.image_sources:
        raise ConfigError(
            f"Unknown image source {images!r}. Available: {', '.join(sorted(registry.image_sources))}. "
            "Load the plugin that provides it, or see `vzframe plugins`."
        )
    if images:
        title = f"Image source {images!r} ({owner(('image_sources', images))}; {why}), keys image_source.KEY:"
        blocks.append(format_keys(title, describe(image_sources[images].Config, "image_source.")))
    if not (registry.games and registry.schedulers):
        blocks.append(
            "A game's, scheduler's and image source's own keys (game.KEY, scheduler.KEY, image_source.KEY) are\n"
            "listed when you name them, e.g.\n"
            "    vzframe run games.spy schedulers.hysteresis --help-config\n"
            "    vzframe run games.odd_one_out schedulers.alternate images=charts --help-config\n"
            f"Installed plugins: `vzframe plugins`. Image sources: {', '.join(sorted(registry.image_sources))}."
        )
    return "\n\n".join(blocks)


def cmd_resume(args: argparse.Namespace) -> int:
    from vzframe import dist
    from vzframe.config import load_config
    from vzframe.runtime import train

    out = Path(args.output_dir).expanduser().resolve()
    if not (out / "config.yaml").is_file():
        raise ConfigError(f"{out} holds no run (no config.yaml). Give the output_dir of a `vzframe run`.")
    config = load_config(out / "config.yaml", [*args.items, f"output_dir={out}"])
    train(config, display=not args.quiet, resume=True)
    if dist.rank() == 0:
        print(f"Run in {out} has finished its {config.steps} steps.")
        print(next_steps(out))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vzframe.export import export

    out = Path(args.output_dir).expanduser().resolve()
    ckpt = export(out, Path(args.dest).expanduser().resolve(), step=args.step, adapter=args.adapter)
    if note := ckpt.fallback_note():
        print(f"warning: {note}", file=sys.stderr)
    what = "its LoRA adapters, a PEFT adapter directory" if args.adapter else "a Hugging Face model directory"
    print(f"Exported step {ckpt.step} of {out} to {args.dest} ({what}, verified).")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from vzframe.plugins import DEFAULT_PLUGINS, installed_plugins, make_plugin_manager, plugin_infos

    names = sorted(set(installed_plugins()) | set(DEFAULT_PLUGINS))
    pm = make_plugin_manager(names)
    table = Table(title="vzframe plugins")
    for col in ("name", "version", "module", "hooks"):
        table.add_column(col)
    for info in sorted(plugin_infos(pm), key=lambda i: i.name):
        table.add_row(info.name, info.version, info.module, ", ".join(info.hooks))
    Console(width=200).print(table)
    return 0


def cmd_model_build_tiny(args: argparse.Namespace) -> int:
    from vzframe.models.tiny import build_tiny

    path = build_tiny(args.dir, seed=args.seed)
    print(f"Tiny Qwen2.5-VL model written to {path}")
    return 0


def cmd_model_list(args: argparse.Namespace) -> int:
    from vzframe.plugins import build_registry, installed_plugins, make_plugin_manager

    pm = make_plugin_manager(sorted(installed_plugins()), on_error=lambda name, exc: print(
        f"warning: skipping plugin {name!r}: {exc}", file=sys.stderr))
    registry = build_registry(pm)
    for name, spec in sorted(registry.models.items()):
        where = "built on first use" if callable(spec.path) else str(spec.path)
        print(f"{name:16} {registry.owners[('models', name)]:20} images={spec.images or '-':12} {spec.description} [{where}]")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from vzframe.evaluate import evaluate, print_report

    report = evaluate(args.output_dir, games=args.games, seed=args.seed, step=args.step, base_cache=args.base_cache)
    print_report(report)
    print(f"Written to {Path(report['run']) / ('eval-step-%d.json' % report['step'])}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from vzframe.probes.command import print_reports, probe

    result = probe(
        args.path, probes=args.probes, labelled=args.labelled or (), items=args.n_items, seed=args.seed, step=args.step,
        base=args.base, temperature=args.temperature, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
        engine=args.engine, json_out=args.json, score=args.score, show_progress=not args.quiet,
        lmms_tasks=args.lmms_eval or (), lmms_include=args.lmms_include, lmms_limit=args.lmms_limit,
    )  # fmt: skip
    print_reports(result["reports"])
    steps = [r["step"] for r in result["reports"] if r["step"] is not None]
    if steps:
        print(f"Written to {Path(args.path) / 'probe-step-N.json'} for N in {steps} (every answer in probe-step-N.items.jsonl)")
    return 0


def build_parser(plugins: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``plugins`` (default: every installed one) may add subcommands."""
    parser = argparse.ArgumentParser(prog="vzframe", description="Self-play training of vision-language models.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="train: vzframe run games.spy schedulers.hysteresis [key=value ...]",
        description="Train: name a game and a scheduler plugin, then key=value overrides (defaults < --config "
        "FILE.yaml < key=value). Add --help-config to list every key the named plugins take.",
    )
    run.add_argument("items", nargs="*", help="plugin names (games.spy, schedulers.hysteresis) and key=value overrides")
    run.add_argument("--config", help="YAML file of config values (overridden by key=value)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--help-config", action="store_true",
        help="list every config key with its default and meaning, with the keys of the game, scheduler "
        "and image source named (e.g. `vzframe run games.spy schedulers.hysteresis --help-config`)",
    )
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a run from its newest complete checkpoint")
    resume.add_argument("output_dir")
    resume.add_argument("items", nargs="*", help="key=value changes, e.g. steps=200 to extend the run")
    resume.add_argument("--quiet", action="store_true", help="no progress display")
    resume.set_defaults(func=cmd_resume)

    export = sub.add_parser("export", help="write a checkpoint's model as a plain Hugging Face directory")
    export.add_argument("output_dir")
    export.add_argument("dest")
    export.add_argument("--step", type=int, help="the checkpoint's step (default: the newest complete one)")
    export.add_argument("--adapter", action="store_true", help="a train.lora run: write its adapters alone (default: merged into the base)")
    export.set_defaults(func=cmd_export)

    evaluate = sub.add_parser("eval", help="held-out games: the trained model against frozen base-model opponents")
    evaluate.add_argument("output_dir")
    evaluate.add_argument("--games", type=int, default=64, help="games per matchup (default 64)")
    evaluate.add_argument("--seed", type=int, default=1000, help="seed of the games and their pictures (default 1000)")
    evaluate.add_argument("--step", type=int, help="the checkpoint's step (default: the newest complete one)")
    evaluate.add_argument("--base-cache", metavar="DIR", help="share the base matchup's games with other runs' evaluations through DIR")
    evaluate.set_defaults(func=cmd_eval)

    probe_cmd = sub.add_parser(
        "probe", help="transfer: score a run's base model and checkpoints (or any model directory) on probes",
        description="Score the base model and every checkpoint of a run (or one model directory) on probes: "
        "zero-label questions about held-out pictures (CLEVR scenes, charts) or your own labelled set. Prints "
        "accuracy, the change from the base and its paired standard error; writes RUN/probe-step-N.json.",
    )
    probe_cmd.add_argument("path", help="a run's output directory, or a Hugging Face model directory")
    probe_cmd.add_argument("--probes", nargs="+", metavar="NAME", help="probes to score, e.g. clevr.verify or clevr.* (default: all registered; none: only --labelled and --lmms-eval)")
    probe_cmd.add_argument("--labelled", action="append", metavar="FILE", help="also score a labelled set: a .jsonl file or a saved dataset folder (repeatable)")
    probe_cmd.add_argument("--items", dest="n_items", type=int, default=100, help="items per generated probe (default 100)")
    probe_cmd.add_argument("--seed", type=int, default=0, help="which held-out items (default 0)")
    probe_cmd.add_argument("--step", type=int, help="only this checkpoint (default: every intact one)")
    probe_cmd.add_argument("--base", help="the base model directory to pair with (default: the run's; none for a model directory)")
    probe_cmd.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default); above 0, each item keeps its seed across models")
    probe_cmd.add_argument("--max-new-tokens", type=int, help="default: the run's rollout.max_new_tokens")
    probe_cmd.add_argument("--batch-size", type=int, default=32, help="observations per generation call (default 32)")
    probe_cmd.add_argument("--engine", choices=("hf", "vllm"), help="rollout engine (default: the run's rollout.engine)")
    probe_cmd.add_argument("--score", choices=("auto", "generate", "likelihood"), default="auto",
                           help="generate: sample an answer through the rollout engine; likelihood: rank each item's choices "
                           "by log-probability (closed answers only; measures models that never learnt the format); auto "
                           "(default): likelihood for a vzframe-built base (toy, tiny) never taught a probe format, else generate")
    probe_cmd.add_argument("--lmms-eval", nargs="+", metavar="TASK", help="also run these lmms-eval tasks on the same models "
                           '(pip install -e ".[eval]", or VZFRAME_LMMS_PYTHON=python of an environment that has it)')
    probe_cmd.add_argument("--lmms-include", metavar="DIR", help="a folder of local lmms-eval tasks (lmms-eval's --include_path)")
    probe_cmd.add_argument("--lmms-limit", type=int, metavar="N", help="the first N items of each lmms-eval task")
    probe_cmd.add_argument("--json", help="also write the report to this file")
    probe_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    probe_cmd.set_defaults(func=cmd_probe)

    plugins_cmd = sub.add_parser("plugins", help="list installed plugins, their versions and hooks")
    plugins_cmd.set_defaults(func=cmd_plugins)

    model = sub.add_parser("model", help="model utilities")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_sub.add_parser("list", help="models registered by plugins, for model=NAME").set_defaults(func=cmd_model_list)
    tiny = model_sub.add_parser("build-tiny", help="build the tiny offline Qwen2.5-VL model into DIR")
    tiny.add_argument("dir")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_model_build_tiny)
    _plugin_commands(sub, model_sub, plugins)
    return parser


def _plugin_commands(subparsers: Subparsers, model_subparsers: Subparsers,
                     plugins: list[str] | None) -> None:
    """Let installed plugins add subcommands and ``model`` subcommands (``register_commands``).
    A plugin that fails to load is reported and skipped, so one broken package never breaks the CLI."""
    from vzframe.plugins import installed_plugins, make_plugin_manager

    names = sorted(installed_plugins()) if plugins is None else plugins
    pm = make_plugin_manager(names, on_error=lambda name, exc: print(
        f"warning: skipping plugin {name!r}: {exc}", file=sys.stderr))
    pm.hook.register_commands(subparsers=subparsers, model_subparsers=model_subparsers)


def show_deprecations() -> None:
    """Show each ``DeprecationWarning`` that vzframe raises for a plugin (one in the 0.1 shape,
    ``vzframe.gamespec``) once: Python hides them outside ``__main__``, yet the person running
    ``vzframe run`` is the one who can update the plugin. ``-W``/``PYTHONWARNINGS`` take precedence."""
    if not sys.warnoptions:
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"(vzframe|plugins|games)(\.|$)")


def main(argv: list[str] | None = None, *, plugins: list[str] | None = None) -> int:
    from vzframe import dist

    dist.configure_threads()  # before anything imports torch: OpenMP reads its settings once
    from vzframe.checkpoint import CheckpointError
    from vzframe.plugins import PluginError

    with warnings.catch_warnings():  # restored on return: main() may be called in-process
        show_deprecations()
        parser = build_parser(plugins)
        args, extra = parser.parse_known_args(argv)
        # `run A B --quiet k=v`: argparse stops collecting positionals at the first option.
        positional = getattr(args, "items", None)
        if positional is not None and not any(e.startswith("-") for e in extra):
            positional.extend(extra)
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        try:
            code: int = args.func(args)
            return code
        except (ConfigError, PluginError, CheckpointError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
