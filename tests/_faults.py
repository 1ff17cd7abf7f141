"""Fault injection for the scales_edge ops: a table-driven generator of malformed and extreme
models, the oracle that says what each must do, and a runner that survives crashes.

* **Generator.** :data:`FUZZ` has one entry per op of the domain (``runtime/contract.py``'s
  :data:`~scales_edge.runtime.contract.OPS`): how to draw a random valid node of it (shapes,
  attributes, constant inputs) and the reference that computes it. Every family of faults below
  is written once, over the op's attribute and input specs, so a new op is one :class:`FuzzOp`
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
* **Runner.** Cases run in worker processes (``_fault_worker.py``), each under a kernel path
  (``SCALES_EDGE_KERNEL``) and an address-space limit. A worker reports each case before running
  it; one that dies or hangs is detected, its case recorded as a crash, and a new worker goes on
  from the next case.

A verdict per case (:func:`judge`): ``pass``; ``crash`` / ``timeout``; ``wrong`` (ran and gave
another result than the reference, or ran a node it should refuse); ``refused`` (an error for a
valid node of normal size); ``message`` (an error that is not one line naming the op or domain).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from _opslib import load_reference
from scales_edge.runtime import contract

ref = load_reference()
DOMAIN = contract.DOMAIN
INT32_MAX = 2**31 - 1
WORKER = Path(__file__).with_name("_fault_worker.py")
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
    version: int | None = -999  # the domain import; -999: the op's own version; None: no import
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
        version = spec.since if self.version == -999 else self.version
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
    same = rng.random() < 0.7
    k, s, p, d = _conv_geometry(rng, same=same)
    c = int(rng.choice([1, 3, 8, 64, 65]))
    skip = same and s == [1, 1] and rng.random() < 0.6
    from_output = rng.random() < 0.4
    m = c if (skip or (not from_output and rng.random() < 0.9)) else int(rng.choice([2, 8, 17]))
    from_output = from_output or m != c
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


def _conv_kwargs(attrs: dict) -> dict:
    return {k: attrs.get(k) for k in ("kernel_shape", "strides", "pads", "dilations")} | {"group": attrs.get("group", 1)}


def _ref_conv(x, p, attrs):
    return ref.binary_conv2d(x, p["beta"], p["W"], p["scale"], p.get("bias"), **_conv_kwargs(attrs))


def _ref_scales(x, p, attrs):
    return ref.scales_conv2d(x, p["beta"], p["W"], p["scale"], p.get("bias"), p.get("spatial_weight"),
                             p.get("spatial_bias"), p.get("channel_weight"), **_conv_kwargs(attrs),
                             skip=attrs.get("skip", 0), channel_from_output=attrs.get("channel_from_output", 0))


def _ref_linear(x, p, attrs):
    return ref.binary_linear(x, p["beta"], p["W"], p["scale"], p.get("bias"))


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


# ---------------------------------------------------------------------------- families


def _typos(name: str) -> list[str]:
    """A few single-typo variants of ``name`` (each within the op library's probes)."""
    out = {name[:-1], name + "s" if not name.endswith("s") else name[:-1], name[:1].upper() + name[1:],
           name.replace("_", "") if "_" in name else name + "_", name[1:],
           name[:2] + name[3:] if len(name) > 3 else name + name[-1],
           name[:1] + name[2] + name[1] + name[3:] if len(name) > 3 else name * 2,
           name[:3] + name[2] + name[3:]}
    camel = "".join(w if i == 0 else w.title() for i, w in enumerate(name.split("_")))
    out.add(camel)
    out.discard(name)
    return sorted(out)


FOREIGN_NAMES = ("color_mode", "epsilon_x", "quux", "layout_hint")


def _int_list_faults(name: str, count: int, lo: int) -> list[tuple[Any, str]]:
    """(value, expect) for an int-list size attribute of ``count`` values at least ``lo``."""
    out: list[tuple[Any, str]] = []
    for bad_count in (1, count + 1):
        out.append(([max(lo, 1)] * bad_count, "ref"))
    for v in (lo - 1, -1, -(2**63), INT32_MAX + 1, 2**62, 2**63 - 1):
        out.append(([v] + [max(lo, 1)] * (count - 1), "ref"))
    out.append(([INT32_MAX] * count, "ref"))  # at the bound: tiny or hopeless outputs (oracle)
    out.append(([float(max(lo, 1))] * count, "error"))  # floats for ints
    out.append((max(lo, 1), "error"))  # a single int
    out.append(("1", "error"))  # a string
    return out


_INT_FAULTS = [(0, "ref"), (1, "ref"), (2, "ref"), (-1, "ref"), (2**63 - 1, "ref"), (1.0, "error"), ([1], "error"),
               ("1", "error")]


def generate(seed: int = 0, scale: int = 1) -> list[Case]:
    """Every family for every op; ``scale`` multiplies the random valid and geometry cases."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    newest = contract.newest_version()
    for op, fz in FUZZ.items():
        spec = contract.OPS[op]

        def base(note: str = "", **kw) -> Case:
            attrs, params, x = fz.base(rng)
            return Case(op, kw.pop("family", "valid"), note, attrs, params, x, **kw)

        # valid nodes: constant and graph-input parameters; NaN/Inf values; set padding bits
        for i in range(12 * scale):
            cases.append(base("random valid node", const=i % 3 != 2))
        for i in range(3):
            c = base("NaN, +-Inf and -0 in X, NaN in beta", family="values")
            special = np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)
            flat = c.x.reshape(-1)
            flat[rng.integers(0, flat.size, 4)] = special
            c.params["beta"][0] = np.nan
            cases.append(c)
        if op in LARGE:  # wide inputs: many packed words per pixel or row
            attrs, params, x = LARGE[op](rng)
            cases.append(Case(op, "values", "a wide input", attrs, params, x))
        c = base("padding bits of W set (readers must ignore them)", family="values")
        words = c.params["W"].copy()
        kbits = c.params["beta"].shape[0]
        if kbits % 64:
            words[..., -1] |= np.uint64(((1 << 64) - 1) ^ ((1 << (kbits % 64)) - 1))
        c.params["W"] = words
        cases.append(c)

        # attribute values
        for name, kind in spec.attributes.items():
            values = _int_list_faults(name, {"pads": 4}.get(name, 2), fz.sizes.get(name, 0)) \
                if kind == onnx.AttributeProto.INTS else _INT_FAULTS
            for value, expect in values:
                c = base(f"attribute {name}={value!r}", family="attr-value", expect=expect)
                c.attrs[name] = value
                cases.append(c)
            if name in ("kernel_shape",):
                c = base("required attribute kernel_shape missing", family="attr-value")
                del c.attrs[name]
                cases.append(c)

        # attribute names: typos and the other ops' names are refused even by plain ORT;
        # unrelated names are ignored by plain ORT (it cannot see them) and refused by make_session
        others = sorted({a for s in contract.OPS.values() for a in s.attributes} - set(spec.attributes))
        types = {a: t for s in contract.OPS.values() for a, t in s.attributes.items()}
        for name in spec.attributes:
            for typo in _typos(name):
                if typo in types:
                    continue
                c = base(f"attribute name {typo!r} (for {name})", family="attr-name", expect="error")
                c.attrs[typo] = c.attrs.get(name, 1 if types[name] == onnx.AttributeProto.INT else [1, 1])
                cases.append(c)
        for name in others:
            c = base(f"attribute {name!r} of another op", family="attr-name", expect="error")
            c.attrs[name] = 1 if types[name] == onnx.AttributeProto.INT else [1, 1]
            cases.append(c)
        for name in FOREIGN_NAMES:
            for mode in ("ort", "scales"):
                c = base(f"unrelated attribute {name!r} ({mode})", family="attr-name", mode=mode,
                         expect="either" if mode == "ort" else "error", ignore_attrs=(name,))
                c.attrs[name] = 3
                cases.append(c)

        # inputs
        for name in spec.inputs[1:]:
            required = spec.inputs.index(name) < spec.required
            for mutation in ("float64", "float16", "int64", "rank+1", "rank-1", "longer", "shorter", "empty",
                             "absent"):
                c = base(f"input {name}: {mutation}", family="input", const=bool(rng.random() < 0.5))
                v = c.params.get(name)
                if v is None:
                    if mutation != "absent":
                        continue
                if mutation in ("float64", "float16", "int64"):
                    if v.dtype == np.uint64 and mutation == "int64":
                        c.params[name] = v.view(np.int64)
                    else:
                        with warnings.catch_warnings():  # uint64 words do not fit float16: fine
                            warnings.simplefilter("ignore")
                            c.params[name] = v.astype(mutation)
                    c.expect = "error"
                elif mutation == "rank+1":
                    c.params[name] = v[..., None]
                elif mutation == "rank-1":
                    c.params[name] = np.array(v.reshape(-1)[0]) if v.ndim == 1 else v.reshape(v.shape[:-2] + (-1,))
                elif mutation == "longer":
                    c.params[name] = np.concatenate([v, v[:1]], axis=0)
                elif mutation == "shorter":
                    c.params[name] = v[:-1]
                elif mutation == "empty":
                    c.params[name] = v[:0]
                elif mutation == "absent":
                    c.params[name] = None
                    if required:
                        c.expect = "error"
                cases.append(c)
        c = base("one input more than the op has", family="input", expect="error", extra_input=True)
        for n in spec.inputs[1:]:
            if c.params.get(n) is None:
                c.params[n] = np.zeros(1, np.float32)  # fill every optional slot first
        cases.append(c)

        # the input X
        for mutation in ("batch 0", "last dim 0", "rank-1", "rank+1", "float64"):
            c = base(f"X: {mutation}", family="x")
            if mutation == "batch 0":
                c.x = c.x[:0]
            elif mutation == "last dim 0":
                c.x = c.x[..., :0]
            elif mutation == "rank-1":
                c.x = c.x.reshape(c.x.shape[:-2] + (-1,)) if c.x.ndim > 2 else c.x.reshape(-1)
            elif mutation == "rank+1":
                c.x = c.x[None]
            else:
                c.x = c.x.astype(np.float64)
                c.expect = "error"
            cases.append(c)

        # domain versions and imports: plain ORT cannot see them (it runs the node as the newest
        # version it has); make_session refuses them
        for version in (newest + 1, 100, 0, -1, None):
            for mode in ("ort", "scales"):
                label = "no scales_edge import" if version is None else f"domain version {version}"
                cases.append(base(f"{label} ({mode})", family="version", version=version, mode=mode,
                                  expect="either" if mode == "ort" else "error"))
        if spec.since > 1:
            cases.append(base(f"{op} under domain version {spec.since - 1}", family="version", version=spec.since - 1,
                              expect="error"))

        # extreme geometry
        if fz.sizes:
            cases.extend(_geometry(op, fz, rng, scale))
    for i, c in enumerate(cases):
        c.id = f"{i:04d}-{c.op}-{c.family}"
    return cases


#: The AVX2 conv scratch overflow of issue 16 (fixed on the kernels branch): right answer
#: [256, 256, 256, 256] on the other paths.
AVX2_SCRATCH_CASE = dict(x_shape=(1, 256, 1, 1), kernel=[2, 2], dilations=[INT32_MAX, 2**30 - 64],
                         pads=[INT32_MAX, 2**30 - 64, 0, 0], strides=[1, 1], m=4)


def geometry_case(op: str, rng, x_shape, kernel, strides, pads, dilations, m, note) -> Case:
    n, c, h, w = x_shape
    params = _conv_params(rng, c, m, kernel, bias=True)
    if op == "ScalesConv2d":
        params.update(spatial_weight=None, spatial_bias=None, channel_weight=None)
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads), "dilations": list(dilations)}
    if op == "ScalesConv2d":
        attrs["channel_from_output"] = 1
    x = rng.standard_normal(x_shape).astype(np.float32)
    return Case(op, "geometry", note, attrs, params, x)


def _geometry(op, fz, rng, scale) -> list[Case]:
    big = [INT32_MAX, INT32_MAX - 1, 2**30, 2**30 - 64, 65535, 4096]
    out = [avx2_scratch_case(op)]
    tries = 0
    while len(out) < 14 * scale and tries < 10000:
        tries += 1
        k = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        d = [int(rng.choice(big)) if rng.random() < 0.6 else int(rng.integers(1, 4)) for _ in range(2)]
        s = [int(rng.choice(big)) if rng.random() < 0.3 else int(rng.integers(1, 3)) for _ in range(2)]
        p = []
        for axis in range(2):  # pads that cancel a dilated kernel: a tiny output from huge numbers
            p.append(int(d[axis] * (k[axis] - 1)) if rng.random() < 0.6 else int(rng.choice([0, 1] + big)))
        p = [min(v, INT32_MAX) for v in p] + [int(rng.choice([0, 1, INT32_MAX])) for _ in range(2)]
        xs = (1, int(rng.choice([1, 8, 64, 65])), int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        c = geometry_case(op, rng, xs, k, s, p, d, int(rng.choice([1, 4])), "extreme pads/dilations/strides")
        elems = output_elements(c)
        if elems is None or OUTPUT_CAP < elems < HOPELESS:
            continue  # between tiny and hopeless a run is only slow
        out.append(c)
    return out


def scratch_words_avx2(case: Case) -> int:
    """The AVX2 stride-1 conv's row scratch (words) for a conv case, in exact integers: the
    quantity of issue 16's overflow (ops/kernels conv_row_scratch_words)."""
    a = case.attrs
    k, d = a["kernel_shape"], a.get("dilations", [1, 1])
    s, p = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
    ow = ref.conv_output_size(case.x.shape[3], k[1], s[1], p[1], p[3], d[1])
    cw = (case.x.shape[1] + 63) // 64
    return 2 * ((k[0] - 1) * d[0] + 1) * cw * (-(-ow // 64) * 64 + (k[1] - 1) * d[1])


def avx2_scratch_hazard(case: Case) -> bool:
    """True for conv cases whose AVX2 row scratch in bytes does not fit in int64 (issue 16's
    overflow: the size wraps and the kernel writes past its buffer): run on the AVX2 path only
    when the kernels' fix is present (:func:`avx2_fix_present`). Smaller scratch sizes that do
    not fit in memory are refused cleanly and stay in the sweep."""
    if case.family != "geometry" or "kernel_shape" not in case.attrs:
        return False
    try:
        return scratch_words_avx2(case) * 8 >= 1 << 63
    except Exception:
        return False


def avx2_scratch_case(op: str = "BinaryConv2d") -> Case:
    """:data:`AVX2_SCRATCH_CASE` with scale 1 and bias 0: the output is the accumulators."""
    case = geometry_case(op, np.random.default_rng(16), note="the AVX2 scratch overflow of issue 16", **AVX2_SCRATCH_CASE)
    m = case.params["scale"].shape[0]
    case.params.update(scale=np.ones(m, np.float32), bias=np.zeros(m, np.float32))
    case.id = f"avx2-scratch-{op}"
    return case


_FIX: dict[str, bool] = {}


def avx2_fix_present() -> bool:
    """Whether the AVX2 path now runs :data:`AVX2_SCRATCH_CASE` right (the kernels' fix merged)."""
    if "avx2" not in _FIX:
        case = avx2_scratch_case()
        verdict, _ = judge(case, expected(case), run_cases([case], "avx2")[0])
        _FIX["avx2"] = verdict == "pass"
    return _FIX["avx2"]


# ---------------------------------------------------------------------------- runner


def run_cases(cases: list[Case], kernel: str | None | list[str | None], timeout: float = 120.0,
              memory_limit: int = 6 << 30) -> list[tuple[str, Any]]:
    """Each case's outcome, ``("ok", output)``, ``("error", message)``, ``("crash", how)`` or
    ``("timeout", seconds)``, running them in worker processes under kernel path ``kernel`` (None:
    the default; a list: one per case)."""
    kernels = kernel if isinstance(kernel, list) else [kernel] * len(cases)
    env = dict(os.environ)
    env.pop("SCALES_EDGE_KERNEL", None)
    env["SCALES_EDGE_FAULT_MEMORY"] = str(memory_limit)
    results: dict[int, tuple[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="scales-edge-faults-") as tmp:
        cases_path, results_path = Path(tmp) / "cases.pkl", Path(tmp) / "results.pkl"
        payload = [dict(model=c.model().SerializeToString(), feeds=c.feeds(), mode=c.mode, threads=1 + i % 2,
                        kernel=k) for i, (c, k) in enumerate(zip(cases, kernels))]
        cases_path.write_bytes(pickle.dumps(payload))
        start = 0
        while start < len(cases):
            proc = subprocess.Popen([sys.executable, str(WORKER), str(cases_path), str(results_path), str(start)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            current, timed_out = start, False
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                events = sel.select(max(0.0, deadline - time.monotonic()))
                if not events:
                    timed_out = True
                    proc.kill()
                    break
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        current = int(line)
                        deadline = time.monotonic() + timeout
            rc = proc.wait()
            sel.close()
            proc.stdout.close()
            results.update(_read_results(results_path))
            if rc == 0 and not timed_out:
                break
            if current not in results:
                results[current] = ("timeout", timeout) if timed_out else ("crash", _how(rc))
            start = current + 1
    return [results.get(i, ("crash", "never ran")) for i in range(len(cases))]


def run_in_process(case: Case, kernel: str | None = None) -> tuple[str, Any]:
    """What the worker does, here (for cases known not to crash)."""
    from _fault_worker import run_one

    return run_one(dict(model=case.model().SerializeToString(), feeds=case.feeds(), mode=case.mode, threads=1,
                        kernel=kernel))


def _read_results(path: Path) -> dict[int, tuple[str, Any]]:
    out = {}
    if not path.exists():
        return out
    with open(path, "rb") as f:
        while True:
            try:
                i, res = pickle.load(f)
            except (EOFError, pickle.UnpicklingError):
                break
            out[i] = res
    return out


def _how(rc: int) -> str:
    if rc < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


# ---------------------------------------------------------------------------- the sweep


@dataclass
class Report:
    kernel: str
    verdicts: list[tuple[Case, str, str]]
    deferred: int = 0  # issue 16.1's AVX2 cases left out until the kernels' fix is present

    def failures(self) -> list[tuple[Case, str, str]]:
        return [v for v in self.verdicts if v[1] not in ("pass", "refused-extreme")]

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v[1] == verdict)

    def summary(self) -> str:
        kinds = ("pass", "crash", "timeout", "wrong", "refused", "message", "refused-extreme")
        text = f"{self.kernel}: {len(self.verdicts)} runs, " + ", ".join(f"{k} {self.count(k)}" for k in kinds)
        return text + (f"; {self.deferred} deferred (issue 16.1, AVX2 scratch)" if self.deferred else "")


def sweep(cases: list[Case], kernel: str | None) -> Report:
    """Run and judge the plain-ORT cases under kernel path ``kernel``, or with ``None`` the
    ``make_session`` cases under the default path (the contract checks do not depend on it).
    Under ``avx2``, the cases of issue 16's scratch overflow run only once the fix is present."""
    deferred = 0
    if kernel is None:  # every case through make_session, which must judge them alike
        todo = [c for c in cases if c.mode == "scales"]
        todo += [replace(c, mode="scales") for c in cases if c.mode == "ort" and c.expect != "either"]
    else:
        todo = [c for c in cases if c.mode == "ort"]
        if kernel == "avx2" and not avx2_fix_present():
            deferred = sum(avx2_scratch_hazard(c) for c in todo)
            todo = [c for c in todo if not avx2_scratch_hazard(c)]
    wants = [expected(c) for c in todo]
    gots = run_cases(todo, kernel)
    return Report(kernel or "make_session", [(c, *judge(c, w, g)) for c, w, g in zip(todo, wants, gots)], deferred)


def sample(cases: list[Case], every: int) -> list[Case]:
    """A deterministic subset that keeps every family of every op."""
    seen: set[tuple[str, str]] = set()
    out = []
    for i, c in enumerate(cases):
        key = (c.op, c.family)
        if key not in seen or i % every == 0:
            seen.add(key)
            out.append(c)
    return out


