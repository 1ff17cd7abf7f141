"""A training run's options (:class:`TrainConfig`) and their checks.

The options split in two. *Run options* define the run and are stored in every ``latest.pth``: on
resume they come back from it, and one given anew that differs is applied from the resumed iteration
and recorded (see :mod:`scales_edge.training.loop`). *Environment options* (where the run is, which
device, how many threads, ``force``) belong to the invocation and are never taken from a checkpoint.
The model (``arch`` + ``model``) is fixed for the life of a run.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError

AMP_MODES = ("off", "bf16", "fp16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

#: Options that belong to the invocation, not to the run.
ENVIRONMENT = ("out_dir", "workers", "threads", "device", "force")


@dataclass
class TrainConfig:
    arch: str
    train_dir: str
    out_dir: str
    model: dict[str, Any] = field(default_factory=dict)  # build_model keywords (scale included)
    val_dir: str | None = None
    lr_dir: str | None = None  # LR images made beforehand (DIV2K's X4 folders); else made at start
    patch_size: int = 48  # LR patch side
    batch_size: int = 16  # per iteration, over all processes (each takes batch_size / world size)
    iters: int = 1000
    lr: float = 2e-4
    lr_step: int = 200_000  # multiply the learning rate by lr_gamma every lr_step iterations
    lr_gamma: float = 0.5
    val_every: int = 500
    save_every: int = 500
    log_every: int = 100
    repeat: int = 100  # patches drawn per image per pass over the data
    seed: int = 0
    init: str | None = None  # a new run starts from this checkpoint's tensors of matching name and shape
    amp: str = "off"  # mixed precision: off, bf16 or fp16 (autocast; a grad scaler for fp16)
    workers: int = 0
    threads: int | None = None
    device: str = "auto"  # auto, cpu, cuda or cuda:N (under torchrun: cuda:LOCAL_RANK)
    force: bool = False  # start over in an out_dir that holds a run

    @property
    def scale(self) -> int:
        return int(self.model.get("scale", 4))

    def run_options(self) -> dict[str, Any]:
        """The options stored with the run (everything but the model and the environment)."""
        return {k: v for k, v in asdict(self).items() if k not in ENVIRONMENT and k not in ("arch", "model")}

    def check(self) -> None:
        """Refuse values no run can use, naming the flag (``--patch-size must be ...``)."""
        positive = ("patch_size", "batch_size", "iters", "lr_step", "val_every", "save_every", "log_every", "repeat")
        for name in positive:
            _want(self, name, lambda v: _is_int(v) and v >= 1, "a positive integer")
        _want(self, "workers", lambda v: _is_int(v) and v >= 0, "0 or a positive integer")
        _want(self, "seed", lambda v: _is_int(v) and v >= 0, "0 or a positive integer")
        _want(self, "threads", lambda v: v is None or (_is_int(v) and v >= 1), "a positive integer")
        _want(self, "lr", lambda v: _is_num(v) and 0 < v < math.inf, "a positive number")
        _want(self, "lr_gamma", lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]")
        _want(self, "amp", lambda v: v in AMP_MODES, "one of " + ", ".join(AMP_MODES))
        _want(self, "device", lambda v: isinstance(v, str) and DEVICE_PATTERN.match(v), "auto, cpu, cuda or cuda:N")
        if not self.train_dir:
            raise ConfigError("give the folder of HR training images (TRAIN_DIR)")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _want(cfg: TrainConfig, name: str, ok, what: str) -> None:
    value = getattr(cfg, name)
    if not ok(value):
        raise ConfigError(f"{flag(name)} must be {what}, got {value!r}")


def run_option_names() -> list[str]:
    return [f.name for f in fields(TrainConfig) if f.name not in ENVIRONMENT and f.name not in ("arch", "model")]
