"""The demo model: a small SCALES SRResNet ×4 trained on photos that ship inside Python packages.

The photos come from scikit-image (``skimage/data``) and matplotlib (``grace_hopper.jpg``), so the
training is reproducible on any machine with no download. ``HELD_OUT`` photos are never trained on;
they measure the demo model's quality against bicubic.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

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


def held_out_photos() -> list[Path]:
    photos = sample_photos()
    missing = [name for name in HELD_OUT if name not in photos]
    if missing:
        raise ConfigError(
            f"the held-out photos {', '.join(missing)} ship with scikit-image; install it (pip install scikit-image)"
        )
    return [photos[name] for name in HELD_OUT]


def run_demo(
    out: str | Path,
    checkpoint: str | Path | None = None,
    threads: int = 1,
    runs: int = 10,
    size: tuple[int, int] = (180, 320),
    log: Callable[[str], None] = print,
) -> dict:
    """Export → parity → quality on the held-out photos → latency against the FP32 reference.

    Writes ``out/demo_x4.onnx``, ``out/demo_x4_fp32ref.onnx``, ``out/images/*`` (SR images and
    HR | bicubic | model comparisons) and ``out/summary.json``; returns the summary.
    """
    from .checkpoints import load_checkpoint
    from .export import export_onnx
    from .quality import scores_to_dict, score_images
    from .runtime.bench import benchmark, machine_info
    from .runtime.infer import Upscaler
    from .runtime.validate import check_parity

    from .fileio import atomic_write_text, same_file

    out = Path(out)
    ckpt = Path(checkpoint) if checkpoint else DEMO_CHECKPOINT
    onnx_path, ref_path = out / "demo_x4.onnx", out / "demo_x4_fp32ref.onnx"
    for written in (onnx_path, ref_path, out / "summary.json"):  # the demo replaces its own files only
        if same_file(written, ckpt):
            raise ConfigError(f"{ckpt} is the checkpoint; the demo would overwrite it with {written.name}: choose another --out")
    t0 = time.perf_counter()
    model = load_checkpoint(ckpt)
    scale = int(model.config["scale"])
    log(f"[1/4] export {ckpt.name} -> {onnx_path} (and the FP32 reference {ref_path.name})")
    export_onnx(model, onnx_path)
    export_onnx(model, ref_path, binary_as="fp32-reference")

    log("[2/4] parity: ONNX Runtime with the scales_edge ops vs PyTorch")
    parity = check_parity(onnx_path, model, threads=threads)

    log(f"[3/4] quality on the held-out photos ({', '.join(HELD_OUT)})")
    upscaler = Upscaler(str(onnx_path), threads=threads)
    scores = score_images(upscaler, held_out_photos(), scale, save_dir=out / "images")

    log(f"[4/4] latency at {size[1]}x{size[0]} input, {threads} thread(s), {runs} runs each, alternating")
    bench = benchmark([onnx_path, ref_path], size=size, threads=threads, runs=runs, warmup=2)
    summary = {
        "checkpoint": str(ckpt),
        "config": model.config,
        "parity": parity.to_dict(),
        "quality": scores_to_dict(scores),
        "bench": {
            "results": [r.to_dict() for r in bench],
            "speedup_vs_fp32_reference": bench[1].median_ms / bench[0].median_ms,
            "machine": machine_info(),
        },
        "files": {
            "onnx": str(onnx_path),
            "onnx_bytes": onnx_path.stat().st_size,
            "fp32_reference_bytes": ref_path.stat().st_size,
            "images": str(out / "images"),
        },
        "seconds": time.perf_counter() - t0,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary
