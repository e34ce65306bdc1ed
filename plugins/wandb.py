"""Logger plugin: metrics to Weights & Biases. Off unless named: ``vzframe run games.spy
schedulers.hysteresis plugins.wandb``. Needs ``pip install wandb`` (the ``[wandb]`` extra);
configure it with W&B's own variables (``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_MODE``).

The W&B run id is kept in ``OUTPUT_DIR/wandb-id``, so ``vzframe resume`` continues the same
W&B run instead of starting a new one.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from vzframe import dist
from vzframe.hookspecs import hookimpl

_run: Any = None


@hookimpl
def on_run_start(config, output_dir, start_step):
    global _run
    if dist.rank() != 0:
        return
    try:
        import wandb
    except ImportError as exc:
        raise RuntimeError("plugins.wandb needs the wandb package: pip install wandb") from exc
    id_file = output_dir / "wandb-id"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    _run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "vzframe"),
        id=id_file.read_text().strip(),
        resume="allow",
        dir=str(output_dir),
        name=output_dir.name,
        config=config.model_dump(mode="json"),
    )


@hookimpl
def on_step_end(step, metrics):
    if _run is not None:
        _run.log({k: v for k, v in metrics.items() if k != "step"}, step=step)
