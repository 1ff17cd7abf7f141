"""The demo model: a small SCALES SRResNet ×4 trained on photos that ship inside Python packages.

The photos come from scikit-image (``skimage/data``) and matplotlib (``grace_hopper.jpg``), so the
training is reproducible on any machine with no download. ``HELD_OUT`` photos are never trained on;
they measure the demo model's quality against bicubic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .data import sample_photos
from .errors import ConfigError

HELD_OUT = ("chelsea", "coffee", "rocket")
DEMO_CHECKPOINT = Path(__file__).parent / "assets" / "demo_srresnet_x4.pth"


def prepare_photo_folders(out: str | Path) -> tuple[Path, Path]:
    """Copy the packaged photos into ``out/train`` and ``out/val`` (held out); returns both folders."""
    photos = sample_photos()
    missing = [name for name in HELD_OUT if name not in photos]
    if missing:
        raise ConfigError(f"the held-out photos {', '.join(missing)} were not found; install scikit-image")
    out = Path(out)
    train_dir, val_dir = out / "train", out / "val"
    for d in (train_dir, val_dir):
        d.mkdir(parents=True, exist_ok=True)
    for name, path in sorted(photos.items()):
        dest = (val_dir if name in HELD_OUT else train_dir) / f"{name}{path.suffix}"
        if not dest.exists():
            shutil.copyfile(path, dest)
    return train_dir, val_dir
