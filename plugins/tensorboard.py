"""Logger plugin: every numeric metric of every step to TensorBoard event files under
``OUTPUT_DIR/tensorboard``. Off unless named: ``vzframe run games.spy schedulers.hysteresis
plugins.tensorboard``. Needs ``pip install tensorboard`` (the ``[tensorboard]`` extra).

A resumed run purges the events it is about to write again, so curves never double back.
"""

from __future__ import annotations

from typing import Any

from vzframe import dist
from vzframe.hookspecs import hookimpl

_writer: Any = None


@hookimpl
def on_run_start(config, output_dir, start_step):
    global _writer
    if dist.rank() != 0:
        return
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError("plugins.tensorboard needs the tensorboard package: pip install tensorboard") from exc
    if _writer is not None:
        _writer.close()
    _writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=start_step or None)
    _writer.add_text("config", "```yaml\n" + config.model_dump_json(indent=1) + "\n```", global_step=start_step)


@hookimpl
def on_step_end(step, metrics):
    if _writer is None:
        return
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and key != "step":
            _writer.add_scalar(key, value, global_step=step)
    _writer.flush()


@hookimpl
def on_phase_change(step, old, new):
    if _writer is not None:
        _writer.add_text("phase_change", f"{old} -> {new} after step {step}", global_step=step)
