"""DeepSpeed's state of a checkpoint (``step-N/deepspeed/``), read back without unpickling
arbitrary objects: the trainer's engine loads through ``safe_checkpoint_engine``, which calls
``torch.load(weights_only=True)`` and admits only ``safe_globals()`` besides tensors and
containers. Run folders are untrusted input; see docs/security.md.
"""

from __future__ import annotations

from typing import Any


def safe_globals() -> list[Any]:
    """The classes DeepSpeed's own checkpoints contain besides tensors and containers. Only
    these may be rebuilt by ``torch.load(weights_only=True)``: plain data holders."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [fragment_address, LossScaler, DynamicLossScaler, ZeroStageEnum]


def safe_checkpoint_engine(config: Any) -> Any:
    """DeepSpeed's torch checkpoint engine with a weights-only ``load``: a pickled object in a
    run folder is an error, never code that runs."""
    import torch
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    class SafeCheckpointEngine(TorchCheckpointEngine):  # type: ignore[misc]  # DeepSpeed is untyped
        def load(self, path: str, map_location: Any = None) -> Any:
            with torch.serialization.safe_globals(safe_globals()):
                return torch.load(path, map_location=map_location, weights_only=True)

    return SafeCheckpointEngine(config)
