"""Kernel paths of libscales_edge_ops.so (through its plain-C test ABI) against the numpy
reference of docs/ops.md: every path the CPU supports must reproduce the integer accumulators
exactly; forcing a path through SCALES_EDGE_KERNEL works, and a bad one is an error, not a crash."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from _opslib import KernelError, KernelLib, load_reference, require_library

LIB_PATH = require_library()

ref = load_reference()


@pytest.fixture(scope="module")
def lib() -> KernelLib:
    return KernelLib(LIB_PATH)


@pytest.fixture(autouse=True)
def _no_kernel_env(monkeypatch):
    monkeypatch.delenv("SCALES_EDGE_KERNEL", raising=False)


def _activations(rng, shape, beta, channel_axis):
    x = rng.standard_normal(shape).astype(np.float32)
    # Values exactly on the threshold (sign +1), NaNs (sign -1) and signed zeros.
    b = np.expand_dims(beta, tuple(i for i in range(len(shape)) if i != channel_axis % len(shape)))
    on = rng.random(shape) < 0.05
    x = np.where(on, np.broadcast_to(b, shape), x).astype(np.float32)
    x[rng.random(shape) < 0.02] = np.nan
    x[rng.random(shape) < 0.01] = -0.0
    return x


def _random_conv(rng, it):
    c = int(rng.integers(1, 301)) if it % 3 == 0 else int(rng.integers(1, 81))
    h = 2 * int(rng.integers(0, 7)) + 1
    w = 2 * int(rng.integers(0, 7)) + 1 + (1 if it % 5 == 0 else 0)
    k = 1 if it % 4 == 0 else 3
    m = int(rng.choice([1, 3, 8, 16, 17, 33, 64]))
    s = int(rng.integers(1, 3))
    d = int(rng.integers(1, 3))
    pads = [int(v) for v in rng.integers(0, 3, size=4)]
    oh = ref.conv_output_size(h, k, s, pads[0], pads[2], d)
    ow = ref.conv_output_size(w, k, s, pads[1], pads[3], d)
    if oh < 1 or ow < 1:
        return None
    return dict(n=int(rng.integers(1, 3)), c=c, h=h, w=w, k=k, m=m, s=s, d=d, pads=pads)


def test_library_reports_paths(lib):
    paths = lib.paths()
    assert paths[0] == "portable"
    assert set(paths) <= set(lib.compiled_paths()) <= {"portable", "avx2", "avx512", "neon"}
    assert lib.resolve() == "auto"  # default: each op measures the supported paths
    print(f"library {LIB_PATH}; paths: {paths}; compiled: {lib.compiled_paths()}")


def test_pack_matches_reference(lib):
    rng = np.random.default_rng(1)
    for c in (1, 5, 63, 64, 65, 130, 300):
        beta = rng.uniform(-0.5, 0.5, c).astype(np.float32)
        x = _activations(rng, (2, c, 3, 5), beta, 1)
        want = ref.pack_bits(x - beta.reshape(1, c, 1, 1), axis=1)  # [N, H, W, CW]
        for path in lib.paths():
            np.testing.assert_array_equal(lib.pack_nchw(x, beta, path=path), want, err_msg=path)
        xr = _activations(rng, (4, c), beta, 1)
        want_rows = ref.pack_bits(xr - beta, axis=-1)
        for path in lib.paths():
            np.testing.assert_array_equal(lib.pack_rows(xr, beta, path=path), want_rows, err_msg=path)


def test_reference_pack_roundtrip():
    rng = np.random.default_rng(2)
    signs = np.where(rng.random((3, 130, 2)) < 0.5, 1, -1).astype(np.int8)
    words = ref.pack_bits(signs, axis=1)
    assert words.shape == (3, 2, 3) and words.dtype == np.uint64
    np.testing.assert_array_equal(ref.unpack_bits(words, 130, axis=1), signs)
    # bit j of word w is element 64*w + j; -1 -> 1; padding 0
    assert ref.pack_bits(np.array([-1, 1, 1, -1], np.int8))[0] == np.uint64(0b1001)
    assert ref.pack_bits(np.array([0.0, np.nan, -0.0, -1e-30], np.float32))[0] == np.uint64(0b1010)


@pytest.mark.parametrize("seed", range(6))
def test_conv_accumulators_match_reference(lib, seed):
    rng = np.random.default_rng(100 + seed)
    done = 0
    it = 0
    while done < 12:
        it += 1
        cfg = _random_conv(rng, it + seed)
        if cfg is None:
            continue
        done += 1
        n, c, h, w, k, m = (cfg[x] for x in ("n", "c", "h", "w", "k", "m"))
        beta = rng.uniform(-0.5, 0.5, c).astype(np.float32)
        x = _activations(rng, (n, c, h, w), beta, 1)
        wsign = np.where(rng.random((m, c, k, k)) < 0.5, 1, -1).astype(np.int8)
        wp = ref.pack_bits(wsign, axis=1)
        strides, dil = [cfg["s"]] * 2, [cfg["d"]] * 2
        want = ref.binary_conv2d_acc(x, beta, wp, kernel_shape=[k, k], strides=strides,
                                     pads=cfg["pads"], dilations=dil)
        xp = ref.pack_bits(x - beta.reshape(1, c, 1, 1), axis=1)
        for path in lib.paths():
            got = lib.bconv_int32(xp, c, wp, strides=strides, pads=cfg["pads"], dilations=dil,
                                  path=path)
            np.testing.assert_array_equal(got, want, err_msg=f"{path} {cfg}")


def test_conv_ignores_weight_padding_bits(lib):
    rng = np.random.default_rng(5)
    c, m = 70, 9
    beta = np.zeros(c, np.float32)
    x = rng.standard_normal((1, c, 5, 5)).astype(np.float32)
    wp = ref.pack_bits(np.where(rng.random((m, c, 3, 3)) < 0.5, 1, -1), axis=1)
    dirty = wp.copy()
    dirty[..., -1] |= np.uint64(0xFFFF_FFFF_FFFF_FFFF) << np.uint64(c % 64)  # garbage past C
    xp = ref.pack_bits(x, axis=1)
    want = ref.binary_conv2d_acc(x, beta, wp, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    np.testing.assert_array_equal(ref.binary_conv2d_acc(x, beta, dirty, kernel_shape=[3, 3],
                                                        pads=[1, 1, 1, 1]), want)
    for path in lib.paths():
        np.testing.assert_array_equal(lib.bconv_int32(xp, c, dirty, pads=[1, 1, 1, 1], path=path),
                                      want, err_msg=path)


def test_linear_accumulators_match_reference(lib):
    rng = np.random.default_rng(7)
    for it in range(40):
        k = int(rng.integers(1, 301)) if it else 1000
        m = int(rng.choice([1, 3, 8, 16, 17, 33, 64]))
        rows = int(rng.integers(1, 10))
        beta = rng.uniform(-0.5, 0.5, k).astype(np.float32)
        x = _activations(rng, (rows, k), beta, 1)
        wp = ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1), axis=-1)
        want = ref.binary_linear_acc(x, beta, wp)
        xp = ref.pack_bits(x - beta, axis=-1)
        for path in lib.paths():
            np.testing.assert_array_equal(lib.bgemm_int32(xp, k, wp, path=path), want,
                                          err_msg=f"{path} rows={rows} K={k} M={m}")


def test_full_conv_float_matches_reference(lib):
    rng = np.random.default_rng(9)
    c, m = 64, 64
    beta = rng.uniform(-0.2, 0.2, c).astype(np.float32)
    x = rng.standard_normal((1, c, 9, 11)).astype(np.float32)
    wp = ref.pack_bits(np.where(rng.random((m, c, 3, 3)) < 0.5, 1, -1), axis=1)
    scale = rng.uniform(0.01, 0.1, m).astype(np.float32)
    bias = rng.uniform(-1, 1, m).astype(np.float32)
    want = ref.binary_conv2d(x, beta, wp, scale, bias, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    for path in lib.paths():
        got = lib.binary_conv2d(x, beta, wp, scale, bias, pads=[1, 1, 1, 1], path=path)
        np.testing.assert_array_equal(got, want, err_msg=path)  # same float32 ops: bit-exact


def test_env_var_forces_path(lib, monkeypatch):
    for path in lib.paths():
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        assert lib.resolve() == path
    monkeypatch.setenv("SCALES_EDGE_KERNEL", "auto")
    assert lib.resolve() == "auto"
    monkeypatch.setenv("SCALES_EDGE_KERNEL", "portable")
    # A call without an explicit path follows the variable.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 70)).astype(np.float32)
    beta = np.zeros(70, np.float32)
    np.testing.assert_array_equal(lib.pack_rows(x, beta), ref.pack_bits(x, axis=-1))


def test_unknown_or_unavailable_path_is_an_error(lib, monkeypatch):
    with pytest.raises(KernelError, match="unknown"):
        lib.resolve("neon9000")
    monkeypatch.setenv("SCALES_EDGE_KERNEL", "bogus")
    with pytest.raises(KernelError, match="SCALES_EDGE_KERNEL 'bogus' is unknown"):
        lib.resolve()
    with pytest.raises(KernelError, match="SCALES_EDGE_KERNEL"):
        lib.pack_rows(np.zeros((1, 3), np.float32), np.zeros(3, np.float32))
    unavailable = [p for p in ("portable", "avx2", "avx512") if p not in lib.paths()]
    for p in unavailable:
        with pytest.raises(KernelError, match="not (supported by this CPU|built into)"):
            lib.resolve(p)
    # Still alive and working.
    monkeypatch.delenv("SCALES_EDGE_KERNEL")
    assert lib.resolve("portable") == "portable"


def test_forced_unavailable_path_in_subprocess_does_not_crash():
    """The same through a fresh process with the variable set from the start."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from _opslib import KernelLib, KernelError\n"
        "lib = KernelLib(%r)\n"
        "try:\n    lib.resolve()\nexcept KernelError as e:\n    print('ERR', e)\n"
        "print('ALIVE', lib.resolve('portable'))\n"
    ) % (os.path.dirname(__file__), str(LIB_PATH))
    env = dict(os.environ, SCALES_EDGE_KERNEL="sse-nonexistent")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERR SCALES_EDGE_KERNEL 'sse-nonexistent' is unknown" in out.stdout
    assert "ALIVE portable" in out.stdout


def test_reference_rejects_malformed_inputs():
    x = np.zeros((1, 8, 4, 4), np.float32)
    beta = np.zeros(8, np.float32)
    wp = np.zeros((2, 3, 3, 1), np.uint64)
    scale = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"scales_edge.BinaryConv2d: input 'X' must be 4-D"):
        ref.binary_conv2d(x[0], beta, wp, scale, kernel_shape=[3, 3])
    with pytest.raises(ValueError, match=r"'beta' has shape \[7\]"):
        ref.binary_conv2d(x, beta[:7], wp, scale, kernel_shape=[3, 3])
    with pytest.raises(ValueError, match=r"differ from kernel_shape"):
        ref.binary_conv2d(x, beta, wp, scale, kernel_shape=[1, 1])
    with pytest.raises(ValueError, match=r"ceil\(C/64\)"):
        ref.binary_conv2d(x, beta, np.zeros((2, 3, 3, 2), np.uint64), scale, kernel_shape=[3, 3])
    with pytest.raises(ValueError, match=r"'group' = 2 is not supported"):
        ref.binary_conv2d(x, beta, wp, scale, kernel_shape=[3, 3], group=2)
    with pytest.raises(ValueError, match=r"output would be empty"):
        ref.binary_conv2d(x[:, :, :2, :2], beta, wp, scale, kernel_shape=[3, 3])
    with pytest.raises(ValueError, match=r"'scale' must have shape \[M\] = \[2\]"):
        ref.binary_conv2d(x, beta, wp, scale[:1], kernel_shape=[3, 3])
    with pytest.raises(ValueError, match=r"scales_edge.BinaryLinear: input 'X' must have rank >= 2"):
        ref.binary_linear(np.zeros(8, np.float32), beta, np.zeros((2, 1), np.uint64), scale)
