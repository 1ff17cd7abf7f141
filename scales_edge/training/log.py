"""What a training run reports, and where.

* The console (stderr): on a terminal a progress bar, with messages printed above it; otherwise
  (nohup, a cluster job, a pipe) one line every ``log_every`` iterations with the loss, learning
  rate, it/s and ETA, so a log file shows progress.
* ``RUN/train.log``: every line the console gets (and the periodic lines, bar or not), with times.
* ``RUN/metrics.jsonl``: one JSON object per event (``start``, ``train``, ``val``, ``changed``,
  ``saved``, ``stop``), read by ``scales-edge plot``.

Both files are appended one whole line per ``write`` call on a file opened with ``O_APPEND``, so a
reader (or a second process) never sees half a line except after a crash in the middle of that very
call; the plot reader skips such a line. A run started over (``--force``) replaces them.
Only rank 0 logs: the other processes get a :class:`NullLog`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

LOG_NAME = "train.log"
METRICS_NAME = "metrics.jsonl"


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


class _Appender:
    def __init__(self, path: Path, fresh: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        self.fd = os.open(path, flags, 0o666)

    def line(self, text: str) -> None:
        os.write(self.fd, (text.rstrip("\n") + "\n").encode("utf-8"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RunLog:
    """Rank 0's reporter: console, ``train.log`` and ``metrics.jsonl`` (see the module docstring).

    ``tty`` decides bar or lines (default: whether ``console`` is a terminal). Files are opened by
    :meth:`open_files` once the run has passed its checks, so a refused run writes nothing."""

    def __init__(self, console: TextIO | None = None, tty: bool | None = None) -> None:
        self.console = console if console is not None else sys.stderr
        self.tty = self.console.isatty() if tty is None else tty
        self._log: _Appender | None = None
        self._metrics: _Appender | None = None
        self._bar = None
        self._task = None

    # -- files -----------------------------------------------------------------------------

    def open_files(self, out_dir: Path, fresh: bool) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self._log = _Appender(out_dir / LOG_NAME, fresh)
        self._metrics = _Appender(out_dir / METRICS_NAME, fresh)

    def close(self) -> None:
        self.stop_bar()
        for f in (self._log, self._metrics):
            if f is not None:
                f.close()

    # -- reporting ---------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """A message: the console (above the bar on a terminal) and train.log."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.console, flush=True)
        if self._log is not None:
            self._log.line(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}")

    def event(self, kind: str, **data: Any) -> None:
        if self._metrics is not None:
            self._metrics.line(json.dumps({"event": kind, "time": round(time.time(), 3), **data}))

    def start_bar(self, total: int, done: int) -> None:
        if not self.tty:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=Console(file=self.console),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=done, info="")

    def stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def step(self, it: int) -> None:
        """Every iteration: moves the bar on a terminal; nothing otherwise."""
        if self._bar is not None:
            self._bar.update(self._task, completed=it)

    def train_point(self, it: int, total: int, epoch: int, loss: float, lr: float, it_per_s: float) -> None:
        """The periodic report: a line (console when not a terminal; train.log always) and an event.
        ``epoch`` counts from 1; ``loss`` is the mean since the last report, over all processes."""
        eta = (total - it) / it_per_s if it_per_s > 0 else math.inf
        text = (
            f"it {it}/{total}  epoch {epoch}  loss {loss:.5f}  lr {lr:.3e}  {it_per_s:.2f} it/s  "
            f"ETA {format_duration(eta)}"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=it, info=f"loss {loss:.4f}  lr {lr:.2e}")
            if self._log is not None:
                self._log.line(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}")
        else:
            self.info(text)
        self.event("train", iter=it, epoch=epoch, loss=loss, lr=lr, it_per_s=it_per_s, eta_s=None if math.isinf(eta) else eta)

    def val_point(self, it: int, scores: dict[str, float], images: int) -> None:
        self.info(
            f"val it {it}: PSNR {scores['psnr']:.2f} dB (bicubic {scores['bicubic_psnr']:.2f}), "
            f"SSIM {scores['ssim']:.4f} (bicubic {scores['bicubic_ssim']:.4f}) on {images} image(s)"
        )
        self.event("val", iter=it, images=images, **scores)


class NullLog(RunLog):
    """What processes other than rank 0 report: nothing."""

    def __init__(self) -> None:
        super().__init__(console=open(os.devnull, "w"), tty=False)

    def open_files(self, out_dir: Path, fresh: bool) -> None:
        pass

    def info(self, text: str) -> None:
        pass

    def close(self) -> None:
        self.console.close()
