"""Devices and processes: one process, or one per GPU (or CPU share) under ``torchrun``.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``. With CUDA each process uses
``cuda:LOCAL_RANK`` and the NCCL backend; on CPUs, gloo. Rank 0 prints, validates and writes; the
others train. Collectives used outside DDP's own gradient averaging: :func:`mean_over_ranks` (the
logged loss, a stop request) and :func:`same_on_all_ranks` (a consistency check at start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..errors import ConfigError

#: How long a process waits in a collective (NCCL's default is 10 minutes; a validation on rank 0
#: of a large model on a hundred 2K images can take longer).
PROCESS_GROUP_TIMEOUT_MIN = 60


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: one process

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        if self.world == 1:
            return f"device {self.device}, 1 process"
        return f"device {self.device} on each of {self.world} processes ({self.backend})"


def launched_world() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(spec: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda``: ``cuda:LOCAL_RANK``; ``cuda:N``: that
    GPU, one process only. A GPU that is not there is an error, not a silent CPU run."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not spec.startswith("cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if not torch.cuda.is_available():
        why = "this PyTorch has no CUDA support" if torch.version.cuda is None else "no GPU is visible"
        raise ConfigError(f"--device {spec}: CUDA is not available ({why}); use --device cpu or auto")
    count = torch.cuda.device_count()
    if spec == "cuda":
        index = local_rank
    else:
        if world > 1:
            raise ConfigError(
                f"--device {spec} names one GPU, but torchrun started {world} processes: give --device cuda "
                "(each process takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES"
            )
        index = int(spec.split(":")[1])
    if index >= count:
        raise ConfigError(f"--device {spec}: GPU {index} does not exist ({count} visible)")
    return torch.device("cuda", index)


def start(device_spec: str) -> Processes:
    """Resolve the device and, under torchrun, join the process group (NCCL on GPUs, gloo on CPUs)."""
    rank, world, local_rank = launched_world()
    device = resolve_device(device_spec, local_rank, world)
    if world == 1:
        return Processes(0, 1, 0, device, None)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # Rank 0 validates while the others wait at the next gradient all-reduce: allow an hour.
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=PROCESS_GROUP_TIMEOUT_MIN))
    return Processes(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


def stop(procs: Processes) -> None:
    if procs.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(values: list[float], procs: Processes) -> list[float]:
    """The mean of each value over all processes (the values themselves with one process)."""
    if procs.world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=procs.device)
    dist.all_reduce(t)
    return (t / procs.world).tolist()


def same_on_all_ranks(value: int, procs: Processes) -> bool:
    """Whether every process holds the same ``value`` (e.g. the iteration it resumes from)."""
    if procs.world == 1:
        return True
    t = torch.tensor([value, -value], dtype=torch.float64, device=procs.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0]) == value and int(-t[1]) == value
