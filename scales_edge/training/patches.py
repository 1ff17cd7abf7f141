"""Training samples: aligned LR/HR patches of a folder of HR images, and how processes share them.

* Each HR image is mod-cropped; its LR image is read from ``lr_dir`` (DIV2K ships them:
  ``DIV2K_train_LR_bicubic/X4/0001x4.png`` beside ``DIV2K_train_HR/0001.png``) or made once at start
  with MATLAB-compatible bicubic (:func:`scales_edge.data.make_lr`, about 1 s per DIV2K image).
* A sample is a random aligned LR/HR patch with random flips and a 90° rotation. Its randomness is a
  function of ``(seed, epoch, index)`` alone, not of a process's random state, so a sample is the
  same whichever process draws it, with any number of workers, and after a resume.
* :class:`ShardedSampler` deals each epoch's permutation (seeded by ``seed + epoch``, as
  :class:`~torch.utils.data.DistributedSampler` does) out to the processes so that the per-process
  batches of one iteration together are exactly the batch one process would draw: training on N
  processes is the same computation as on one, up to the order of floating-point sums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data import imread, make_lr, modcrop
from ..errors import ConfigError
from ..metrics import uint8_to_tensor


def lr_partner(hr: Path, lr_dir: Path, scale: int) -> Path:
    """The LR image of ``hr`` in ``lr_dir``: the same stem, or the stem + ``x{scale}`` (DIV2K)."""
    for stem in (hr.stem, f"{hr.stem}x{scale}"):
        for p in sorted(lr_dir.glob(stem + ".*")):
            if p.is_file():
                return p
    raise ConfigError(f"{lr_dir}: no LR image for {hr.name} (looked for {hr.stem}.* and {hr.stem}x{scale}.*)")


def load_pairs(
    paths: Sequence[Path],
    scale: int,
    patch_size: int,
    lr_dir: str | Path | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(lr, hr)`` uint8 RGB arrays for each HR image; every image is checked (readable, large
    enough for a patch, its LR image the right size) before training starts."""
    if not paths:
        raise ConfigError("no training images")
    pairs = []
    for i, p in enumerate(paths):
        hr = imread(p)
        if min(hr.shape[:2]) >= patch_size * scale:
            hr = modcrop(hr, scale)
        if min(hr.shape[:2]) < patch_size * scale:
            raise ConfigError(
                f"{p}: {hr.shape[1]}x{hr.shape[0]} is smaller than an HR patch of {patch_size * scale} "
                f"(--patch-size {patch_size} at x{scale}); lower --patch-size or drop the image"
            )
        if lr_dir is not None:
            lp = lr_partner(Path(p), Path(lr_dir), scale)
            lr = imread(lp)
            want = (hr.shape[0] // scale, hr.shape[1] // scale)
            if lr.shape[:2] != want:
                raise ConfigError(
                    f"{lp}: {lr.shape[1]}x{lr.shape[0]} is not {p.name} ({hr.shape[1]}x{hr.shape[0]} after cropping "
                    f"to a multiple of {scale}) / {scale} = {want[1]}x{want[0]}"
                )
        else:
            lr = make_lr(hr, scale)
        pairs.append((lr, hr))
        if on_image:
            on_image(i + 1, len(paths))
    return pairs


class PatchDataset(Dataset):
    """Random aligned LR/HR patches with flips and rotations from a list of HR images.

    Index with ``(epoch, index)`` (what :class:`ShardedSampler` yields) or a plain ``index``
    (epoch 0); ``len`` is ``images × repeat``."""

    def __init__(
        self,
        paths: Sequence[Path],
        scale: int,
        patch_size: int,
        repeat: int = 100,
        seed: int = 0,
        lr_dir: str | Path | None = None,
        on_image: Callable[[int, int], None] | None = None,
    ) -> None:
        self.scale = scale
        self.patch = patch_size
        self.repeat = repeat
        self.seed = seed
        self.pairs = load_pairs(paths, scale, patch_size, lr_dir, on_image)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        lr, hr = self.pairs[index % len(self.pairs)]
        rng = np.random.default_rng([self.seed, epoch, index])
        s, p = self.scale, self.patch
        y = int(rng.integers(0, lr.shape[0] - p + 1))
        x = int(rng.integers(0, lr.shape[1] - p + 1))
        flip_h, flip_v, rot = (bool(b) for b in rng.integers(0, 2, 3))
        lr_p = _augment(lr[y : y + p, x : x + p], flip_h, flip_v, rot)
        hr_p = _augment(hr[y * s : (y + p) * s, x * s : (x + p) * s], flip_h, flip_v, rot)
        return uint8_to_tensor(lr_p)[0], uint8_to_tensor(hr_p)[0]


def _augment(img: np.ndarray, flip_h: bool, flip_v: bool, rot: bool) -> np.ndarray:
    if flip_h:
        img = img[:, ::-1]
    if flip_v:
        img = img[::-1]
    if rot:
        img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(img)


class ShardedSampler(Sampler):
    """This process's share of each epoch: ``(epoch, index)`` keys.

    The epoch's permutation of ``n`` samples (``torch.randperm`` seeded with ``seed + epoch``) is cut
    to whole global batches; process ``rank`` of ``world`` takes every ``world``-th position from
    ``rank``, so its ``k``-th batch of ``global_batch / world`` holds positions of the ``k``-th global
    batch. :meth:`set_epoch` picks the epoch and how many of its samples were already used."""

    def __init__(self, n: int, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0) -> None:
        if global_batch % world:
            raise ConfigError(f"a batch of {global_batch} does not divide among {world} processes")
        self.n, self.batch, self.rank, self.world, self.seed = n, global_batch, rank, world, seed
        self.epoch, self.start = 0, 0

    @property
    def usable(self) -> int:
        """Samples per epoch: whole global batches only."""
        return self.n // self.batch * self.batch

    def iters_per_epoch(self) -> int:
        return self.usable // self.batch

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()[self.start : self.usable]
        return iter([(self.epoch, i) for i in order[self.rank :: self.world]])

    def __len__(self) -> int:
        return max(0, self.usable - self.start) // self.world
