"""Training SR models on a folder of HR images (DIV2K style), on one process or many (torchrun).

* :mod:`.config` — :class:`TrainConfig`, the run's options and their checks;
* :mod:`.patches` — LR/HR patches and how the processes share each epoch;
* :mod:`.distributed` — devices, ``torchrun`` processes (NCCL on GPUs, gloo on CPUs);
* :mod:`.log` — the console, ``train.log`` and ``metrics.jsonl``;
* :mod:`.loop` — checks, resume, the steps, validation, checkpoints, a clean stop;
* :mod:`.plot` — loss and PSNR curves from ``metrics.jsonl`` (needs matplotlib).

The optimisation is the paper's: L1 loss, Adam (β1 0.9, β2 0.999, ε 1e-8), the learning rate
multiplied by ``lr_gamma`` every ``lr_step`` iterations (2e-4, halved every 200 epochs).
"""

from .config import AMP_MODES, TrainConfig
from .log import RunLog
from .loop import Interrupted, RunState, Validator, evaluate, read_run, resolve_config, train
from .patches import PatchDataset, ShardedSampler

__all__ = [
    "AMP_MODES",
    "Interrupted",
    "PatchDataset",
    "RunLog",
    "RunState",
    "ShardedSampler",
    "TrainConfig",
    "Validator",
    "evaluate",
    "read_run",
    "resolve_config",
    "train",
]
