"""The families of faults of tests/_faults.py, written once over each op's attribute and input
specs (runtime/contract.py's OPS and _faults.FUZZ): :func:`generate` makes every family for every
op; :func:`sample` keeps every (op, family) in a smaller set."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx

from _faults import FUZZ, HOPELESS, INT32_MAX, LARGE, OUTPUT_CAP, Case, _conv_params, contract, output_elements


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
#: (Float attributes scale values before sums whose order and precision the contract leaves open,
#: so no value here overflows float32 arithmetic: where it overflows, implementations differ.)
_FLOAT_FAULTS = [(0.0, "ref"), (-1.0, "ref"), (1e-30, "ref"), (8.0, "ref"), (float("nan"), "ref"),
                 (float("inf"), "ref"), (-float("inf"), "ref"), (1, "error"), ([1.0], "error"), ("1", "error")]
_STRING_FAULTS = [("none", "ref"), ("gelu", "ref"), ("GELU", "ref"), ("relu", "ref"), ("", "ref"), (1, "error"),
                  (1.0, "error")]
_FAULTS = {onnx.AttributeProto.INT: _INT_FAULTS, onnx.AttributeProto.FLOAT: _FLOAT_FAULTS,
           onnx.AttributeProto.STRING: _STRING_FAULTS}
#: A value of each attribute type (for a misspelt or foreign name).
_SAMPLE = {onnx.AttributeProto.INT: 1, onnx.AttributeProto.INTS: [1, 1], onnx.AttributeProto.FLOAT: 1.0,
           onnx.AttributeProto.STRING: "none"}


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
            if "beta" in c.params:
                c.params["beta"][0] = np.nan
            cases.append(c)
        if op in LARGE:  # wide inputs: many packed words per pixel or row
            attrs, params, x = LARGE[op](rng)
            cases.append(Case(op, "values", "a wide input", attrs, params, x))
        if "W" in spec.inputs:
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
                if kind == onnx.AttributeProto.INTS else _FAULTS[kind]
            for value, expect in values:
                c = base(f"attribute {name}={value!r}", family="attr-value", expect=expect)
                c.attrs[name] = value
                cases.append(c)
            if name in ("kernel_shape", "num_heads", "window_size", "scale"):
                c = base(f"required attribute {name} missing", family="attr-value")
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
                c.attrs[typo] = c.attrs.get(name, _SAMPLE[types[name]])
                cases.append(c)
        for name in others:
            c = base(f"attribute {name!r} of another op", family="attr-name", expect="error")
            c.attrs[name] = _SAMPLE[types[name]]
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
                    if v.dtype == np.dtype(mutation):
                        continue
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
        for name, since in spec.added.items():  # an attribute under a version before it: plain ORT
            for mode in ("ort", "scales"):     # cannot see the version (docs/ops.md), make_session refuses
                c = base(f"attribute {name} under domain version {since - 1} ({mode})", family="version",
                         version=since - 1, mode=mode, expect="either" if mode == "ort" else "error")
                c.attrs.setdefault(name, 1)
                cases.append(c)

        # extreme geometry
        if fz.sizes:
            cases.extend(_geometry(op, fz, rng, scale))
    for i, c in enumerate(cases):
        c.id = f"{i:04d}-{c.op}-{c.family}"
    return cases


#: The AVX2 conv scratch overflow of issue 16 (its size wrapped to 0; now sized from the rows the
#: output reads): the right answer
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


def avx2_scratch_case(op: str = "BinaryConv2d") -> Case:
    """:data:`AVX2_SCRATCH_CASE` with scale 1 and bias 0: the output is the accumulators."""
    case = geometry_case(op, np.random.default_rng(16), note="the AVX2 scratch overflow of issue 16", **AVX2_SCRATCH_CASE)
    m = case.params["scale"].shape[0]
    case.params.update(scale=np.ones(m, np.float32), bias=np.zeros(m, np.float32))
    case.id = f"avx2-scratch-{op}"
    return case


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


