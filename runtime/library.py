"""Where the C++ op library is, and sessions that load it."""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import sysconfig
from pathlib import Path

from ..errors import ScalesEdgeError

LIBRARY_NAME = {"darwin": "libscales_edge_ops.dylib", "win32": "scales_edge_ops.dll"}.get(
    sys.platform, "libscales_edge_ops.so"
)
ENV_VAR = "SCALES_EDGE_OPS_LIB"


class LibraryNotFound(ScalesEdgeError):
    """The op library was not built or installed."""


def _candidates() -> list[Path]:
    import scales_edge

    dirs = [Path(p) for p in getattr(scales_edge, "__path__", [])]
    # Editable installs keep CMake's install tree in site-packages, beside the redirect shim.
    for key in ("platlib", "purelib"):
        dirs.append(Path(sysconfig.get_paths()[key]) / "scales_edge")
    return [d / LIBRARY_NAME for d in dirs]


def find_library(required: bool = True) -> str | None:
    """Path of ``libscales_edge_ops``: ``$SCALES_EDGE_OPS_LIB``, else the installed package."""
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise LibraryNotFound(f"{ENV_VAR}={env}: no such file")
        return str(Path(env).resolve())
    for cand in _candidates():
        if cand.is_file():
            return str(cand.resolve())
    if required:
        raise LibraryNotFound(
            f"the scales-edge op library ({LIBRARY_NAME}) is not installed; reinstall with `pip install .` "
            f"(it needs the ONNX Runtime headers, see README) or point {ENV_VAR} at a built copy"
        )
    return None


def get_library_path() -> str:
    """Path to pass to ``SessionOptions.register_custom_ops_library``."""
    path = find_library(required=True)
    assert path is not None
    return path


@functools.lru_cache(maxsize=None)
def _domain_version_of(path: str) -> int | None:
    try:
        fn = ctypes.CDLL(path).scales_edge_domain_version
    except (OSError, AttributeError):  # not loadable here, or a build older than the symbol
        return None
    fn.restype = ctypes.c_int
    return int(fn())


def library_domain_version() -> int | None:
    """The newest ``scales_edge`` domain version the op library implements (its ``kDomainVersion``;
    it implements 1 to that one), or None when no library is installed."""
    try:
        path = find_library(required=False)
    except LibraryNotFound:
        return None
    return None if path is None else _domain_version_of(path)
def kernel_choices() -> list[dict]:
    """The kernel path each ``scales_edge`` op node chose so far in this process, in order: one dict
    per node and geometry with ``op``, ``node``, ``shape``, ``path``, ``how`` (``forced``, ``only``,
    ``measured``, ``cached`` or ``budget``) and ``unit_ms`` (measured ms per work unit of each path).
    Read from the loaded op library (``scales_edge_kernel_choices``); [] when it cannot say."""
    import ctypes
    import json

    path = find_library(required=False)
    if path is None:
        return []
    try:
        lib = ctypes.CDLL(path)  # the library ONNX Runtime loaded: the same handle
        fn = lib.scales_edge_kernel_choices
    except (OSError, AttributeError):
        return []
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    size = fn(None, 0) + 1
    buf = ctypes.create_string_buffer(size)
    fn(buf, size)
    try:
        return json.loads(buf.value.decode())
    except ValueError:
        return []
