"""Training SR models on a folder of HR images (DIV2K style), on one process or many.

* Data: each HR image is mod-cropped and down-scaled once with MATLAB-compatible bicubic
  (:func:`scales_edge.data.make_lr`); samples are random aligned LR/HR patches with random flips and
  90° rotations.
* Optimisation: L1 loss, Adam (β1 0.9, β2 0.999, ε 1e-8), learning rate halved every ``lr_step``
  iterations (the paper: 2e-4, halved every 200 epochs).
* Checkpoints: ``latest.pth`` (our format plus the optimizer/scheduler/iteration, to resume) every
  ``save_every`` iterations and at the end, and ``model.pth`` (our format, weights only) at the end.
* Distributed data parallel through ``torch.distributed`` when launched by ``torchrun`` (the
  ``WORLD_SIZE``/``RANK`` environment variables): gloo on CPU, NCCL on GPUs. Every process draws
  different patches (a :class:`~torch.utils.data.DistributedSampler`); rank 0 validates and writes.
  The batch size is per process.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .checkpoints import load_state, read_checkpoint, save_checkpoint
from .data import imread, list_images, make_lr, modcrop
from .errors import CheckpointError, ConfigError
from .metrics import tensor_to_uint8, uint8_to_tensor
from .quality import mean_scores, score_images
from .models import build_model


@dataclass
class TrainConfig:
    arch: str
    train_dir: str
    out_dir: str
    model: dict[str, Any] = field(default_factory=dict)  # build_model keywords (scale included)
    val_dir: str | None = None
    patch_size: int = 48  # LR patch side
    batch_size: int = 16  # per process
    iters: int = 1000
    lr: float = 2e-4
    lr_step: int = 200_000  # halve the learning rate every lr_step iterations
    lr_gamma: float = 0.5
    val_every: int = 500
    save_every: int = 500
    repeat: int = 100  # patches drawn per image per pass over the data
    workers: int = 0
    seed: int = 0
    threads: int | None = None
    resume: bool = True

    @property
    def scale(self) -> int:
        return int(self.model.get("scale", 4))


class PatchDataset(Dataset):
    """Random aligned LR/HR patches with flips and rotations from a list of HR images."""

    def __init__(self, paths: list[Path], scale: int, patch_size: int, repeat: int = 100) -> None:
        self.scale = scale
        self.patch = patch_size
        self.repeat = repeat
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for p in paths:
            hr = modcrop(imread(p), scale)
            if min(hr.shape[:2]) < patch_size * scale:
                raise ConfigError(f"{p}: {hr.shape[1]}x{hr.shape[0]} is smaller than an HR patch of {patch_size * scale}")
            self.pairs.append((make_lr(hr, scale), hr))
        if not self.pairs:
            raise ConfigError("no training images")

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.pairs[index % len(self.pairs)]
        # Per-sample randomness from torch's generator: seeded per worker and per process.
        y = int(torch.randint(0, lr.shape[0] - self.patch + 1, ()))
        x = int(torch.randint(0, lr.shape[1] - self.patch + 1, ()))
        s, p = self.scale, self.patch
        lr_p = lr[y : y + p, x : x + p]
        hr_p = hr[y * s : (y + p) * s, x * s : (x + p) * s]
        flip_h, flip_v, rot = (bool(torch.randint(0, 2, ())) for _ in range(3))
        lr_p, hr_p = (_augment(a, flip_h, flip_v, rot) for a in (lr_p, hr_p))
        return uint8_to_tensor(lr_p)[0], uint8_to_tensor(hr_p)[0]


def _augment(img: np.ndarray, flip_h: bool, flip_v: bool, rot: bool) -> np.ndarray:
    if flip_h:
        img = img[:, ::-1]
    if flip_v:
        img = img[::-1]
    if rot:
        img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(img)


@torch.no_grad()
def evaluate(model: nn.Module, paths: list[Path], scale: int) -> dict[str, float]:
    """Mean PSNR/SSIM (Y channel, border ``scale``) of ``model`` and of bicubic on HR images."""
    was_training = model.training
    model.eval()
    try:
        scores = score_images(lambda lr: tensor_to_uint8(model(uint8_to_tensor(lr))), paths, scale)
    finally:
        model.train(was_training)
    return mean_scores(scores)


def _dist_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def train(
    cfg: TrainConfig,
    progress: Callable[[int, int, float, dict[str, float] | None], None] | None = None,
) -> dict[str, Any]:
    """Train per ``cfg``; returns the final metrics. ``progress(it, iters, loss, val)`` is called on rank 0."""
    rank, world = _dist_setup()
    try:
        return _train(cfg, rank, world, progress)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg, rank, world, progress):
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    out = Path(cfg.out_dir)
    latest = out / "latest.pth"
    train_paths = list_images(cfg.train_dir)
    val_paths = list_images(cfg.val_dir) if cfg.val_dir else []

    model = build_model(cfg.arch, **cfg.model)
    scale = int(model.config["scale"])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start = 0
    if cfg.resume and latest.exists():
        ckpt = read_checkpoint(latest)
        if not isinstance(ckpt, dict) or "train" not in ckpt:
            raise CheckpointError(f"{latest}: not a training checkpoint; remove it or pass a new --out")
        if ckpt.get("config") != model.config:
            raise CheckpointError(
                f"{latest}: was trained with {ckpt.get('config')}, not {model.config}; use another --out"
            )
        load_state(model, ckpt["params"], source=str(latest))
        optimizer.load_state_dict(ckpt["train"]["optimizer"])
        scheduler.load_state_dict(ckpt["train"]["scheduler"])
        start = int(ckpt["train"]["iter"])

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model)

    dataset = PatchDataset(train_paths, scale, cfg.patch_size, cfg.repeat)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True
    )

    def save(it: int) -> None:
        extra = {
            "train": {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "iter": it,
                "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"},
            }
        }
        save_checkpoint(model, latest, extra=extra)

    it = start
    epoch = start // max(1, len(loader))
    val: dict[str, float] | None = None
    loss_value = math.nan
    ddp_model.train()
    t0 = time.time()
    while it < cfg.iters:
        sampler.set_epoch(epoch)
        for lr_t, hr_t in loader:
            loss = F.l1_loss(ddp_model(lr_t), hr_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            it += 1
            loss_value = float(loss.detach())
            if rank == 0:
                if val_paths and (it % cfg.val_every == 0 or it == cfg.iters):
                    val = evaluate(model, val_paths, scale)
                if it % cfg.save_every == 0 or it == cfg.iters:
                    save(it)
                if progress is not None:
                    progress(it, cfg.iters, loss_value, val)
            if it >= cfg.iters:
                break
        epoch += 1
    if rank == 0:
        save(it)
        save_checkpoint(model, out / "model.pth")
    if world > 1:
        dist.barrier()
    return {"iters": it, "loss": loss_value, "seconds": time.time() - t0, "world_size": world, "val": val}
