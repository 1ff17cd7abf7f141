"""Writing files without ever leaving a partial one: every file scales-edge writes goes to a
temporary file in the target's folder and is renamed into place (``os.replace`` is atomic on POSIX
and Windows within one file system), so an interrupted write (Ctrl-C, a kill, a full disk, a
file-size limit) leaves the old file, or none, never half of a new one. Torch-free.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    For writers that want a file name (``onnx.save``, ``torch.save``, ``cv2.imwrite``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # the data is on disk before the name points at it
            os.fsync(f.fileno())
        if target.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp_path, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically (see :func:`atomic_path`)."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open writes; mode {mode!r} does not")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f


def atomic_write_text(path: PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def same_file(a: PathLike, b: PathLike) -> bool:
    """True if ``a`` and ``b`` name the same existing file (links and relative paths resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
