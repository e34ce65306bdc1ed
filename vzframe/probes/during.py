"""Probes during a run (``probe_every=N``): transfer figures logged beside a step's metrics.

Every ``probe_every`` steps (and at the last) the live policy answers the same held-out items
(drawn once at the start: ``vzframe.probes.score.prepare``), and the step's metrics gain
``probe/NAME`` (accuracy) for each probe, so metrics.jsonl, TensorBoard and W&B show them as
training goes. Ranks split the items and sum their scores; each rank makes the same number of
model calls (a short share repeats its last item, scored once), as ZeRO-3 needs.
"""

from __future__ import annotations

from typing import Any

from vzframe.probes.score import ProbeSet, answer, likelihood, prepare


class DuringRun:
    """The items a run probes, and how to score the live model on them."""

    def __init__(self, config: Any, pm: Any, image_source: Any, *, warn: Any) -> None:
        from vzframe.plugins import build_registry
        from vzframe.probes.command import choose_probes

        registry = build_registry(pm)
        chosen = choose_probes(registry.probes, config.probe.names or None)
        self.score = config.probe.score
        self.batch_size = config.probe.batch_size
        self.sets = prepare(chosen, n=config.probe.items, seed=config.probe.seed, sources=registry.image_sources,
                            run_source=image_source, warn=warn)  # fmt: skip
        if self.score == "likelihood":
            self.sets = [s for s in self.sets if all(item.choices for item in s.items)]

    def measure(self, engine: Any, model: Any, processor: Any) -> dict[str, float]:
        """``{"probe/NAME": accuracy}`` of the live policy (``engine`` for generated answers,
        ``model`` itself for likelihoods), summed over ranks."""
        import torch

        from vzframe import dist
        from vzframe.rollout.hf import gathered

        shares = self._share(dist.rank(), dist.world_size())
        mine = [s for s, _ in shares]
        if self.score == "likelihood":
            was_training = model.training
            with torch.no_grad(), gathered(model):
                got = likelihood(model, processor, mine)
            model.train(was_training)
        else:
            got = answer(engine, mine, batch_size=self.batch_size)
        sums: dict[str, float] = {}
        for s, real in shares:
            scores = [a.score for a in got[s.probe.name][:real] if a is not None]
            sums[f"{s.probe.name}:right"] = sum(scores)
            sums[f"{s.probe.name}:n"] = len(scores)
        total = dist.all_reduce_sum(sums)
        return {f"probe/{s.probe.name}": total[f"{s.probe.name}:right"] / max(1.0, total[f"{s.probe.name}:n"]) for s in self.sets}

    def _share(self, rank: int, world: int) -> list[tuple[ProbeSet, int]]:
        """This rank's items of every probe, each share padded to the longest share's length
        by repeating an item, with the number of real (unpadded) items."""
        out = []
        for s in self.sets:
            items = s.items[rank::world]
            pad = -(-len(s.items) // world) - len(items)
            out.append((ProbeSet(s.probe, items + [items[-1] if items else s.items[0]] * pad, s.source, s.seed), len(items)))
        return out
