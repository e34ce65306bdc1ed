"""``vzframe probe PATH``: did self-play transfer? Score a base model and its checkpoints on probes.

``PATH`` is a run's output directory (the base model it started from and every intact
checkpoint, or ``--step N``), or any Hugging Face model directory (that model alone, or paired
with ``--base DIR``). Every model answers the same items through the same rollout engine, greedy
by default (``--temperature T``: each item keeps its sampling seed across models, so changes
are measured on common random numbers). Per probe it reports the accuracy with its standard
error and, for each checkpoint, the change from the base with its paired standard error.

A run's results go to ``RUN/probe-step-N.json`` (beside ``eval-step-N.json``) with every
answer in ``RUN/probe-step-N.items.jsonl``; a model directory's to ``--json FILE`` if given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vzframe.config import ConfigError
from vzframe.probes.score import Answer, ProbeSet, answer, paired, paired_p_right, prepare, summary, warn_stderr

if TYPE_CHECKING:
    from rich.progress import Progress

STAMPS = ("vzframe-toy.json", "vzframe-tiny.json")
"""What vzframe writes beside the weights of a model it built (a toy base, the tiny model)."""


def taught_formats(model_dir: str | Path) -> list[str] | None:
    """The probe formats the warm start of the model in ``model_dir`` taught, from the stamp
    vzframe writes beside a model it built: a toy model's lists them (``probe_formats``; a stamp
    without the list taught captions and its game's turns only: ``[]``), the tiny random model
    was taught nothing (``[]``). None for any other model (a pretrained VLM: nobody here knows)
    or an unreadable stamp."""
    for stamp_name in STAMPS:
        stamp_file = Path(model_dir) / stamp_name
        if stamp_file.is_file():
            try:
                stamp = json.loads(stamp_file.read_text())
            except ValueError:
                return None
            formats = stamp.get("probe_formats", []) if isinstance(stamp, dict) else []
            return formats if isinstance(formats, list) else None
    return None


def in_warm_start(model_dir: str | Path, fmt: str) -> bool | None:
    """Whether the warm start of the model in ``model_dir`` taught question format ``fmt``
    (``taught_formats``); None where nobody here knows."""
    formats = taught_formats(model_dir)
    return None if formats is None else fmt in formats


def auto_score(model_dir: str | Path) -> str:
    """``--score auto``: ``likelihood`` for a model vzframe built (a toy base or the tiny random
    model) whose stamp lists no probe format its warm start taught, so its generated answers
    would all be off-format; ``generate`` for any other model (a pretrained VLM)."""
    return "likelihood" if taught_formats(model_dir) == [] else "generate"


def probe(
    path: str | Path, *, probes: Sequence[str] | None = None, labelled: Sequence[str] = (), items: int = 100,
    seed: int = 0, step: int | None = None, base: str | None = None, temperature: float = 0.0,
    max_new_tokens: int | None = None, batch_size: int = 32, engine: str | None = None, json_out: str | None = None,
    score: str = "auto", lmms_tasks: Sequence[str] = (), lmms_include: str | None = None, lmms_limit: int | None = None,
    warn: Callable[[str], None] = warn_stderr, show_progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Score (module docstring); return the report of the newest model scored (the one printed)."""
    from vzframe import checkpoint
    from vzframe.config import RolloutConfig, load_config
    from vzframe.plugins import build_registry, make_plugin_manager
    from vzframe.probes.labelled import LabelledSet

    target = Path(path).expanduser().resolve()
    run_source, rollout = None, RolloutConfig()
    base_path: str | None
    models: list[tuple[str, int | None, str]]  # (label, step, directory)
    if (target / "config.yaml").is_file():  # a run: its base model and its checkpoints
        from vzframe.runtime import resolve, resolve_model

        config = load_config(target / "config.yaml", [])
        setup = resolve(config)
        pm, run_source, rollout = setup.pm, setup.image_source, config.rollout
        base_path = base or resolve_model(setup)
        chosen = [checkpoint.latest(target, step=step)] if step is not None else checkpoint.intact(target)
        models = [(f"step {c.step}", c.step, str(c.path / "model")) for c in chosen if c is not None]
    elif (target / "config.json").is_file():  # a model directory
        pm, base_path = make_plugin_manager(), base
        models = [(target.name, None, str(target))]
    else:
        raise ConfigError(f"{target} is neither a run's output directory (config.yaml) nor a model directory (config.json).")
    registry = build_registry(pm)
    chosen_probes = choose_probes(registry.probes, probes)
    for file in labelled:
        try:
            own = LabelledSet(file)
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from None
        chosen_probes[own.name] = own
    if not chosen_probes and not lmms_tasks:
        raise ConfigError("No probe to score: name some with --probes, give a labelled set with --labelled FILE, "
                          "or lmms-eval tasks with --lmms-eval TASK.")  # fmt: skip
    if score not in ("auto", "generate", "likelihood"):
        raise ConfigError(f"--score {score!r}: choose auto, generate or likelihood.")
    if score == "auto":
        score = auto_score(base_path or models[0][2])
        if score == "likelihood":
            warn(f"scoring by likelihood: {base_path or models[0][2]} is a vzframe-built model whose warm start taught no "
                 "probe's answer format (--score generate to sample answers instead)")  # fmt: skip
    sets = prepare(chosen_probes, n=items, seed=seed, sources=registry.image_sources, run_source=run_source, warn=warn)
    if score == "likelihood":
        for s in [s for s in sets if not all(item.choices for item in s.items)]:
            warn(f"probe {s.probe.name!r} has open answers (items without choices): not scored by likelihood")
            sets.remove(s)
    if chosen_probes and not sets and not lmms_tasks:
        raise ConfigError("None of the chosen probes has an item to score (see the warnings above).")

    settings = rollout.model_copy(update={
        "temperature": temperature, "max_new_tokens": max_new_tokens or rollout.max_new_tokens,
        **({"engine": engine} if engine else {}),
    })  # fmt: skip
    labels = {"base": base_path} if base_path else {}
    labels.update({label: model_path for label, _, model_path in models})
    got: dict[str, dict[str, list[Answer]]] = {label: {} for label in labels}
    if sets:
        scorer = Scorer(settings, sets, batch_size=batch_size, show_progress=show_progress, mode=score)
        for label, model_path in labels.items():
            got[label] = scorer.answers(model_path, label)
        scorer.close()
    if lmms_tasks:  # lmms-eval's own tasks, on the same models, paired item by item
        out = target / "lmms-eval" if models and models[0][1] is not None else Path(json_out or "lmms-eval").with_suffix("")
        extra_sets, extra = lmms_results(labels, lmms_tasks, include=lmms_include, limit=lmms_limit, out=out)
        sets += extra_sets
        for label in labels:
            got[label].update(extra[label])
    base_answers = got.get("base") if base_path else None
    reports = []
    for label, ckpt_step, model_path in models:
        trained = got[label]
        report = make_report(sets, base_answers, trained, base_model=base_path, model=model_path, step=ckpt_step,
                             run=str(target) if ckpt_step is not None else None, settings=settings, items=items, seed=seed,
                             mode=score)  # fmt: skip
        reports.append(report)
        if ckpt_step is not None:
            write(target / f"probe-step-{ckpt_step}.json", report, sets, base_answers, trained)
    if not models and base_path and base_answers is not None:  # a run without checkpoints: the base alone
        report = make_report(sets, None, base_answers, base_model=None, model=base_path, step=None, run=str(target),
                             settings=settings, items=items, seed=seed, mode=score)  # fmt: skip
        reports.append(report)
    if json_out:
        Path(json_out).write_text(json.dumps(reports[-1] if len(reports) == 1 else {"reports": reports}, indent=1))
    return {"reports": reports}


def choose_probes(registered: dict[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    """The registered probes named (a name, or a prefix ending in ``.*``: ``clevr.*``), all of
    them for None, none for ``["none"]``."""
    if names is None:
        return dict(registered)
    if list(names) == ["none"]:
        return {}
    chosen = {}
    for name in names:
        found = [p for p in registered if p == name or (name.endswith(".*") and p.startswith(name[:-1]))]
        if not found:
            raise ConfigError(f"Unknown probe {name!r}. Registered: {', '.join(sorted(registered)) or 'none'}.")
        chosen.update({p: registered[p] for p in found})
    return chosen


class LmmsTask:
    """An lmms-eval task as it appears among the probes of a report (``lmms:TASK``)."""

    sources: tuple[str, ...] = ()

    def __init__(self, task: str) -> None:
        self.name, self.label, self.format = f"lmms:{task}", f"lmms-eval: {task}", f"lmms:{task}"


def lmms_results(
    labels: dict[str, str], tasks: Sequence[str], *, include: str | None, limit: int | None, out: Path,
) -> tuple[list[ProbeSet], dict[str, dict[str, list[Answer]]]]:  # fmt: skip
    """lmms-eval's ``tasks`` on every labelled model directory (``vzframe.probes.lmms.run_tasks``,
    in the environment it finds), as probe sets and answers that pair item by item."""
    from vzframe.probes import ProbeItem
    from vzframe.probes.lmms import LmmsEvalError, run_tasks

    names = {label: label.replace(" ", "-") for label in labels}
    try:
        results = run_tasks({names[label]: Path(path) for label, path in labels.items()}, list(tasks),
                            include_path=Path(include) if include else None, out=out, limit=limit)  # fmt: skip
    except (LmmsEvalError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"--lmms-eval: {exc}") from None
    first = results[names[next(iter(labels))]]
    sets = [ProbeSet(LmmsTask(task), [ProbeItem(f"lmms:{task}:{d}", None, task, ("-",)) for d in r["doc_ids"]], "lmms-eval", 0)
            for task, r in first.items()]  # fmt: skip
    answers: dict[str, dict[str, list[Answer]]] = {}
    for label in labels:
        answers[label] = {}
        for task, r in results[names[label]].items():
            responses = r.get("responses") or [""] * len(r["scores"])
            answers[label][f"lmms:{task}"] = [Answer(f"lmms:{task}:{d}", str(text), str(text), True, float(score))
                                              for d, text, score in zip(r["doc_ids"], responses, r["scores"])]  # fmt: skip
    return sets, answers


class Scorer:
    """One rollout engine, made for the first model and given each next model's weights
    (``sync_weights``, as a run does after each step), so vLLM is started once."""

    def __init__(self, settings: Any, sets: list[ProbeSet], *, batch_size: int, show_progress: bool, mode: str = "generate") -> None:
        self.settings, self.sets, self.batch_size, self.show_progress = settings, sets, batch_size, show_progress
        self.mode = mode
        self.engine: Any = None

    def answers(self, model_path: str, label: str) -> dict[str, list[Answer]]:
        import torch
        from transformers import AutoProcessor

        from vzframe.rollout import make_engine
        from vzframe.train.trainer import load_model, quiet_libraries

        quiet_libraries()
        model = load_model(model_path, bf16=False).eval()
        if self.mode == "likelihood":  # a forward pass of the model itself, no engine
            from vzframe.probes.score import likelihood

            processor = AutoProcessor.from_pretrained(model_path)
            total = sum(len(item.choices) for s in self.sets for item in s.items)
            with progress_bar(f"probes: {label}", total, enabled=self.show_progress) as advance:
                got = likelihood(model, processor, self.sets, progress=advance)
            return {name: [a for a in answers if a is not None] for name, answers in got.items()}
        if self.engine is None:
            processor = AutoProcessor.from_pretrained(model_path)
            self.engine = make_engine(self.settings.engine, model, processor, self.settings, seed=0, model_path=model_path)
        else:
            self.engine.sync_weights(model)
        total = sum(len(s.items) for s in self.sets)
        with torch.no_grad(), progress_bar(f"probes: {label}", total, enabled=self.show_progress) as advance:
            got = answer(self.engine, self.sets, progress=advance)
        return {name: [a for a in answers if a is not None] for name, answers in got.items()}

    def close(self) -> None:
        self.engine = None


class progress_bar:
    """A rich progress bar of ``total`` items as a context manager giving ``advance(n)``."""

    def __init__(self, what: str, total: int, *, enabled: bool = True) -> None:
        self.what, self.total, self.enabled = what, total, enabled
        self.bar: Progress | None = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import Progress

        self.bar = bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(self.what, total=self.total)
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def make_report(
    sets: list[ProbeSet], base: dict[str, list[Answer]] | None, trained: dict[str, list[Answer]], *, base_model: str | None,
    model: str, step: int | None, run: str | None, settings: Any, items: int, seed: int, mode: str = "generate",
) -> dict[str, Any]:  # fmt: skip
    """The JSON of one model's probe figures, with the change from ``base`` where given."""
    out: dict[str, Any] = {}
    formats = taught_formats(base_model or model)  # read once, not once per probe
    for s in sets:
        name = s.probe.name
        entry: dict[str, Any] = {
            "label": s.probe.label, "format": s.probe.format, "source": s.source, "seed": s.seed,
            "items": len(s.items), "skipped": len(s.skipped),
            "in_warm_start": None if formats is None else s.probe.format in formats,
            "trained": summary(trained[name], s.items),
        }  # fmt: skip
        if base is not None:
            entry["base"] = summary(base[name], s.items)
            entry["change"], entry["change_se"] = paired(base[name], trained[name])
            if (fine := paired_p_right(base[name], trained[name])) is not None:
                entry["change_p_right"], entry["change_p_right_se"] = fine
        out[name] = entry
    return {
        "run": run, "step": step, "model": model, "base_model": base_model, "items_per_probe": items, "seed": seed,
        "decoding": {"score": mode, "engine": settings.engine if mode == "generate" else "hf forward",
                     "temperature": settings.temperature, "max_new_tokens": settings.max_new_tokens},
        "probes": out,
    }  # fmt: skip


def write(dest: Path, report: dict[str, Any], sets: list[ProbeSet], base: dict[str, list[Answer]] | None,
          trained: dict[str, list[Answer]]) -> None:  # fmt: skip
    """``dest`` (the report) and ``dest``'s ``.items.jsonl`` (every item with both answers)."""
    dest.write_text(json.dumps(report, indent=1))
    with open(dest.with_suffix(".items.jsonl"), "w") as f:
        for s in sets:
            name = s.probe.name
            for i, item in enumerate(s.items):
                row = {"probe": name, "id": item.id, "kind": item.kind, "image": getattr(item.image, "id", None),
                       "question": item.question, "answers": list(item.answers),
                       "trained": _answer_row(trained[name][i])}  # fmt: skip
                if base is not None:
                    row["base"] = _answer_row(base[name][i])
                f.write(json.dumps(row) + "\n")


def _answer_row(a: Answer) -> dict[str, Any]:
    row = {"completion": a.completion, "answer": a.answer, "tagged": a.tagged, "score": a.score}
    return row if a.p_right is None else {**row, "p_right": a.p_right}


def print_reports(reports: list[dict[str, Any]]) -> None:
    """A table of accuracy (a row per probe; the base's, then each model's with its change), and
    with likelihood scoring a second of the probability on the right choices."""
    from rich.console import Console

    if not reports:
        return
    first = reports[0]
    how = first["decoding"]
    how = "likelihood of each choice" if how.get("score") == "likelihood" else f"{how['engine']}, temperature {how['temperature']}"
    console = Console(width=200)
    console.print(_table(reports, f"Probes of {first['run'] or first['model']} ({how}): accuracy", "accuracy", "se", "change"),
                  highlight=False)  # fmt: skip
    fine = any("p_right" in e["trained"] for e in first["probes"].values())
    if fine:
        console.print(_table(reports, "Probability on the right choices (normalised over each item's choices)", "p_right",
                             "p_right_se", "change_p_right"), highlight=False)  # fmt: skip
    console.print(
        "± one standard error over items; (+x ± s): the change from the base with its paired standard error (the same "
        "items, the same sampling seeds). 'in warm start': whether the base model's warm start taught this question format "
        "(yes: a sharpened skill; no: transfer; unknown: a pretrained model)."
        + (" Accuracy takes each item's most likely choice; the probability on the right choices moves before it does." if fine else ""),
        highlight=False, soft_wrap=True,
    )


def _table(reports: list[dict[str, Any]], title: str, key: str, se_key: str, change: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("probe", "items", "in warm start"):
        table.add_column(column, justify="right" if column == "items" else "left")
    first = reports[0]
    has_base = any("base" in e for e in first["probes"].values())
    if has_base:
        table.add_column("base", justify="right")
    for r in reports:
        table.add_column(f"step {r['step']}" if r["step"] is not None else Path(r["model"]).name, justify="right")
    for name, entry in first["probes"].items():
        if key not in entry["trained"]:
            continue
        seen = {True: "yes", False: "no", None: "unknown"}[entry["in_warm_start"]]
        cells = [f"{entry['label']} ({name})", str(entry["items"]), seen]
        if has_base:
            cells.append(_cell(entry["base"][key], entry["base"][se_key]))
        for r in reports:
            e = r["probes"][name]
            moved = f" ({e[change]:+.3f} ± {e[change + '_se']:.3f})" if change in e else ""
            cells.append(_cell(e["trained"][key], e["trained"][se_key]) + moved)
        table.add_row(*cells)
    return table


def _cell(value: float, se: float) -> str:
    return f"{value:.3f}" + ("" if math.isnan(se) else f" ± {se:.3f}")
