"""Will a run of a model at a given input size fit in memory? Checked before allocating anything,
so ``bench --size 100000x100000`` is a one-line error instead of a 112 GiB allocation (or the
kernel's OOM killer)."""

from __future__ import annotations

import os

from ..errors import ScalesEdgeError

GIB = 1 << 30


def available_bytes() -> int | None:
    """Memory the system can give this process now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def run_bytes(meta: dict[str, str], channels: int, h: int, w: int) -> int:
    """A lower bound of what one run of an exported SR model on a ``channels x h x w`` float input
    takes: the input, the output, and three feature maps of the model's width at the output size
    (the tail's HR convolutions hold about that much at once). Missing metadata counts as x1 and as
    many features as input channels."""
    scale = int(meta["scales_edge.scale"]) if meta.get("scales_edge.scale", "").isdigit() else 1
    feat = int(meta["scales_edge.channels"]) if meta.get("scales_edge.channels", "").isdigit() else channels
    pixels, out_pixels = h * w, h * w * scale * scale
    return 4 * (channels * pixels + channels * out_pixels + 3 * feat * out_pixels)


def check_run_fits(meta: dict[str, str], channels: int, h: int, w: int, what: str) -> None:
    """Raise :class:`ScalesEdgeError` (one line) when :func:`run_bytes` exceeds the memory available."""
    need = run_bytes(meta, channels, h, w)
    have = available_bytes()
    if have is not None and need > have:
        raise ScalesEdgeError(
            f"{what}: a {w}x{h} input needs at least {need / GIB:.1f} GiB (input, output and feature maps), "
            f"but {have / GIB:.1f} GiB of memory is available; choose a smaller size"
        )
