"""Loss and PSNR curves of a run, from ``RUN/metrics.jsonl``; matplotlib is optional
(``pip install matplotlib``): without it :func:`plot_run` says so in one line.

A resumed run appends to the same file; points logged after the iteration a run resumed from (the
work a crash or a stop threw away, redone after the resume) are replaced by the redone ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import atomic_path
from .log import METRICS_NAME


def read_metrics(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The ``train`` and ``val`` points of a run, in iteration order, each iteration once."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; give a run folder written by `scales-edge train`")
    series: dict[str, dict[int, dict[str, Any]]] = {"train": {}, "val": {}}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                event = json.loads(line)
                kind, it = event["event"], int(event["iter"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash
            if kind == "start":  # a (re)start at iteration it: later points of earlier attempts are void
                for points in series.values():
                    for k in [k for k in points if k > it]:
                        del points[k]
            elif kind in series:
                series[kind][it] = event
    return {kind: [points[k] for k in sorted(points)] for kind, points in series.items()}


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the training loss and the validation PSNR (with bicubic) against the iteration into a
    PNG (default ``RUN/curves.png``, written atomically); returns its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install matplotlib") from None
    run_dir = Path(run_dir)
    data = read_metrics(run_dir)
    if not data["train"] and not data["val"]:
        raise ConfigError(f"{run_dir / METRICS_NAME}: no training or validation points yet")
    out = Path(out) if out is not None else run_dir / "curves.png"
    panels = 2 if data["val"] else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    if data["train"]:
        ax.plot([p["iter"] for p in data["train"]], [p["loss"] for p in data["train"]], label="L1 loss (train)")
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(f"{run_dir.name}: training loss")
    ax.grid(True, alpha=0.3)
    if data["val"]:
        ax = axes[0][1]
        its = [p["iter"] for p in data["val"]]
        ax.plot(its, [p["psnr"] for p in data["val"]], marker="o", label="model")
        ax.plot(its, [p["bicubic_psnr"] for p in data["val"]], linestyle="--", label="bicubic")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB, Y)")
        ax.set_title("validation PSNR")
        ax.legend()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
