"""The ``scales-edge-run`` command: the native runner (runner/) that the wheel installs beside the
op library, started in place of this process. It finds ONNX Runtime in the onnxruntime wheel
installed beside this package (runner/README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["executable", "main"]

PROGRAM = "scales-edge-run"


def executable() -> Path:
    """Path of the native runner inside the installed package (it may be absent: see :func:`main`)."""
    return Path(__file__).resolve().with_name(PROGRAM)


def main() -> None:
    exe = executable()
    if not os.access(exe, os.X_OK):
        sys.stderr.write(
            f"{PROGRAM}: error: this scales-edge install has no native runner ({exe} is missing): it was "
            "built without static libpng/libjpeg/zlib; install a scales-edge wheel, or install libpng-dev, "
            "libjpeg62-turbo-dev and zlib1g-dev and reinstall from source\n"
        )
        raise SystemExit(2)
    os.execv(exe, [str(exe), *sys.argv[1:]])
