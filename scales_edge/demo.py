"""The demo model: a small SCALES SRResNet ×4 trained on photos that ship inside Python packages.

The photos come from scikit-image (``skimage/data``) and matplotlib (``grace_hopper.jpg``), so the
training is reproducible on any machine with no download. ``HELD_OUT`` photos are never trained on;
they measure the demo model's quality against bicubic.

The package ships the checkpoint and, for installs without PyTorch, its export: ``DEMO_ONNX`` and
the FP32 reference ``DEMO_FP32_REFERENCE``, made by :func:`export_demo` (``bash
scripts/build-demo-onnx.sh`` regenerates them; tests/test_demo_assets.py checks they match a fresh
export of the checkpoint).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .data import sample_photos
from .errors import ConfigError

HELD_OUT = ("chelsea", "coffee", "rocket")
ASSETS = Path(__file__).parent / "assets"
DEMO_CHECKPOINT = ASSETS / "demo_srresnet_x4.pth"
DEMO_ONNX = ASSETS / "demo_x4.onnx"  # export_demo(DEMO_CHECKPOINT): the prebuilt demo model
DEMO_FP32_REFERENCE = ASSETS / "demo_x4_fp32ref.onnx"  # ... and its FP32 reference


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


def have_torch() -> bool:
    """Whether PyTorch (the authoring extra) is installed; checked without importing it."""
    return importlib.util.find_spec("torch") is not None


def export_demo(checkpoint: str | Path, onnx_path: str | Path, ref_path: str | Path,
                loader: Callable[[Path], Any] | None = None):
    """Export ``checkpoint`` as the demo does: the model with our ops and its FP32 reference (the
    same math in standard ONNX ops, the latency baseline). Needs PyTorch; returns the model.
    ``loader(path)`` reads the checkpoint's model (default :func:`~scales_edge.checkpoints.load_checkpoint`)."""
    from .checkpoints import load_checkpoint
    from .export import export_onnx

    model = (loader or load_checkpoint)(Path(checkpoint))
    export_onnx(model, onnx_path)
    export_onnx(model, ref_path, binary_as="fp32-reference")
    return model


def run_demo(
    out: str | Path,
    checkpoint: str | Path | None = None,
    threads: int = 1,
    runs: int = 10,
    size: tuple[int, int] = (180, 320),
    log: Callable[[str], None] = print,
    prebuilt: bool | None = None,
    loader: Callable[[Path], Any] | None = None,
) -> dict:
    """Export → parity → quality on the held-out photos → latency against the FP32 reference.
    ``loader(path)`` reads the checkpoint's model (default :func:`~scales_edge.checkpoints.load_checkpoint`).

    Writes ``out/demo_x4.onnx``, ``out/demo_x4_fp32ref.onnx``, ``out/images/*`` (SR images and
    HR | bicubic | model comparisons) and ``out/summary.json``; returns the summary.

    ``prebuilt`` (the default when PyTorch is not installed) takes the shipped export of the bundled
    checkpoint instead of exporting, and checks parity against the numpy reference of the op
    domain instead of PyTorch. Without scikit-image's photos the quality step is skipped
    (``quality`` is None, ``quality_skipped`` says why).
    """
    from .fileio import atomic_path, atomic_write_text, same_file
    from .quality import scores_to_dict, score_images
    from .runtime.bench import benchmark, machine_info
    from .runtime.infer import Upscaler
    from .runtime.session import load_model, metadata

    if prebuilt is None:
        prebuilt = not have_torch()
    out = Path(out)
    ckpt = Path(checkpoint) if checkpoint else DEMO_CHECKPOINT
    onnx_path, ref_path = out / "demo_x4.onnx", out / "demo_x4_fp32ref.onnx"
    for written in (onnx_path, ref_path, out / "summary.json"):  # the demo replaces its own files only
        if same_file(written, ckpt):
            raise ConfigError(f"{ckpt} is the checkpoint; the demo would overwrite it with {written.name}: choose another --out")
    t0 = time.perf_counter()
    if prebuilt:
        if checkpoint is not None:
            raise ConfigError(
                "exporting a checkpoint needs PyTorch: pip install 'scales-edge[torch]' (without it the demo runs "
                "the prebuilt demo model: drop --ckpt)"
            )
        missing = [p.name for p in (DEMO_ONNX, DEMO_FP32_REFERENCE) if not p.is_file()]
        if missing:
            raise ConfigError(f"this install lacks the prebuilt demo model ({', '.join(missing)} in {ASSETS}); reinstall scales-edge")
        log(f"[1/4] the prebuilt export of {ckpt.name} -> {onnx_path} (and the FP32 reference {ref_path.name}); "
            f"{'PyTorch is not installed, so no export' if not have_torch() else 'no export (--prebuilt)'}")
        for src, dest in ((DEMO_ONNX, onnx_path), (DEMO_FP32_REFERENCE, ref_path)):
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
        config = json.loads(metadata(load_model(onnx_path)).get("scales_edge.config", "{}"))
        log("[2/4] parity: ONNX Runtime with the scales_edge ops vs the numpy reference of the op domain")
        from .runtime.validate import check_reference_parity, make_inputs

        parity = check_reference_parity(onnx_path, make_inputs(sizes=((17, 23), (24, 32))), threads=threads)
        against = "numpy reference of the scales_edge op domain (onnx.reference)"
    else:
        from .export.parity import check_parity

        log(f"[1/4] export {ckpt.name} -> {onnx_path} (and the FP32 reference {ref_path.name})")
        model = export_demo(ckpt, onnx_path, ref_path, loader)
        config = model.config
        log("[2/4] parity: ONNX Runtime with the scales_edge ops vs PyTorch")
        parity = check_parity(onnx_path, model, threads=threads)
        against = "PyTorch"
    scale = int(config.get("scale", 4))

    quality, skipped = None, None
    try:
        photos = held_out_photos()
    except (ConfigError, FileNotFoundError) as exc:
        skipped = str(exc)
        log(f"[3/4] quality: skipped: {skipped}")
    else:
        log(f"[3/4] quality on the held-out photos ({', '.join(HELD_OUT)})")
        upscaler = Upscaler(str(onnx_path), threads=threads)
        quality = scores_to_dict(score_images(upscaler, photos, scale, save_dir=out / "images"))

    log(f"[4/4] latency at {size[1]}x{size[0]} input, {threads} thread(s), {runs} runs each, alternating")
    bench = benchmark([onnx_path, ref_path], size=size, threads=threads, runs=runs, warmup=2)
    summary = {
        "checkpoint": str(ckpt),
        "prebuilt": prebuilt,
        "config": config,
        # which convs are binary: "body+upsampler" = all but the first and the last (the paper's);
        # a config without the key predates it: "body"
        "binary_scope": config.get("binary_scope", "body"),
        "parity": {**parity.to_dict(), "against": against},
        "quality": quality,
        **({"quality_skipped": skipped} if skipped else {}),
        "bench": {
            "results": [r.to_dict() for r in bench],
            "speedup_vs_fp32_reference": bench[1].median_ms / bench[0].median_ms,
            "machine": machine_info(),
        },
        "files": {
            "onnx": str(onnx_path),
            "onnx_bytes": onnx_path.stat().st_size,
            "fp32_reference_bytes": ref_path.stat().st_size,
            "images": str(out / "images") if quality else None,
        },
        "seconds": time.perf_counter() - t0,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary
