"""The training loop: checks, resume, the steps, validation, checkpoints, a clean stop.

A run lives in its folder ``RUN`` (``--out``):

* ``latest.pth``: our checkpoint format plus ``train`` (optimizer, scheduler, grad scaler, iteration,
  epoch and position in it, and the run options), written every ``save_every`` iterations, at the
  end, and when the run is stopped (Ctrl-C, SIGTERM); ``model.pth``: the final weights.
* ``train.log`` and ``metrics.jsonl`` (see :mod:`scales_edge.training.log`).

Every check (options, device, data, the run folder, the model) runs before anything is written, so
a refused run leaves the folder as it was. Starting in a folder that holds a run resumes it: the
model and run options come from ``latest.pth``; a run option given anew that differs (``lr``,
``iters``, ``batch_size``, ...) is applied from the resumed iteration and recorded; the model cannot
change. A finished run is not rerun: ``iters`` above the finished count trains on, ``force`` starts
over (replacing the folder's checkpoints and logs).

The samples depend on ``(seed, epoch, index)`` only and each epoch's order on ``seed + epoch`` (see
:mod:`scales_edge.training.patches`), so a resumed run draws what the uninterrupted run would have,
and N processes compute what one process does on the same global batch.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoints import FORMAT, load_state, read_checkpoint, save_checkpoint, warm_start
from ..data import imread, list_images, make_lr, modcrop
from ..errors import CheckpointError, ConfigError
from ..metrics import calculate_psnr, calculate_ssim, tensor_to_uint8, uint8_to_tensor
from ..models import build_model, full_config
from ..quality import bicubic_upscale, min_hr_side
from . import distributed
from .config import TrainConfig, flag, run_option_names
from .log import LOG_NAME, METRICS_NAME, NullLog, RunLog
from .patches import PatchDataset, ShardedSampler

LATEST, FINAL = "latest.pth", "model.pth"
#: With several processes a stop request (Ctrl-C, SIGTERM) is agreed on every this many iterations.
STOP_SYNC = 10


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after saving ``latest.pth``."""


# ------------------------------------------------------------------------------ validation


class Validator:
    """PSNR/SSIM (Y channel, border = scale, BasicSR convention) on whole HR images, beside bicubic.

    The LR images and the bicubic scores are computed once, not at every validation."""

    def __init__(self, paths: list[Path], scale: int) -> None:
        self.scale = scale
        self.items = []
        need = min_hr_side(scale)
        for p in paths:
            hr = imread(p)
            if min(hr.shape[:2]) >= need:
                hr = modcrop(hr, scale)
            if min(hr.shape[:2]) < need:
                raise ConfigError(
                    f"{p}: {hr.shape[1]}x{hr.shape[0]} is too small to score at x{scale} (at least {need} px a side "
                    f"after cropping to a multiple of {scale})"
                )
            lr = make_lr(hr, scale)
            bic = bicubic_upscale(lr, scale)
            self.items.append((lr, hr, calculate_psnr(bic, hr, scale), calculate_ssim(bic, hr, scale)))

    def __len__(self) -> int:
        return len(self.items)

    @torch.no_grad()
    def __call__(self, model: nn.Module, device: torch.device | None = None) -> dict[str, float]:
        device = device or next(model.parameters()).device
        was_training = model.training
        model.eval()
        psnr, ssim = [], []
        try:
            for lr, hr, _, _ in self.items:
                sr = tensor_to_uint8(model(uint8_to_tensor(lr).to(device)))
                psnr.append(calculate_psnr(sr, hr, self.scale))
                ssim.append(calculate_ssim(sr, hr, self.scale))
        finally:
            model.train(was_training)
        return {
            "psnr": float(np.mean(psnr)),
            "ssim": float(np.mean(ssim)),
            "bicubic_psnr": float(np.mean([it[2] for it in self.items])),
            "bicubic_ssim": float(np.mean([it[3] for it in self.items])),
        }


def evaluate(model: nn.Module, paths: list[Path], scale: int) -> dict[str, float]:
    """Mean PSNR/SSIM of ``model`` and of bicubic on HR images (see :class:`Validator`)."""
    return Validator(list(paths), scale)(model)


# ------------------------------------------------------------------------------ the run folder


@dataclass
class RunState:
    """What ``RUN/latest.pth`` says about the run to resume."""

    path: Path
    iteration: int
    epoch: int
    epoch_samples: int  # samples of that epoch already used
    config: dict[str, Any]  # the model's build configuration
    options: dict[str, Any]  # the run options it was trained with
    train: Mapping[str, Any]  # optimizer, scheduler, scaler states
    params: Mapping[str, torch.Tensor]


def read_run(out_dir: str | Path) -> RunState | None:
    """The run in ``out_dir`` (None if it holds no ``latest.pth``)."""
    latest = Path(out_dir) / LATEST
    if not latest.exists():
        return None
    raw = read_checkpoint(latest)
    t = raw.get("train") if isinstance(raw, Mapping) else None
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT or not isinstance(t, Mapping) \
            or not {"optimizer", "scheduler", "iter"} <= set(t):  # fmt: skip
        raise CheckpointError(
            f"{latest}: not a scales-edge training checkpoint (no optimizer state to resume); "
            "move it away, give another --out, or --force to start over"
        )
    options = {k: v for k, v in dict(t.get("train_config") or {}).items() if k in run_option_names()}
    return RunState(
        latest, int(t["iter"]), int(t.get("epoch", 0)), int(t.get("epoch_samples", 0)),
        dict(raw["config"]), options, t, raw["params"],
    )  # fmt: skip


def resolve_config(given: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a command line: ``given`` holds the options the user set
    (``model``: the model keywords set). When ``out_dir`` holds a run (and not ``force``), the arch,
    the model and every run option not given come from its ``latest.pth``; otherwise defaults."""
    given = dict(given)
    run = None if given.get("force") else read_run(given["out_dir"])
    if run is None:
        given.setdefault("arch", "srresnet")
        given.setdefault("train_dir", "")
        return TrainConfig(**given)
    model = {**{k: v for k, v in run.config.items() if k != "arch"}, **given.pop("model", {})}
    arch = given.pop("arch", None) or run.config["arch"]
    return TrainConfig(**{"train_dir": "", **run.options, **given, "arch": arch, "model": model})


# ------------------------------------------------------------------------------ stop requests


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM (a scheduler's preemption, torchrun's shutdown) ask the run to
    finish its iteration, save ``latest.pth`` and stop; a second Ctrl-C quits at once, unsaved."""

    def __init__(self, log: RunLog) -> None:
        self.log = log
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.log.info(f"{name}: stopping after this iteration and saving {LATEST} (Ctrl-C again quits without saving)")


# ------------------------------------------------------------------------------ training


def train(cfg: TrainConfig, log: RunLog | None = None) -> dict[str, Any] | None:
    """Train per ``cfg`` (see the module docstring); on rank 0 returns the final metrics, on the
    other ranks None. ``log`` reports on rank 0 (default: :class:`RunLog` on stderr)."""
    cfg.check()
    procs = distributed.start(cfg.device)
    log = (log or RunLog()) if procs.main else NullLog()
    try:
        return _Run(cfg, procs, log).run()
    finally:
        log.close()
        distributed.stop(procs)


class _Run:
    def __init__(self, cfg: TrainConfig, procs: distributed.Processes, log: RunLog) -> None:
        self.cfg, self.procs, self.log = cfg, procs, log
        self.out = Path(cfg.out_dir)
        self.device = procs.device

    # -- checks and set-up: nothing is written here --------------------------------------------

    def prepare(self) -> None:
        cfg, procs = self.cfg, self.procs
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.batch_size % procs.world:
            raise ConfigError(
                f"--batch-size {cfg.batch_size} is the batch of one iteration over all processes and must divide "
                f"evenly among the {procs.world} processes (e.g. {cfg.batch_size // procs.world * procs.world or procs.world})"
            )
        self.state = state = None if cfg.force else read_run(self.out)
        if state is None and not cfg.force and (self.out / FINAL).exists():
            raise ConfigError(f"{self.out} holds a {FINAL} but no {LATEST} to resume: give another --out, or --force to start over there")
        if state is not None and cfg.arch.lower() != str(state.config.get("arch")).lower():
            raise ConfigError(
                f"{self.out} holds a run of {state.config.get('arch')}, not {cfg.arch}; the model cannot change when "
                "resuming: drop --arch, give another --out, or --force to start over"
            )
        self.model_config = full_config(cfg.arch, **cfg.model)
        if state is not None:
            self._check_resumable(state)
        start = state.iteration if state else 0
        if not distributed.same_on_all_ranks(start, procs):
            raise CheckpointError(
                f"the processes disagree on where {self.out} resumes (rank {procs.rank}: iteration {start}): "
                "the run folder must be on a file system every node sees"
            )

        self.log.info(f"reading the training images in {cfg.train_dir}" + (f" (LR images from {cfg.lr_dir})" if cfg.lr_dir else ""))
        train_paths = list_images(cfg.train_dir)
        scale = int(self.model_config["scale"])
        self.dataset = PatchDataset(train_paths, scale, cfg.patch_size, cfg.repeat, cfg.seed, cfg.lr_dir)
        self.sampler = ShardedSampler(len(self.dataset), cfg.batch_size, procs.rank, procs.world, cfg.seed)
        if self.sampler.iters_per_epoch() == 0:
            raise ConfigError(
                f"{len(train_paths)} image(s) x --repeat {cfg.repeat} = {len(self.dataset)} patches per epoch, fewer "
                f"than one batch of {cfg.batch_size}: raise --repeat or lower --batch-size"
            )
        self.validator = None
        if cfg.val_dir and procs.main:
            self.validator = Validator(list_images(cfg.val_dir), scale)

        torch.manual_seed(cfg.seed)  # the same initial weights on every process and at every world size
        self.model = build_model(**self.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.changes: dict[str, tuple[Any, Any]] = {}
        self.warm: list[str] = []
        if state is None and cfg.init:
            self.warm = warm_start(self.model, cfg.init)
        if state is not None:
            load_state(self.model, state.params, source=str(state.path))
            self.optimizer.load_state_dict(state.train["optimizer"])
            self.scheduler.load_state_dict(state.train["scheduler"])
            if self.scaler.is_enabled() and state.train.get("scaler"):
                self.scaler.load_state_dict(state.train["scaler"])
            self.changes = {
                k: (state.options[k], v) for k, v in cfg.run_options().items() if k in state.options and state.options[k] != v
            }
            self._apply_schedule()

    def _check_resumable(self, state: RunState) -> None:
        cfg = self.cfg
        try:
            stored = full_config(state.config["arch"], **{k: v for k, v in state.config.items() if k != "arch"})
        except (ConfigError, KeyError) as exc:
            raise CheckpointError(f"{state.path}: {exc}") from None
        if stored != self.model_config:
            diff = [k for k in self.model_config if stored.get(k) != self.model_config[k]]
            text = ", ".join(f"{k}={self.model_config[k]!r} (the run's: {stored.get(k)!r})" for k in diff)
            raise ConfigError(
                f"{self.out} holds a run of another model: {text}; the model cannot change when resuming: "
                "drop those flags, give another --out, or --force to start over"
            )
        if state.iteration >= cfg.iters:
            done = " and model.pth written" if (self.out / FINAL).exists() else ""
            raise ConfigError(
                f"{self.out}: the run is finished ({LATEST} at iteration {state.iteration} of {cfg.iters}{done}); "
                f"give --iters above {state.iteration} to train on, --force to start over, or another --out"
            )

    def _apply_schedule(self) -> None:
        """A learning rate or schedule given anew on resume: StepLR's closed form from now on."""
        cfg, sched = self.cfg, self.scheduler
        sched.step_size, sched.gamma, sched.base_lrs = cfg.lr_step, cfg.lr_gamma, [cfg.lr] * len(sched.base_lrs)
        for group in self.optimizer.param_groups:
            group["initial_lr"] = cfg.lr
            group["lr"] = cfg.lr * cfg.lr_gamma ** (sched.last_epoch // cfg.lr_step)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any] | None:
        self.prepare()
        self.begin()
        with StopRequest(self.log) as stop:
            try:
                result = self.loop(stop)
            except KeyboardInterrupt as exc:
                if not isinstance(exc, Interrupted):
                    self.log.info(f"quit without saving: {self.out / LATEST}, if any, is from the last save")
                raise
        return result if self.procs.main else None

    def begin(self) -> None:
        """Checks passed: from here the run writes. Reports what it is about to do."""
        cfg, procs, state, log = self.cfg, self.procs, self.state, self.log
        if procs.main:
            if cfg.force:
                for name in (LATEST, FINAL):
                    (self.out / name).unlink(missing_ok=True)
            log.open_files(self.out, fresh=state is None)
        mc = self.model_config
        options = ", ".join(f"{k}={v}" for k, v in mc.items() if k not in ("arch", "scale"))
        params = sum(p.numel() for p in self.model.parameters())
        per_epoch = self.sampler.iters_per_epoch()
        images = len(self.dataset.pairs)
        log.info(f"model: {mc['arch']} x{mc['scale']} ({options}), {params:,} parameters")
        if self.warm:
            own = self.model.state_dict()
            log.info(f"initialized from {cfg.init}: {len(self.warm)} of {len(own)} tensors "
                     f"({sum(own[k].numel() for k in self.warm):,} values) with their names and shapes")
        log.info(
            f"data: {images} image(s) from {cfg.train_dir}, LR patch {cfg.patch_size} (HR {cfg.patch_size * mc['scale']}), "
            f"{cfg.repeat} per image per epoch: {len(self.dataset):,} patches, {per_epoch:,} iterations per epoch"
        )
        per_proc = f" = {procs.world} processes x {cfg.batch_size // procs.world}" if procs.world > 1 else ""
        log.info(f"batch {cfg.batch_size}{per_proc}; {procs.describe()}; mixed precision {cfg.amp}")
        val = f"validation every {cfg.val_every:,} on {len(self.validator)} image(s)" if self.validator else "no validation (--val-dir)"
        log.info(
            f"schedule: {cfg.iters:,} iterations ({cfg.iters / per_epoch:.1f} epochs), lr {cfg.lr:.3e} x{cfg.lr_gamma} "
            f"every {cfg.lr_step:,}; {val}; {LATEST} every {cfg.save_every:,}; a line every {cfg.log_every:,}"
        )
        if state is not None:
            log.info(
                f"resuming from {state.path}: iteration {state.iteration} of {cfg.iters}, epoch {state.epoch + 1} "
                f"({state.epoch_samples // cfg.batch_size} of {per_epoch} iterations into it)"
            )
            if self.changes:
                text = "; ".join(f"{flag(k)} {a} -> {b}" for k, (a, b) in self.changes.items())
                log.info(f"changed on resume, applied from iteration {state.iteration} and recorded in {LATEST}: {text}")
        log.info(f"run folder {self.out}: {LOG_NAME}, {METRICS_NAME} (`scales-edge plot {self.out}` draws the curves)")
        log.event(
            "start", iter=state.iteration if state else 0, resumed=state is not None, arch=mc["arch"], model=mc,
            options=cfg.run_options(), params=params, images=images, patches_per_epoch=len(self.dataset),
            iters_per_epoch=per_epoch, device=str(self.device), world_size=procs.world,
            changed={k: list(v) for k, v in self.changes.items()},
        )  # fmt: skip

    def save(self, it: int, epoch: int, pos: int) -> None:
        train_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "iter": it,
            "epoch": epoch,
            "epoch_samples": pos,
            "train_config": self.cfg.run_options(),
            "world_size": self.procs.world,
        }
        save_checkpoint(self.model, self.out / LATEST, extra={"train": train_state})
        self.log.event("saved", iter=it, file=LATEST)

    def step(self, model: nn.Module, lr_t: torch.Tensor, hr_t: torch.Tensor, amp: torch.dtype | None) -> torch.Tensor:
        """One optimisation step on a batch (DDP averages the gradients over the processes); the loss,
        on the device (no synchronisation)."""
        lr_t = lr_t.to(self.device, non_blocking=True)
        hr_t = hr_t.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=amp, enabled=amp is not None):
            out = model(lr_t)
        loss = F.l1_loss(out.float(), hr_t)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def loop(self, stop: StopRequest) -> dict[str, Any]:
        cfg, procs, log, device = self.cfg, self.procs, self.log, self.device
        state = self.state
        it = state.iteration if state else 0
        epoch, pos = (state.epoch, state.epoch_samples) if state else (0, 0)
        model: nn.Module = self.model
        if procs.world > 1:
            model = nn.parallel.DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        loader = DataLoader(
            self.dataset, batch_size=cfg.batch_size // procs.world, sampler=self.sampler, num_workers=cfg.workers,
            drop_last=True, pin_memory=device.type == "cuda",
        )  # fmt: skip
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        window = torch.zeros((), dtype=torch.float64, device=device)
        window_n, window_it, t_window, t0 = 0, it, time.perf_counter(), time.perf_counter()
        loss_value, val, stopping = math.nan, None, False
        model.train()
        log.start_bar(cfg.iters, it)
        while it < cfg.iters and not stopping:
            self.sampler.set_epoch(epoch, pos)
            for lr_t, hr_t in loader:
                window += self.step(model, lr_t, hr_t, amp)
                it += 1
                pos += cfg.batch_size
                window_n += 1
                log.step(it)

                at_log = it % cfg.log_every == 0 or it == cfg.iters
                stopping = stop.requested
                if procs.world == 1:
                    at_log = at_log or stopping
                if at_log or (procs.world > 1 and it % STOP_SYNC == 0):
                    mean, flag_ = distributed.mean_over_ranks([float(window) / window_n, float(stopping)], procs)
                    stopping = flag_ > 0
                    if at_log or stopping:
                        if not math.isfinite(mean):
                            raise ConfigError(
                                f"the loss is {mean} at iteration {it}: lower --lr"
                                + (" or drop --amp fp16" if cfg.amp == "fp16" else "") + f"; the last {LATEST} is kept"
                            )
                        now = time.perf_counter()
                        loss_value = mean
                        log.train_point(it, cfg.iters, epoch + 1, mean, self.optimizer.param_groups[0]["lr"], (it - window_it) / max(now - t_window, 1e-9))
                        window.zero_()
                        window_n, window_it, t_window = 0, it, now
                t_aside = time.perf_counter()  # validation and saving stay out of it/s
                if procs.main and self.validator is not None and (it % cfg.val_every == 0 or it == cfg.iters):
                    val = self.validator(self.model, device)
                    log.val_point(it, val, len(self.validator))
                if procs.main and it % cfg.save_every == 0 and it < cfg.iters and not stopping:
                    self.save(it, epoch, pos)
                    log.info(f"saved {self.out / LATEST} (iteration {it})")
                t_window += time.perf_counter() - t_aside
                if it >= cfg.iters or stopping:
                    break
            else:
                epoch, pos = epoch + 1, 0
        log.stop_bar()
        if procs.main:
            self.save(it, epoch, pos)
            if it >= cfg.iters:
                save_checkpoint(self.model, self.out / FINAL)
                log.info(f"finished: iteration {it}; saved {self.out / LATEST} and {self.out / FINAL}")
                log.event("stop", iter=it, reason="finished")
            else:
                log.info(f"stopped at iteration {it} of {cfg.iters}: saved {self.out / LATEST}; run the same command to resume")
                log.event("stop", iter=it, reason="signal")
        if procs.world > 1:
            torch.distributed.barrier()
        if stopping and it < cfg.iters:
            raise Interrupted(f"stopped at iteration {it}; {LATEST} saved")
        return {
            "iters": it, "loss": loss_value, "seconds": time.perf_counter() - t0, "world_size": procs.world,
            "device": str(device), "val": val, "out_dir": str(self.out),
        }  # fmt: skip
