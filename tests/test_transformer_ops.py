"""The Transformer ops of op-domain version 3 (docs/ops.md): ``ScalesLinear`` and ``WindowAttention``.

* the numpy reference (runtime/reference.py, written from docs/ops.md) against PyTorch: the
  SCALES linear layer with its epilogue (GELU, residual) and the window attention of the model zoo
  (``transformer_common.window_attention``: shifted windows with their mask, HAT's enlarged key
  windows zero-padded at the borders);
* ONNX Runtime with the op library against the reference, on every kernel path this machine runs,
  at 1 and 2 threads, with constant and with graph inputs, and in ``ReferenceEvaluator``;
* bad attributes and shapes give ORT errors naming the op and the problem, and the process stays
  usable; the version contract (the ops do not exist under versions 1-2, older ops load under 3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _opslib import KernelLib, load_reference, ort_session as session, require_library

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from scales_edge.models.transformer_common import (  # noqa: E402
    overlap_position_index,
    relative_position_index,
    window_attention,
)
from scales_edge.nn import ScalesLinear  # noqa: E402

LIB_PATH = require_library()
ref = load_reference()
PATHS = KernelLib(LIB_PATH).paths()


@pytest.fixture(autouse=True)
def _no_kernel_env(monkeypatch):
    monkeypatch.delenv("SCALES_EDGE_KERNEL", raising=False)


def _model(node, inputs, inits, version=3):
    graph = helper.make_graph([node], "t", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, n) for n, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", version)])
    m.ir_version = 8
    return m


def _float_input(name, rank):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}{i}" for i in range(rank)])


# --------------------------------------------------------------------------- ScalesLinear

LINEAR_ORDER = ("beta", "W", "scale", "bias", "spatial_weight", "spatial_bias", "R", "norm_weight", "norm_bias")


def linear_params(rng, k, m, *, spatial=True, bias=True, norm=False):
    p = dict(
        beta=rng.uniform(-0.3, 0.3, k).astype(np.float32),
        W=ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1).astype(np.int8), axis=1),
        scale=rng.uniform(0.01, 0.2, m).astype(np.float32),
    )
    if bias:
        p["bias"] = rng.uniform(-1.0, 1.0, m).astype(np.float32)
    if spatial:
        p["spatial_weight"] = rng.normal(0, 0.3, k).astype(np.float32)
        p["spatial_bias"] = rng.normal(0, 0.5, 1).astype(np.float32)
    if norm:
        p["norm_weight"] = rng.uniform(0.5, 1.5, k).astype(np.float32)
        p["norm_bias"] = rng.normal(0, 0.2, k).astype(np.float32)
    return p


def linear_model(p, *, residual=False, const=True, version=3, rank=3, **attrs):
    names = ["X"] + [n if n in p or (n == "R" and residual) else "" for n in LINEAR_ORDER]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("ScalesLinear", names, ["Y"], domain="scales_edge", **attrs)
    inputs = [_float_input("X", rank)] + ([_float_input("R", rank)] if residual else [])
    inits = dict(p)
    if not const:  # every parameter a graph input (the op reads and checks them per call)
        for n, v in p.items():
            et = TensorProto.UINT64 if v.dtype == np.uint64 else TensorProto.FLOAT
            inputs.append(helper.make_tensor_value_info(n, et, list(v.shape)))
        inits = {}
    return _model(node, inputs, inits, version)


def linear_reference(x, p, residual=None, activation="none", norm_epsilon=1e-5):
    return ref.scales_linear(x, p["beta"], p["W"], p["scale"], p.get("bias"), p.get("spatial_weight"),
                             p.get("spatial_bias"), residual, p.get("norm_weight"), p.get("norm_bias"),
                             activation=activation, norm_epsilon=norm_epsilon)


def close(got, want, gelu=False):
    # The binary accumulators are exact; S (a float dot product, order open) and GELU (within a
    # few ulp) move the last bits.
    np.testing.assert_allclose(got, want, rtol=3e-5 if gelu else 2e-5, atol=2e-5)


def test_reference_linear_matches_pytorch():
    """The numpy reference of ScalesLinear against the PyTorch layer with the same prologue
    (LayerNorm) and epilogue (GELU, residual)."""
    torch.manual_seed(0)
    layer = ScalesLinear(70, 33).eval()
    norm = torch.nn.LayerNorm(70, eps=1e-6)
    with torch.no_grad():
        layer.beta.uniform_(-0.2, 0.2)
        layer.alpha.fill_(0.7)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.2, 0.2)
    core = layer.core_params()
    p = dict(beta=core.beta.numpy(), W=ref.pack_bits(core.weight_sign.numpy(), axis=1), scale=core.scale.numpy(),
             bias=core.bias.numpy(), spatial_weight=layer.spatial.weight.detach().reshape(-1).numpy(),
             spatial_bias=layer.spatial.bias.detach().numpy())
    x = torch.randn(2, 9, 70) * 3 + 1
    r = torch.randn(2, 9, 33)
    with torch.no_grad():
        for act in (None, "gelu"):
            for res in (None, r):
                for ln in (None, norm):
                    want = layer(x, activation=act, residual=res, norm=ln).numpy()
                    q = p if ln is None else dict(p, norm_weight=ln.weight.numpy(), norm_bias=ln.bias.numpy())
                    got = linear_reference(x.numpy(), q, None if res is None else res.numpy(), act or "none", 1e-6)
                    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


LINEAR_CASES = [
    # K, M, rows shape, spatial, bias, residual, activation, LayerNorm
    (60, 180, (2, 37), True, True, False, "none", True),  # SwinIR-light's qkv (norm1 fused)
    (60, 60, (1, 41), True, True, True, "none", False),  # proj + the block's residual
    (60, 120, (3, 7, 5), True, True, False, "gelu", True),  # fc1 (norm2 fused) + GELU
    (120, 60, (1, 33), True, False, True, "none", False),  # fc2 + residual
    (144, 432, (2, 5), True, True, False, "none", False),
    (288, 144, (1, 19), True, True, True, "gelu", True),
    (65, 17, (4, 3), False, True, True, "gelu", False),
    (1, 1, (1, 1), True, True, True, "none", False),
    (130, 9, (2, 6), False, False, False, "none", True),
]


@pytest.mark.parametrize("k,m,rows,spatial,bias,residual,act,norm", LINEAR_CASES)
def test_linear_matches_reference_on_every_path(monkeypatch, k, m, rows, spatial, bias, residual, act, norm):
    rng = np.random.default_rng(k * 1000 + m + len(rows))
    p = linear_params(rng, k, m, spatial=spatial, bias=bias, norm=norm)
    x = rng.standard_normal(rows + (k,)).astype(np.float32)
    if not norm:
        x.flat[:: 7] = np.resize(p["beta"], x.size)[:: 7]  # values on the threshold: sign +1
    r = rng.standard_normal(rows + (m,)).astype(np.float32) if residual else None
    want = linear_reference(x, p, r, act)
    attrs = {} if act == "none" else {"activation": act}
    feed = {"X": x} | ({"R": r} if residual else {})
    for path in PATHS:
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        for threads in (1, 2):
            got = session(linear_model(p, residual=residual, rank=x.ndim, **attrs), threads).run(None, feed)[0]
            close_or_flipped(got, want, x, p, act)
    got = session(linear_model(p, residual=residual, rank=x.ndim, const=False, **attrs)).run(None, feed | p)[0]
    close_or_flipped(got, want, x, p, act)


def close_or_flipped(got, want, x, p, act):
    """``close``, except in the rows where a LayerNorm'd feature sits within float rounding of
    its threshold: there the library's float32 LayerNorm and the reference's float64 one may
    binarize it differently (docs/ops.md), a full-size change of that row's outputs."""
    if "norm_weight" not in p:
        return close(got, want, gelu=act == "gelu")
    normed = ref.layer_norm(x, p["norm_weight"], p["norm_bias"], 1e-5)
    on_edge = (np.abs(normed - p["beta"]) < 1e-5).any(axis=-1)
    assert on_edge.mean() < 0.05
    close(got[~on_edge], want[~on_edge], gelu=act == "gelu")


def test_linear_reference_evaluator_runs_the_op():
    rng = np.random.default_rng(3)
    p = linear_params(rng, 20, 12)
    x = rng.standard_normal((2, 5, 20)).astype(np.float32)
    r = rng.standard_normal((2, 5, 12)).astype(np.float32)
    m = linear_model(p, residual=True, activation="gelu")
    got = ReferenceEvaluator(m, new_ops=ref.custom_ops()).run(None, {"X": x, "R": r})[0]
    close(got, linear_reference(x, p, r, "gelu"))
    p = linear_params(rng, 20, 12, norm=True)
    m = linear_model(p, norm_epsilon=1e-3)
    got = ReferenceEvaluator(m, new_ops=ref.custom_ops()).run(None, {"X": x})[0]
    close(got, linear_reference(x, p, norm_epsilon=1e-3))


# --------------------------------------------------------------------------- WindowAttention


def attention_inputs(rng, n, h, w, heads, d, ws, kws):
    qkv = rng.standard_normal((n, h, w, 3 * heads * d)).astype(np.float32)
    table = (rng.standard_normal(((ws + kws - 1) ** 2, heads)) * 0.5).astype(np.float32)
    index = (relative_position_index(ws) if kws == ws else overlap_position_index(ws, kws)).numpy().astype(np.int64)
    return qkv, table, index


def attention_model(table, index, const=True, version=3, **attrs):
    node = helper.make_node("WindowAttention", ["QKV", "table", "index"], ["Y"], domain="scales_edge", **attrs)
    inputs = [helper.make_tensor_value_info("QKV", TensorProto.FLOAT, None)]  # any rank: the op checks
    inits = {"table": table, "index": index}
    if not const:
        inputs += [helper.make_tensor_value_info("table", TensorProto.FLOAT, list(table.shape)),
                   helper.make_tensor_value_info("index", TensorProto.INT64, list(index.shape))]
        inits = {}
    return _model(node, inputs, inits, version)


def attrs_of(heads, d, ws, shift, kws):
    return dict(num_heads=heads, window_size=ws, shift_size=shift, key_window_size=kws, scale=float(d ** -0.5))


ATTENTION_CASES = [
    # N, H, W, heads, d, ws, shift, kws
    (1, 16, 24, 6, 10, 8, 0, 8),  # SwinIR-light's blocks
    (1, 16, 24, 6, 10, 8, 4, 8),
    (1, 16, 32, 2, 24, 16, 8, 16),  # HAT's window 16 (HAB), and OCAB's 24-pixel key windows
    (1, 16, 32, 2, 24, 16, 0, 24),
    (2, 12, 8, 3, 7, 4, 2, 4),
    (2, 12, 8, 2, 5, 4, 0, 8),
    (1, 6, 9, 1, 3, 3, 1, 3),
    (1, 2, 3, 1, 1, 1, 0, 3),
]


@pytest.mark.parametrize("n,h,w,heads,d,ws,shift,kws", ATTENTION_CASES)
def test_reference_attention_matches_pytorch(n, h, w, heads, d, ws, shift, kws):
    rng = np.random.default_rng(h * w + heads + shift + kws)
    qkv, table, index = attention_inputs(rng, n, h, w, heads, d, ws, kws)
    want = window_attention(torch.from_numpy(qkv), torch.from_numpy(table), torch.from_numpy(index), heads, ws,
                            shift, kws, d ** -0.5).numpy()
    got = ref.window_attention(qkv, table, index, **attrs_of(heads, d, ws, shift, kws))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("n,h,w,heads,d,ws,shift,kws", ATTENTION_CASES)
def test_attention_matches_reference_on_every_path(monkeypatch, n, h, w, heads, d, ws, shift, kws):
    rng = np.random.default_rng(h * w + heads + shift + kws)
    qkv, table, index = attention_inputs(rng, n, h, w, heads, d, ws, kws)
    attrs = attrs_of(heads, d, ws, shift, kws)
    want = ref.window_attention(qkv, table, index, **attrs)
    for path in PATHS:
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        for threads in (1, 2):
            got = session(attention_model(table, index, **attrs), threads).run(None, {"QKV": qkv})[0]
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    got = session(attention_model(table, index, const=False, **attrs)).run(
        None, {"QKV": qkv, "table": table, "index": index})[0]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_attention_reference_evaluator_and_defaults():
    """Without shift_size and key_window_size: plain windows, keys = queries' windows."""
    rng = np.random.default_rng(4)
    qkv, table, index = attention_inputs(rng, 1, 8, 12, 2, 3, 4, 4)
    m = attention_model(table, index, num_heads=2, window_size=4, scale=0.5)
    want = ref.window_attention(qkv, table, index, num_heads=2, window_size=4, scale=0.5)
    got = ReferenceEvaluator(m, new_ops=ref.custom_ops()).run(None, {"QKV": qkv})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(session(m).run(None, {"QKV": qkv})[0], want, rtol=2e-5, atol=2e-6)


def test_attention_extreme_logits_stay_finite():
    """Large logits (a max far from the rest, masked pairs at -100) give no overflow or NaN."""
    rng = np.random.default_rng(5)
    qkv, table, index = attention_inputs(rng, 1, 8, 8, 1, 4, 4, 4)
    qkv *= 30.0
    attrs = attrs_of(1, 4, 4, 2, 4)
    got = session(attention_model(table, index, **attrs)).run(None, {"QKV": qkv})[0]
    want = ref.window_attention(qkv, table, index, **attrs)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_attention_non_finite_logits_give_nan_as_the_reference():
    """A query whose only key has a -inf logit (0/0 in the softmax), or a +inf or NaN one, gets
    NaN outputs on every path, as the reference's softmax; the other queries are untouched."""
    rng = np.random.default_rng(6)
    qkv, table, index = attention_inputs(rng, 1, 2, 3, 1, 2, 1, 1)  # 1x1 windows: one key each
    qkv[0, 0, 0, :2] = 1.0
    qkv[0, 0, 0, 2:4] = (-np.inf, 0.5)  # logit -inf
    qkv[0, 1, 1, 2] = np.inf            # logit +inf or NaN
    attrs = attrs_of(1, 2, 1, 0, 1)
    with np.errstate(invalid="ignore"):
        want = ref.window_attention(qkv, table, index, **attrs)
    assert np.isnan(want[0, 0, 0]).all() and np.isnan(want[0, 1, 1]).all() and np.isfinite(want[0, 0, 1:]).all()
    for path in PATHS:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SCALES_EDGE_KERNEL", path)
            got = session(attention_model(table, index, **attrs)).run(None, {"QKV": qkv})[0]
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, equal_nan=True, err_msg=path)


def test_the_ops_measure_their_path_or_take_the_forced_one(monkeypatch):
    """ScalesLinear and WindowAttention choose their kernel path as the other ops do (ops/README.md):
    measured per geometry (the fastest per unit wins) and recorded, or forced by SCALES_EDGE_KERNEL."""
    from scales_edge.runtime.library import kernel_choices

    rng = np.random.default_rng(8)
    p = linear_params(rng, 37, 11, norm=True)
    x = rng.standard_normal((2, 40, 37)).astype(np.float32)
    qkv, table, index = attention_inputs(rng, 1, 10, 15, 3, 3, 5, 5)
    runs = [(linear_model(p, activation="gelu"), {"X": x}),
            (attention_model(table, index, **attrs_of(3, 3, 5, 2, 5)), {"QKV": qkv})]
    before = len(kernel_choices())
    for m, feed in runs:
        session(m).run(None, feed)
    made = kernel_choices()[before:]
    assert [k["op"] for k in made] == ["ScalesLinear", "WindowAttention"]
    assert "K=37 M=11 norm spatial gelu" in made[0]["shape"] and "heads=3 ws=5 shift=2 kws=5 C=9" in made[1]["shape"]
    for k in made:
        assert k["path"] in PATHS and k["how"] in ("measured", "cached", "only", "budget")
        if k["how"] == "measured":
            assert k["unit_ms"][k["path"]] == min(k["unit_ms"].values())
    monkeypatch.setenv("SCALES_EDGE_KERNEL", "portable")
    before = len(kernel_choices())
    for m, feed in runs:
        session(m).run(None, feed)
    assert [(k["path"], k["how"]) for k in kernel_choices()[before:]] == [("portable", "forced")] * 2


# --------------------------------------------------------------------------- errors and versions


def _error(m, feed):
    """The message of the ORT error a model gives at load or run time (None: no error)."""
    try:
        session(m).run(None, feed)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        return str(exc)
    return None


def test_attention_errors_name_the_op_and_the_problem():
    rng = np.random.default_rng(6)
    qkv, table, index = attention_inputs(rng, 1, 8, 8, 2, 3, 4, 4)
    ok = attrs_of(2, 3, 4, 2, 4)
    cases = [
        (dict(ok, shift_size=4), qkv, "shift_size = 4 is invalid"),
        (dict(ok, shift_size=0, key_window_size=5), qkv, "key_window_size = 5 is invalid"),
        (dict(ok, key_window_size=6), qkv, "needs key_window_size = window_size"),
        (dict(ok, num_heads=0), qkv, "num_heads = 0 is invalid"),
        ({k: v for k, v in ok.items() if k != "num_heads"}, qkv, "'num_heads' is required"),
        ({k: v for k, v in ok.items() if k != "scale"}, qkv, "'scale' is required"),
        (dict(ok, scale=float("inf")), qkv, "scale is not finite"),
        (dict(ok, window_size=3, shift_size=1), qkv, None),  # table/index shapes no longer fit
        (ok, qkv[:, :6], "not multiples of window_size"),
        (ok, qkv[..., :17], "not 3 * C with C a multiple of num_heads"),
        (ok, qkv[0], "must be 4-D"),
    ]
    for attrs, x, msg in cases:
        err = _error(attention_model(table, index, **attrs), {"QKV": x})
        assert err is not None and "scales_edge.WindowAttention" in err, (attrs, err)
        if msg:
            assert msg in err, (msg, err)
    bad_index = index.copy()
    bad_index[3, 5] = table.shape[0]
    err = _error(attention_model(table, bad_index, **ok), {"QKV": qkv})
    assert "scales_edge.WindowAttention" in err and "outside [-T, T)" in err
    err = _error(attention_model(table[:, :1], index, **ok), {"QKV": qkv})
    assert "scales_edge.WindowAttention" in err and "bias_table" in err
    err = _error(attention_model(table, index[:, :3], **ok), {"QKV": qkv})
    assert "scales_edge.WindowAttention" in err and "bias_index" in err
    # wrong attribute types
    err = _error(attention_model(table, index, **dict(ok, window_size="4")), {"QKV": qkv})
    assert "scales_edge.WindowAttention" in err and "window_size" in err
    # the process is still usable
    got = session(attention_model(table, index, **ok)).run(None, {"QKV": qkv})[0]
    np.testing.assert_allclose(got, ref.window_attention(qkv, table, index, **ok), rtol=2e-5, atol=2e-6)


def test_linear_errors_name_the_op_and_the_problem():
    rng = np.random.default_rng(7)
    p = linear_params(rng, 16, 8)
    x = rng.standard_normal((2, 3, 16)).astype(np.float32)
    r = rng.standard_normal((2, 3, 8)).astype(np.float32)
    err = _error(linear_model(p, activation="relu"), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "'activation' = 'relu' is invalid" in err
    err = _error(linear_model(p, activation=1), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "'activation' must be a string" in err
    err = _error(linear_model(p, residual=True), {"X": x, "R": r[:, :2]})
    assert "scales_edge.ScalesLinear" in err and "input 'residual' has shape [2, 2, 8]" in err
    half = {k: v for k, v in p.items() if k != "spatial_bias"}
    err = _error(linear_model(half), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "must be given together" in err
    wrong = dict(p, spatial_weight=p["spatial_weight"][:5])
    err = _error(linear_model(wrong), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "spatial_weight" in err
    err = _error(linear_model(p), {"X": x[..., :15]})
    assert "scales_edge.ScalesLinear" in err and "beta" in err
    normed = linear_params(rng, 16, 8, norm=True)
    err = _error(linear_model(normed, norm_epsilon=0.0), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "'norm_epsilon' = 0" in err
    err = _error(linear_model({k: v for k, v in normed.items() if k != "norm_bias"}), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "'norm_weight' (8) and 'norm_bias' (9)" in err
    err = _error(linear_model(dict(normed, norm_bias=normed["norm_bias"][:4])), {"X": x})
    assert "scales_edge.ScalesLinear" in err and "norm_bias" in err
    got = session(linear_model(p, residual=True)).run(None, {"X": x, "R": r})[0]
    close(got, linear_reference(x, p, r))


def test_version_contract():
    """The version-3 ops do not exist under versions 1 and 2; version-1 ops load under 3."""
    rng = np.random.default_rng(8)
    p = linear_params(rng, 16, 8)
    qkv, table, index = attention_inputs(rng, 1, 4, 4, 1, 2, 2, 2)
    for version in (1, 2):
        assert _error(linear_model(p, version=version), {"X": np.zeros((1, 2, 16), np.float32)}) is not None
        assert _error(attention_model(table, index, version=version, **attrs_of(1, 2, 2, 0, 2)), {"QKV": qkv}) is not None
    node = helper.make_node("BinaryLinear", ["X", "beta", "W", "scale"], ["Y"], domain="scales_edge")
    m = _model(node, [_float_input("X", 2)], {k: p[k] for k in ("beta", "W", "scale")}, version=3)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_array_equal(session(m).run(None, {"X": x})[0], ref.binary_linear(x, p["beta"], p["W"], p["scale"]))


def test_reference_rejects_what_the_library_rejects():
    rng = np.random.default_rng(9)
    qkv, table, index = attention_inputs(rng, 1, 8, 8, 2, 3, 4, 4)
    with pytest.raises(ValueError, match="scales_edge.WindowAttention: attribute 'shift_size' = 4"):
        ref.window_attention(qkv, table, index, **attrs_of(2, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="outside"):
        ref.window_attention(qkv, table, index + 100, **attrs_of(2, 3, 4, 0, 4))
    p = linear_params(rng, 16, 8)
    with pytest.raises(ValueError, match="scales_edge.ScalesLinear: attribute 'activation'"):
        linear_reference(np.zeros((1, 16), np.float32), p, activation="tanh")
    node = helper.make_node("WindowAttention", ["QKV", "table", "index"], ["Y"], domain="scales_edge",
                            **attrs_of(2, 3, 4, 0, 4), bogus=1)
    m = _model(node, [_float_input("QKV", 4)], {"table": table, "index": index})
    with pytest.raises(Exception, match="unsupported attribute"):
        ReferenceEvaluator(m, new_ops=ref.custom_ops()).run(None, {"QKV": qkv})
    assert math.isclose(float(ref.gelu(np.array(1.0))), 0.5 * (1 + math.erf(1 / math.sqrt(2))))
