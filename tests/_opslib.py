"""Test helpers for the scales_edge custom-op library (libscales_edge_ops.so) and its reference.

``find_library()`` looks for the library, in order:
  1. the environment variable ``SCALES_EDGE_OPS_LIB`` (a path to the .so; an invalid one is an error),
  2. the installed package: ``scales_edge/`` next to ``scales_edge/__init__.py`` or in site-packages,
  3. CMake build trees under ``<repo>/build/`` (the newest non-sanitizer build).
``load_reference()`` returns ``scales_edge.runtime.reference``, or loads ``runtime/reference.py``
by path when the package mapping is not installed.
``KernelLib`` wraps the plain-C test ABI of the library (ctypes).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import site
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
LIB_NAME = "libscales_edge_ops.so"
ENV_VAR = "SCALES_EDGE_OPS_LIB"


def _is_sanitizer_build(path: Path) -> bool:
    # An ASan-instrumented library cannot be loaded into an uninstrumented Python.
    try:
        return b"libasan.so" in path.read_bytes()
    except OSError:
        return True


def find_library() -> tuple[Path | None, str]:
    """Returns (path, how it was found) or (None, reason it was not found)."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(f"{ENV_VAR}={env} does not name a file")
        return p, f"${ENV_VAR}"
    try:  # the lookup users get
        from scales_edge.runtime.library import find_library as package_lookup

        found = package_lookup(required=False)
        if found:
            return Path(found), "installed package"
    except ImportError:
        pass
    candidates: list[Path] = []
    spec = importlib.util.find_spec("scales_edge")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / LIB_NAME)
    for sp in [*site.getsitepackages(), site.getusersitepackages()]:
        candidates.append(Path(sp) / "scales_edge" / LIB_NAME)
    for c in candidates:
        if c.is_file():
            return c, "installed package"
    build = REPO_ROOT / "build"
    found = [p for p in build.glob(f"**/{LIB_NAME}") if p.is_file() and not _is_sanitizer_build(p)]
    if found:
        return max(found, key=lambda p: p.stat().st_mtime), "build tree"
    return None, (
        f"{LIB_NAME} not found: set {ENV_VAR}, install the package, or build it with "
        "`cmake -S . -B build/ops-dev && cmake --build build/ops-dev` "
        "(needs ORT headers: bash scripts/fetch-ort-headers.sh)"
    )


def require_library() -> Path:
    """The library's path; skips the calling test module when it is missing, except under CI
    (``CI`` set), where a missing library means a broken build and fails the run."""
    import pytest

    path, how = find_library()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {how}", pytrace=False)
        pytest.skip(how, allow_module_level=True)
    return path


def require_installed_library() -> str:
    """The op library of the installed package (what ``make_session`` loads); skips the calling
    test module when it is missing, fails under CI."""
    import pytest

    from scales_edge.runtime.library import find_library as package_lookup

    path = package_lookup(required=False)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI: the scales-edge op library is not installed", pytrace=False)
        pytest.skip("the scales-edge op library is not installed", allow_module_level=True)
    return path


def ort_session(model, threads: int = 1):
    """A plain ONNX Runtime session of ``model`` (a ModelProto) with the op library registered,
    ``threads`` intra-op threads, ORT's own logging off."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.register_custom_ops_library(str(require_library()))
    so.intra_op_num_threads = threads
    so.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def load_reference():
    """The numpy reference module of the scales_edge domain."""
    try:
        from scales_edge.runtime import reference  # type: ignore[import-not-found]

        return reference
    except Exception:  # not installed / package mapping absent: load the file itself
        pass
    name = "_scales_edge_runtime_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "runtime" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class KernelError(RuntimeError):
    """An error reported by the library's C test ABI."""


_I64 = ctypes.c_int64
_P = ctypes.c_void_p
_ERR_CAP = 1024


class KernelLib:
    """ctypes wrapper of the scales_edge_* test/benchmark functions."""

    def __init__(self, path: Path):
        self.path = Path(path)
        lib = ctypes.CDLL(str(self.path))
        self.lib = lib
        lib.scales_edge_kernel_paths.restype = ctypes.c_char_p
        lib.scales_edge_kernel_paths_compiled.restype = ctypes.c_char_p
        lib.scales_edge_ort_api_version.restype = ctypes.c_int
        lib.scales_edge_kernel_resolve.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_char_p, ctypes.c_size_t]
        lib.scales_edge_pack_nchw.argtypes = [ctypes.c_char_p, _P, _P, _I64, _I64, _I64, _I64, _P,
                                             ctypes.c_char_p, ctypes.c_size_t]
        lib.scales_edge_pack_rows.argtypes = [ctypes.c_char_p, _P, _P, _I64, _I64, _P,
                                             ctypes.c_char_p, ctypes.c_size_t]
        lib.scales_edge_bconv_int32.argtypes = [ctypes.c_char_p, _P, _I64, _I64, _I64, _I64, _P, _I64,
                                               _I64, _I64, _P, _P, _P, _P, ctypes.c_char_p,
                                               ctypes.c_size_t]
        lib.scales_edge_bgemm_int32.argtypes = [ctypes.c_char_p, _P, _I64, _I64, _P, _I64, _P,
                                               ctypes.c_char_p, ctypes.c_size_t]
        lib.scales_edge_conv_output_size.argtypes = [_I64, _I64, _I64, _I64, _P, _P, _P, _P, _P,
                                                    ctypes.c_char_p, ctypes.c_size_t]
        lib.scales_edge_binary_conv2d.argtypes = [ctypes.c_char_p, _P, _P, _I64, _I64, _I64, _I64, _P,
                                                 _I64, _I64, _I64, _P, _P, _P, _P, _P, _P,
                                                 ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        for f in ("scales_edge_kernel_resolve", "scales_edge_pack_nchw", "scales_edge_pack_rows",
                  "scales_edge_bconv_int32", "scales_edge_bgemm_int32",
                  "scales_edge_conv_output_size", "scales_edge_binary_conv2d"):
            getattr(lib, f).restype = ctypes.c_int

    # -- introspection
    def paths(self) -> list[str]:
        """Kernel paths this CPU supports (slowest first)."""
        return [p for p in self.lib.scales_edge_kernel_paths().decode().split(",") if p]

    def compiled_paths(self) -> list[str]:
        return [p for p in self.lib.scales_edge_kernel_paths_compiled().decode().split(",") if p]

    def ort_api_version(self) -> int:
        return int(self.lib.scales_edge_ort_api_version())

    def resolve(self, path: str | None = None) -> str:
        """The path the library would use for `path` (None: SCALES_EDGE_KERNEL or the default)."""
        name = ctypes.create_string_buffer(64)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_kernel_resolve(_enc(path), name, 64, err, _ERR_CAP)
        _check(rc, err)
        return name.value.decode()

    # -- kernels
    def pack_nchw(self, x: np.ndarray, beta: np.ndarray, path: str | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        beta = np.ascontiguousarray(beta, np.float32)
        n, c, h, w = x.shape
        out = np.zeros((n, h, w, (c + 63) // 64), np.uint64)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_pack_nchw(_enc(path), _ptr(x), _ptr(beta), n, c, h, w, _ptr(out),
                                            err, _ERR_CAP)
        _check(rc, err)
        return out

    def pack_rows(self, x: np.ndarray, beta: np.ndarray, path: str | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        beta = np.ascontiguousarray(beta, np.float32)
        rows, k = x.shape
        out = np.zeros((rows, (k + 63) // 64), np.uint64)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_pack_rows(_enc(path), _ptr(x), _ptr(beta), rows, k, _ptr(out), err,
                                            _ERR_CAP)
        _check(rc, err)
        return out

    def conv_output_size(self, h, w, kh, kw, strides, pads, dilations) -> tuple[int, int]:
        st, pd, dl = (np.asarray(v, np.int64) for v in (strides, pads, dilations))
        oh, ow = ctypes.c_int64(), ctypes.c_int64()
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_conv_output_size(h, w, kh, kw, _ptr(st), _ptr(pd), _ptr(dl),
                                                   ctypes.byref(oh), ctypes.byref(ow), err, _ERR_CAP)
        _check(rc, err)
        return oh.value, ow.value

    def bconv_int32(self, xp: np.ndarray, c: int, wp: np.ndarray, strides=(1, 1), pads=(0, 0, 0, 0),
                    dilations=(1, 1), path: str | None = None) -> np.ndarray:
        """xp: packed input [N, H, W, CW]; wp: packed weights [M, kH, kW, CW] -> int32 [N, M, OH, OW]."""
        xp = np.ascontiguousarray(xp, np.uint64)
        wp = np.ascontiguousarray(wp, np.uint64)
        n, h, w, _ = xp.shape
        m, kh, kw, _ = wp.shape
        oh, ow = self.conv_output_size(h, w, kh, kw, strides, pads, dilations)
        st, pd, dl = (np.asarray(v, np.int64) for v in (strides, pads, dilations))
        acc = np.zeros((n, m, oh, ow), np.int32)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_bconv_int32(_enc(path), _ptr(xp), n, c, h, w, _ptr(wp), m, kh, kw,
                                              _ptr(st), _ptr(pd), _ptr(dl), _ptr(acc), err, _ERR_CAP)
        _check(rc, err)
        return acc

    def bgemm_int32(self, xp: np.ndarray, k: int, wp: np.ndarray, path: str | None = None) -> np.ndarray:
        """xp: packed rows [rows, KW]; wp: packed weights [M, KW] -> int32 [rows, M]."""
        xp = np.ascontiguousarray(xp, np.uint64)
        wp = np.ascontiguousarray(wp, np.uint64)
        rows = xp.shape[0]
        m = wp.shape[0]
        acc = np.zeros((rows, m), np.int32)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_bgemm_int32(_enc(path), _ptr(xp), rows, k, _ptr(wp), m, _ptr(acc),
                                              err, _ERR_CAP)
        _check(rc, err)
        return acc

    def binary_conv2d(self, x, beta, wp, scale, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                      dilations=(1, 1), path: str | None = None, repeat: int = 1) -> np.ndarray:
        """Whole BinaryConv2d on the calling thread (for benchmarks)."""
        x = np.ascontiguousarray(x, np.float32)
        beta = np.ascontiguousarray(beta, np.float32)
        wp = np.ascontiguousarray(wp, np.uint64)
        scale = np.ascontiguousarray(scale, np.float32)
        bias_arr = None if bias is None else np.ascontiguousarray(bias, np.float32)
        n, c, h, w = x.shape
        m, kh, kw, _ = wp.shape
        oh, ow = self.conv_output_size(h, w, kh, kw, strides, pads, dilations)
        st, pd, dl = (np.asarray(v, np.int64) for v in (strides, pads, dilations))
        y = np.zeros((n, m, oh, ow), np.float32)
        err = ctypes.create_string_buffer(_ERR_CAP)
        rc = self.lib.scales_edge_binary_conv2d(
            _enc(path), _ptr(x), _ptr(beta), n, c, h, w, _ptr(wp), m, kh, kw, _ptr(st), _ptr(pd),
            _ptr(dl), _ptr(scale), None if bias_arr is None else _ptr(bias_arr), _ptr(y), repeat, err,
            _ERR_CAP)
        _check(rc, err)
        return y


def _enc(path: str | None):
    return None if path is None else path.encode()


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _check(rc: int, err) -> None:
    if rc != 0:
        raise KernelError(err.value.decode(errors="replace"))
