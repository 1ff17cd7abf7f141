"""The ``scales-edge`` command line (Typer): one module per command group.

``common`` holds the app and the error contract; importing a command module registers its
commands. Commands import torch (and the authoring side) only inside their bodies, so the runtime
commands (upscale, bench, info, validate on photos, demo on an .onnx) need no torch.
"""

from __future__ import annotations

import sys

from . import train, export, validate, bench, upscale, info  # noqa: F401, I001  (registers the commands, in help order)
from .common import app, command, fail

__all__ = ["app", "command", "fail", "run"]


def run() -> None:  # pragma: no cover - console entry point helper
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
