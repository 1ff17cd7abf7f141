"""Fault injection for the scales_edge ops: a table-driven generator of malformed and extreme
models, the oracle that says what each must do, and a runner that survives crashes.

This module holds what a case is, the op table and the oracle; ``_fault_gen.py`` the families of
faults, ``_fault_run.py`` the runner.

* **Generator** (``_fault_gen.py``). :data:`FUZZ` has one entry per op of the domain
  (``runtime/contract.py``'s :data:`~scales_edge.runtime.contract.OPS`): how to draw a random valid node of it (shapes,
  attributes, constant inputs) and the reference that computes it. Every family of faults is
  written once, over the op's attribute and input specs, so a new op is one :class:`FuzzOp`
  entry: valid nodes; attribute values (wrong count, below or above the bounds, overflowing, wrong
  type); attribute names (typos, the other ops' attributes, unrelated names); inputs (element type,
  rank, length, empty, absent, one too many, NaN/Inf, set padding bits); the input X (rank, empty
  dims); domain versions and imports; extreme geometry (pads, dilations, strides at 2^31-1 with
  tiny or astronomically large outputs).
* **Oracle.** What a case must do comes from the numpy reference (``runtime/reference.py``): it
  computes a valid node, and its ``ValueError`` says the node is invalid. The reference pads its
  input with zeros, which an extreme pad or dilation makes impossible to allocate, so there the
  accumulators come from :func:`taps_acc`, which visits only the taps inside the input (the
  formula of docs/ops.md). Element types, input counts, attribute names and versions are checked
  before the reference (ORT and ``runtime/contract.py`` hold those).
* **Runner** (``_fault_run.py``). Cases run in worker processes (``_fault_worker.py``), each under
  a kernel path (``SCALES_EDGE_KERNEL``) and an address-space limit. A worker reports each case
  before running it; one that dies or hangs is detected, its case recorded as a crash, and a new
  worker goes on from the next case.

A verdict per case (:func:`judge`): ``pass``; ``crash`` / ``timeout``; ``wrong`` (ran and gave
another result than the reference, or ran a node it should refuse); ``refused`` (an error for a
valid node of normal size); ``message`` (an error that is not one line naming the op or domain);
``refused-extreme`` (a valid node at sizes no kernel need take, refused cleanly: not a failure).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from _opslib import load_reference
from scales_edge.runtime import contract

ref = load_reference()
DOMAIN = contract.DOMAIN
INT32_MAX = 2**31 - 1
#: Outputs at least this large (elements) cannot be allocated anywhere: the op must refuse them.
HOPELESS = 1 << 40
#: Outputs above this are not generated unless HOPELESS (between, a run is merely slow).
OUTPUT_CAP = 1 << 20


# ---------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One generated model, its input, and what it must do.

    ``expect``: ``"ref"`` (the reference decides: a result, or an error), ``"error"`` (must be
    refused), ``"either"`` (a result equal to the reference's, or a clean error).
    ``mode``: ``"ort"`` (a plain ONNX Runtime session with the op library) or ``"scales"``
    (``make_session``, which also holds the model to runtime/contract.py).
    """

    op: str
    family: str
    note: str
    attrs: dict[str, Any]
    params: dict[str, np.ndarray | None]  # inputs 1.. by their spec name; None: absent ("")
    x: np.ndarray
    const: bool = True  # params as initializers (else graph inputs, fed at run time)
    version: int | None = -999  # the domain import; -999: the node's own version; None: no import
    expect: str = "ref"
    mode: str = "ort"
    ignore_attrs: tuple[str, ...] = ()  # attributes the reference leaves out (plain ORT ignores them)
    extra_input: bool = False
    id: str = ""

    def model(self) -> onnx.ModelProto:
        spec = contract.OPS[self.op]
        names = ["X"] + [n if self.params.get(n) is not None else "" for n in spec.inputs[1:]]
        if self.extra_input:
            names.append("extra")
        while names and not names[-1]:
            names.pop()
        node = helper.make_node(self.op, names, ["Y"], domain=DOMAIN, name=f"n_{self.op}")
        for k, v in self.attrs.items():
            node.attribute.append(helper.make_attribute(k, v))
        inputs = [_value_info("X", self.x)]
        inits = []
        for n, v in self.params.items():
            if v is None:
                continue
            if self.const:
                inits.append(numpy_helper.from_array(v, n))
            else:
                inputs.append(_value_info(n, v))
        if self.extra_input:
            inits.append(numpy_helper.from_array(np.zeros(1, np.float32), "extra"))
        graph = helper.make_graph([node], "fault", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                                  initializer=inits)
        # -999: the lowest version with the op and every attribute the node has
        own = max([spec.since] + [spec.added.get(a, 0) for a in self.attrs])
        version = own if self.version == -999 else self.version
        opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(DOMAIN, version)] if version is not None else [])
        m = helper.make_model(graph, opset_imports=opsets)
        m.ir_version = 8
        return m

    def feeds(self) -> dict[str, np.ndarray]:
        f = {"X": self.x}
        if not self.const:
            f.update({n: v for n, v in self.params.items() if v is not None})
        return f


def _value_info(name: str, v: np.ndarray):
    et = helper.np_dtype_to_tensor_dtype(v.dtype)
    return helper.make_tensor_value_info(name, et, [f"{name}_{i}" for i in range(v.ndim)])  # symbolic dims


# ---------------------------------------------------------------------------- the op table


@dataclass(frozen=True)
class FuzzOp:
    """How to fuzz one op: ``base(rng)`` draws a valid node (attrs, params, x); ``reference``
    computes it (raising ValueError for an invalid one); ``sizes`` names its int-list attributes
    with the smallest value each element may take."""

    name: str
    base: Callable[[np.random.Generator], tuple[dict, dict, np.ndarray]]
    reference: Callable[[np.ndarray, dict, dict], np.ndarray]
    sizes: dict[str, int] = field(default_factory=dict)


def _signs(rng, shape) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(np.int8)


def _floats(rng, n, lo=-1.0, hi=1.0) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


def _conv_geometry(rng, same: bool):
    """kernel, strides, pads, dilations; ``same``: odd kernel, symmetric pads keeping H at stride 1."""
    if same:
        k = [int(rng.choice([1, 3, 5])), int(rng.choice([1, 3, 5]))]
        d = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
        s = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
        p = [d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2]
        return k, s, [p[0], p[1], p[0], p[1]], d
    k = [int(rng.integers(1, 5)), int(rng.integers(1, 5))]
    s = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    d = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    p = [int(v) for v in rng.integers(0, 4, 4)]
    return k, s, p, d


def _conv_attrs(k, s, p, d, rng) -> dict:
    attrs: dict[str, Any] = {"kernel_shape": k}
    # attributes at their default are sometimes left out, sometimes given
    for name, value, default in (("strides", s, [1, 1]), ("pads", p, [0, 0, 0, 0]), ("dilations", d, [1, 1])):
        if value != default or rng.random() < 0.5:
            attrs[name] = value
    if rng.random() < 0.2:
        attrs["group"] = 1
    return attrs


def _conv_params(rng, c, m, k, bias: bool) -> dict:
    return {
        "beta": _floats(rng, c, -0.3, 0.3),
        "W": ref.pack_bits(_signs(rng, (m, c, k[0], k[1])), axis=1),
        "scale": _floats(rng, m, 0.01, 0.2),
        "bias": _floats(rng, m) if bias else None,
    }


def _x_for(rng, n, c, k, s, p, d, same: bool) -> np.ndarray:
    h_min = max(1, d[0] * (k[0] - 1) + 1 - p[0] - p[2])
    w_min = max(1, d[1] * (k[1] - 1) + 1 - p[1] - p[3])
    h = max(h_min, int(rng.integers(1, 12)))
    w = max(w_min, int(rng.integers(1, 12)))
    return rng.standard_normal((n, c, h, w)).astype(np.float32)


def _base_conv(rng):
    c = int(rng.choice([1, 3, 8, 63, 64, 65, 130]))
    m = int(rng.choice([1, 4, 8, 17]))
    k, s, p, d = _conv_geometry(rng, same=rng.random() < 0.5)
    params = _conv_params(rng, c, m, k, bias=rng.random() < 0.7)
    return _conv_attrs(k, s, p, d, rng), params, _x_for(rng, int(rng.integers(1, 3)), c, k, s, p, d, False)


def _base_scales(rng):
    """A valid ScalesConv2d: which branches and flags are possible depends on the geometry."""
    shuffle = int(rng.choice([2, 3])) if rng.random() < 0.25 else 1  # version 3's pixel_shuffle r
    same = shuffle > 1 or rng.random() < 0.7
    k, s, p, d = _conv_geometry(rng, same=same)
    if shuffle > 1:
        s = [1, 1]  # an upsampling layer is stride 1
    c = int(rng.choice([1, 3, 8, 64, 65]))
    skip = same and s == [1, 1] and rng.random() < 0.6
    from_output = rng.random() < 0.4
    f = c if (skip or (not from_output and rng.random() < 0.9)) else int(rng.choice([2, 8, 17]))
    from_output = from_output or f != c
    m = shuffle * shuffle * f  # the conv's channels; F = M / r^2 after the shuffle
    params = _conv_params(rng, c, m, k, bias=rng.random() < 0.7)
    if same and rng.random() < 0.7:
        params["spatial_weight"] = rng.normal(0, 0.3, c).astype(np.float32)
        params["spatial_bias"] = rng.normal(0, 0.5, 1).astype(np.float32)
    else:
        params["spatial_weight"] = params["spatial_bias"] = None
    params["channel_weight"] = rng.normal(0, 1.0, int(rng.choice([1, 3, 5]))).astype(np.float32) if rng.random() < 0.7 else None
    attrs = _conv_attrs(k, s, p, d, rng)
    if skip or rng.random() < 0.3:
        attrs["skip"] = int(skip)
    if from_output or rng.random() < 0.3:
        attrs["channel_from_output"] = int(from_output)
    if shuffle > 1 or rng.random() < 0.1:
        attrs["pixel_shuffle"] = shuffle
    return attrs, params, _x_for(rng, int(rng.integers(1, 3)), c, k, s, p, d, same)


def _base_linear(rng):
    k = int(rng.choice([1, 5, 63, 64, 65, 200]))
    m = int(rng.choice([1, 5, 64]))
    lead = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(1, 4))))
    params = {
        "beta": _floats(rng, k, -0.3, 0.3),
        "W": ref.pack_bits(_signs(rng, (m, k)), axis=-1),
        "scale": _floats(rng, m, 0.01, 0.2),
        "bias": _floats(rng, m) if rng.random() < 0.7 else None,
    }
    return {}, params, rng.standard_normal(lead + (k,)).astype(np.float32)


def _base_scales_linear(rng):
    """A valid ScalesLinear: BinaryLinear's node with any subset of the LayerNorm, the spatial
    branch, GELU and the residual."""
    attrs, params, x = _base_linear(rng)
    k, m = params["beta"].shape[0], params["scale"].shape[0]
    spatial, norm = rng.random() < 0.7, rng.random() < 0.6
    params["spatial_weight"] = rng.normal(0, 0.3, k).astype(np.float32) if spatial else None
    params["spatial_bias"] = rng.normal(0, 0.5, 1).astype(np.float32) if spatial else None
    params["residual"] = rng.standard_normal(x.shape[:-1] + (m,)).astype(np.float32) if rng.random() < 0.5 else None
    params["norm_weight"] = rng.normal(1, 0.3, k).astype(np.float32) if norm else None
    params["norm_bias"] = rng.normal(0, 0.3, k).astype(np.float32) if norm else None
    if rng.random() < 0.7:
        attrs["activation"] = str(rng.choice(["none", "gelu", "gelu"]))
    if norm and rng.random() < 0.5:
        attrs["norm_epsilon"] = float(rng.choice([1e-5, 1e-6, 0.5]))
    return attrs, params, x


def _base_window_attention(rng):
    """A valid WindowAttention: shifted, plain or enlarged-key windows over a small map."""
    heads, d, ws = int(rng.integers(1, 4)), int(rng.choice([1, 2, 4, 5])), int(rng.integers(1, 5))
    kws = ws + 2 * int(rng.integers(1, 3)) if rng.random() < 0.3 else ws
    shift = int(rng.integers(0, ws)) if kws == ws and rng.random() < 0.6 else 0
    n, h, w = int(rng.integers(1, 3)), ws * int(rng.integers(1, 4)), ws * int(rng.integers(1, 4))
    t = int(rng.choice([1, 7, (ws + kws - 1) ** 2]))
    attrs: dict[str, Any] = {"num_heads": heads, "window_size": ws, "scale": float(d) ** -0.5}
    if shift or rng.random() < 0.3:
        attrs["shift_size"] = shift
    if kws != ws or rng.random() < 0.3:
        attrs["key_window_size"] = kws
    params = {"bias_table": rng.normal(0, 1, (t, heads)).astype(np.float32),
              "bias_index": rng.integers(-t, t, (ws * ws, kws * kws)).astype(np.int64)}
    return attrs, params, rng.standard_normal((n, h, w, 3 * heads * d)).astype(np.float32)


def _conv_kwargs(attrs: dict) -> dict:
    return {k: attrs.get(k) for k in ("kernel_shape", "strides", "pads", "dilations")} | {"group": attrs.get("group", 1)}


def _ref_conv(x, p, attrs):
    return ref.binary_conv2d(x, p["beta"], p["W"], p["scale"], p.get("bias"), **_conv_kwargs(attrs))


def _ref_scales(x, p, attrs):
    return ref.scales_conv2d(x, p["beta"], p["W"], p["scale"], p.get("bias"), p.get("spatial_weight"),
                             p.get("spatial_bias"), p.get("channel_weight"), **_conv_kwargs(attrs),
                             skip=attrs.get("skip", 0), channel_from_output=attrs.get("channel_from_output", 0),
                             pixel_shuffle=attrs.get("pixel_shuffle", 1))


def _ref_linear(x, p, attrs):
    return ref.binary_linear(x, p["beta"], p["W"], p["scale"], p.get("bias"))


def _ref_scales_linear(x, p, attrs):
    eps = attrs.get("norm_epsilon")
    return ref.scales_linear(x, p["beta"], p["W"], p["scale"], p.get("bias"), p.get("spatial_weight"),
                             p.get("spatial_bias"), p.get("residual"), p.get("norm_weight"), p.get("norm_bias"),
                             activation=attrs.get("activation", "none"), norm_epsilon=1e-5 if eps is None else eps)


def _ref_window_attention(x, p, attrs):
    return ref.window_attention(x, p["bias_table"], p["bias_index"], **attrs)


def _large_conv(rng, scales=False):
    c, m = 2051, 3
    params = _conv_params(rng, c, m, [3, 3], bias=True)
    if scales:
        params.update(spatial_weight=None, spatial_bias=None, channel_weight=rng.normal(0, 1, 3).astype(np.float32))
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]} | ({"channel_from_output": 1} if scales else {})
    return attrs, params, rng.standard_normal((1, c, 3, 4)).astype(np.float32)


def _large_linear(rng):
    k, m = 70_001, 3
    params = {"beta": _floats(rng, k, -0.3, 0.3), "W": ref.pack_bits(_signs(rng, (m, k)), axis=-1),
              "scale": _floats(rng, m, 0.01, 0.2), "bias": None}
    return {}, params, rng.standard_normal((2, k)).astype(np.float32)


#: A node per op with a wide input (thousands of channels or features).
LARGE = {"BinaryConv2d": _large_conv, "ScalesConv2d": lambda rng: _large_conv(rng, True), "BinaryLinear": _large_linear}

_SIZES = {"kernel_shape": 1, "strides": 1, "pads": 0, "dilations": 1}
FUZZ: dict[str, FuzzOp] = {
    op.name: op
    for op in (
        FuzzOp("BinaryConv2d", _base_conv, _ref_conv, _SIZES),
        FuzzOp("ScalesConv2d", _base_scales, _ref_scales, _SIZES),
        FuzzOp("BinaryLinear", _base_linear, _ref_linear),
        FuzzOp("ScalesLinear", _base_scales_linear, _ref_scales_linear),
        FuzzOp("WindowAttention", _base_window_attention, _ref_window_attention),
    )
}


# ---------------------------------------------------------------------------- oracle


class TooLarge(Exception):
    pass


def taps_acc(X, beta, W, ks, st, pd, dl, dims):
    """The reference's ``_conv_acc`` without the zero-padded copy: for each tap, only the output
    positions whose input pixel is inside X (docs/ops.md's sum), in Python integers, so pads and
    dilations of 2^31 cost nothing. Refuses outputs larger than :data:`OUTPUT_CAP`."""
    n, c, h, w, m, oh, ow = dims
    if n * m * oh * ow > OUTPUT_CAP:
        raise TooLarge(n * m * oh * ow)
    xs = ref.sign(X - beta.reshape(1, c, 1, 1)).astype(np.int64)
    ws = ref.unpack_bits(W, c, axis=1).astype(np.int64)
    acc = np.zeros((n, m, oh, ow), np.int64)
    for i in range(ks[0]):
        rows = [(o, o * st[0] - pd[0] + i * dl[0]) for o in range(oh)]
        rows = [(o, r) for o, r in rows if 0 <= r < h]
        for j in range(ks[1]):
            cols = [(o, o * st[1] - pd[1] + j * dl[1]) for o in range(ow)]
            cols = [(o, q) for o, q in cols if 0 <= q < w]
            if not rows or not cols:
                continue
            ro, ri = (np.array(v) for v in zip(*rows))
            co, ci = (np.array(v) for v in zip(*cols))
            window = xs[:, :, ri][:, :, :, ci]
            acc[:, :, ro[:, None], co[None, :]] += np.einsum("nchw,mc->nmhw", window, ws[:, :, i, j])
    return acc


def output_elements(case: Case) -> int | None:
    """N*M*OH*OW of a conv case in exact integers (None: not a conv, or not computable)."""
    a, p, x = case.attrs, case.params, case.x
    try:
        k = [int(v) for v in a["kernel_shape"]]
        s = [int(v) for v in a.get("strides", [1, 1])]
        pd = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        d = [int(v) for v in a.get("dilations", [1, 1])]
        n, _, h, w = x.shape
        m = p["W"].shape[0]
        oh = ref.conv_output_size(h, k[0], s[0], pd[0], pd[2], d[0])
        ow = ref.conv_output_size(w, k[1], s[1], pd[1], pd[3], d[1])
        return n * m * oh * ow
    except Exception:
        return None


def expected(case: Case) -> tuple[str, np.ndarray | None]:
    """(``"ok"``, output) / (``"error"``, None) / (``"either"``, output or None)."""
    if case.expect == "error":
        return "error", None
    attrs = {k: v for k, v in case.attrs.items() if k not in case.ignore_attrs}
    spec = FUZZ[case.op]
    params = {k: v for k, v in case.params.items() if v is not None}
    try:
        with _taps_reference(), np.errstate(all="ignore"):  # NaN/Inf cases
            y = spec.reference(case.x, params, attrs)
    except ValueError:  # an invalid node must be refused, whatever else the case is about
        return "error", None
    except TooLarge as big:
        if int(str(big)) >= HOPELESS:
            return "error", None
        raise RuntimeError(f"{case.id}: an output of {big} elements; the generator should not make it") from None
    return ("either" if case.expect == "either" else "ok"), y


@contextlib.contextmanager
def _taps_reference():
    saved = ref._conv_acc
    ref._conv_acc = taps_acc
    try:
        yield
    finally:
        ref._conv_acc = saved


def judge(case: Case, want: tuple[str, np.ndarray | None], got: tuple[str, Any]) -> tuple[str, str]:
    """(verdict, detail) for one case; see the module docstring."""
    kind, out = got
    if kind in ("crash", "timeout"):
        return kind, str(out)
    exp, y = want
    if kind == "ok":
        if exp == "error":
            return "wrong", "ran a node it should refuse"
        if y is None:
            return "pass", ""
        if out.shape != y.shape:
            return "wrong", f"shape {list(out.shape)}, reference {list(y.shape)}"
        if not np.allclose(out, y, rtol=2e-5, atol=2e-5, equal_nan=True):
            return "wrong", f"max |diff| {float(np.nanmax(np.abs(out.astype(np.float64) - y))):.3g}"
        return "pass", ""
    msg = str(out).strip()
    if "\n" in msg or not (DOMAIN in msg or case.op in msg):
        return "message", msg
    if exp == "ok":  # a valid node refused: a failure, except at sizes no kernel need take
        return ("refused-extreme", msg) if case.family == "geometry" else ("refused", msg)
    return "pass", ""
