"""OpenVINO's BinaryConvolution on the layers of bench_layer.py: 3x3, C -> C channels (64 unless given), pads 1, 1xCx180x320.

Optional: needs ``openvino`` (``pip install 'scales-edge[bench]'``); without it ``available()`` is False
and the other functions raise ImportError.

The model, as OpenVINO represents a binary layer (float32 NCHW in, float32 out):

    FakeQuantize(levels=2)  ->  BinaryConvolution(mode="xnor-popcount", u1 filters, pads 1)  ->  Multiply

* Binarization: a 2-level FakeQuantize with input_low = input_high = t[c] (per channel), output 0 / 1,
  outputs 1 where x > t[c], else 0. We set t[c] = nextafter(beta[c], -inf) for a random per-channel
  threshold beta, so a bit is 1 exactly when x >= beta[c]: the domain's sign(x - beta) with
  sign(0) = +1 (docs/ops.md). Bit 1 means +1, bit 0 means -1 (xnor-popcount: 2 * popcount(xnor) - K).
* Filters: element type u1 from random signs (bit 1 = +1). Measured on OpenVINO 2026.4 (the check
  below fails if this changes): the CPU plugin reads element k of the flattened [M, C, 3, 3] filter at
  bit k % 8, least significant first, of byte k // 8, while the core's
  ``Constant(Type.u1, shape, values)`` packs the most significant bit first, so filters built from a
  list of 0/1 values reach the plugin bit-reversed within each byte. We write the bytes ourselves.
* Padding: pad_value=0 makes a padded tap contribute nothing (the plugin leaves it out of both the
  popcount and K), the same zero padding as our BinaryConv2d. pad_value=1 or -1 would make it +1 / -1.
* Scale: Multiply by a per-output-channel factor (the CPU plugin fuses it into the convolution).

``time_layer`` times two compilations of that model in one process, alternating runs:
  float_io_ms      end to end ``InferRequest.infer()`` on a preallocated input tensor (PERF_COUNT off)
  kernel_only_ms   from a second compilation with PERF_COUNT on: the per-node ``real_time`` of every
                   executed node of the runtime graph whose original layers include the
                   BinaryConvolution (its fused Multiply included); ``kernel_source`` names them.
Before timing it checks OpenVINO's output against a numpy reference, on a 1x64x12x16 input (with
values on the thresholds) and on the timed input itself; it raises if they differ beyond rounding.

    python benchmarks/openvino_layer.py [--runs 20] [--threads 1 2]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

try:
    import openvino as ov
    from openvino import opset1
except ImportError:  # optional dependency
    ov = None

C, H, W = 64, 180, 320
K = 3
CHECK_SHAPE = (1, C, 12, 16)
CONV_NAME = "binconv"


def available() -> bool:
    """True when openvino can be imported."""
    return ov is not None


def _require() -> None:
    if ov is None:
        raise ImportError("openvino is not installed: pip install 'scales-edge[bench]'")


def version() -> str:
    _require()
    return ov.get_version()


def layer_params(seed: int = 0, c: int = C) -> dict[str, np.ndarray]:
    """Random layer: filter signs (+-1) [c, c, 3, 3], per-channel thresholds beta [c], scales [c]."""
    rng = np.random.default_rng(seed)
    return {
        "wsign": np.where(rng.random((c, c, K, K)) < 0.5, -1.0, 1.0).astype(np.float32),
        "beta": rng.normal(0, 0.1, c).astype(np.float32),
        "scale": (0.5 + rng.random(c)).astype(np.float32),
    }


def _u1_filters(wsign: np.ndarray):
    bits = (wsign.reshape(-1) > 0).astype(np.uint8)
    t = ov.Tensor(ov.Type.u1, ov.Shape(list(wsign.shape)))
    t.data[:] = np.packbits(bits, bitorder="little")  # the CPU plugin's bit order (module docstring)
    return ov.op.Constant(t)


def build_model(params: dict[str, np.ndarray], h: int, w: int):
    """FakeQuantize(2 levels) -> BinaryConvolution(xnor-popcount, pad_value 0) -> Multiply, on [1, c, h, w]."""
    _require()
    c = len(params["beta"])
    x = opset1.parameter([1, c, h, w], np.float32, name="input")
    t = np.nextafter(params["beta"], np.float32(-np.inf)).reshape(1, c, 1, 1)
    lo, hi = np.zeros((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32)
    bits = opset1.fake_quantize(x, t, t, lo, hi, 2, name="binarize")
    conv = opset1.binary_convolution(
        bits, _u1_filters(params["wsign"]), [1, 1], [1, 1], [1, 1], [1, 1], "xnor-popcount", 0.0, name=CONV_NAME
    )
    y = opset1.multiply(conv, params["scale"].reshape(1, c, 1, 1), name="scale")
    return ov.Model([y], [x], "binary_conv_layer")


def reference(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """numpy: conv2d(sign(x - beta), wsign), sign(0) = +1, zero padding 1, times scale[m]."""
    n, c, h, w = x.shape
    s = np.where(x >= params["beta"].reshape(1, c, 1, 1), 1.0, -1.0).astype(np.float32)
    sp = np.pad(s, ((0, 0), (0, 0), (1, 1), (1, 1)))  # padded taps are 0: no contribution
    acc = np.zeros((n, c, h, w), np.float32)  # integer sums, exact in float32
    for i in range(K):
        for j in range(K):
            acc += np.einsum("nchw,mc->nmhw", sp[:, :, i : i + h, j : j + w], params["wsign"][:, :, i, j])
    return acc.astype(np.float64) * params["scale"].reshape(1, c, 1, 1)


def _max_err(y: np.ndarray, ref: np.ndarray) -> float:
    """Max abs error; raises beyond float32 rounding (one wrong sign moves an output by 2*scale >= 1)."""
    err = float(np.abs(y.astype(np.float64) - ref).max())
    tol = 8 * np.finfo(np.float32).eps * max(1.0, float(np.abs(ref).max()))
    if err > tol:
        raise AssertionError(f"OpenVINO BinaryConvolution differs from the numpy reference: max abs error {err} > {tol}")
    return err


def _config(threads: int, perf_count: bool) -> dict[str, Any]:
    return {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": perf_count}


def check(threads: int = 1, seed: int = 0, c: int = C) -> float:
    """Compare OpenVINO with ``reference`` on a small input, values on the thresholds included; max abs error."""
    _require()
    params = layer_params(seed, c)
    rng = np.random.default_rng(seed + 1)
    shape = (1, c, *CHECK_SHAPE[2:])
    x = rng.normal(0, 0.2, shape).astype(np.float32)
    x[0, :, 0, :5] = params["beta"][:, None]  # ties, on the padded border
    x[0, :, 6, 7] = params["beta"]  # ties, inside
    compiled = ov.Core().compile_model(build_model(params, *shape[2:]), "CPU", _config(threads, False))
    return _max_err(compiled(x)[0], reference(x, params))


def _conv_nodes(compiled) -> list[dict[str, str]]:
    """Executable nodes of the runtime graph that contain the BinaryConvolution (with what was fused in)."""
    nodes = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        original = [s for s in str(rt["originalLayersNames"].value).split(",") if s]
        if CONV_NAME in original:
            nodes.append({
                "name": op.get_friendly_name(),
                "layer_type": str(rt["layerType"].value),
                "exec_type": str(rt["primitiveType"].value),
                "original_layers": ",".join(original),
            })
    if not nodes:
        raise RuntimeError("no node of OpenVINO's runtime graph contains the BinaryConvolution")
    return nodes


def _stats(prefix: str, ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        f"{prefix}_ms": float(np.median(a)),
        f"{prefix}_p10_ms": float(np.percentile(a, 10)),
        f"{prefix}_p90_ms": float(np.percentile(a, 90)),
        f"{prefix}_min_ms": float(a.min()),
    }


def time_layer(threads: int, runs: int, warmup: int, seed: int = 0, c: int = C) -> dict:
    """Median (p10/p90/min) end-to-end and BinaryConvolution-node times at 1x64x180x320 (see module doc)."""
    _require()
    if threads < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"threads and runs must be >= 1 and warmup >= 0, got {threads}, {runs}, {warmup}")
    check_err = check(threads, seed, c)
    params = layer_params(seed, c)
    x = np.random.default_rng(seed + 2).normal(0, 0.2, (1, c, H, W)).astype(np.float32)
    core = ov.Core()
    model = build_model(params, H, W)
    plain = core.compile_model(model, "CPU", _config(threads, False))
    profiled = core.compile_model(model, "CPU", _config(threads, True))
    conv_nodes = _conv_nodes(profiled)
    conv_names = {n["name"] for n in conv_nodes}
    requests = []
    for compiled in (plain, profiled):
        req = compiled.create_infer_request()
        req.set_input_tensor(ov.Tensor(x))  # shares x's memory
        requests.append(req)
    plain_req, prof_req = requests
    plain_req.infer()
    full_err = _max_err(plain_req.get_output_tensor(0).data, reference(x, params))

    float_io, kernel, per_node, fused = [], [], {}, set()
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        plain_req.infer()
        dt = time.perf_counter() - t0
        prof_req.infer()
        if i < warmup:
            continue
        float_io.append(dt * 1e3)
        ksum = 0.0
        for p in prof_req.profiling_info:
            ms = p.real_time.total_seconds() * 1e3
            if p.status == p.Status.EXECUTED:
                per_node.setdefault(f"{p.node_name} ({p.node_type}, {p.exec_type})", []).append(ms)
            elif p.node_type not in ("Parameter", "Result", "Constant"):
                fused.add(f"{p.node_name} ({p.node_type})")
            if p.node_name in conv_names:
                ksum += ms
        kernel.append(ksum)

    exec_types = sorted({n["exec_type"] for n in conv_nodes})
    fq_fused = any("binarize" in n["original_layers"].split(",") for n in conv_nodes)
    source = "; ".join(f"{n['name']} [{n['layer_type']}, {n['exec_type']}; original layers {n['original_layers']}]" for n in conv_nodes)
    source = (
        f"PERF_COUNT real_time of {source}; the FakeQuantize 'binarize' is "
        + ("fused into it (included)" if fq_fused else "a separate node (not included)")
    )
    props = {}
    for k in ("INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "NUM_STREAMS", "ENABLE_CPU_PINNING", "INFERENCE_PRECISION_HINT"):
        v = plain.get_property(k)
        props[k] = v.get_type_name() if isinstance(v, ov.Type) else str(v)
    return {
        "openvino_version": ov.get_version(),
        "threads": threads,
        "runs": runs,
        "warmup": warmup,
        "seed": seed,
        "shape": [1, c, H, W],
        "macs": c * c * K * K * H * W,
        **_stats("kernel_only", kernel),
        **_stats("float_io", float_io),
        "kernel_source": source,
        "exec_type": ",".join(exec_types),
        "kernel_nodes": conv_nodes,
        "node_median_ms": {k: float(np.median(v)) for k, v in per_node.items()},
        "fused_or_not_run": sorted(fused),
        "binarization": "FakeQuantize levels=2, per-channel threshold: bit 1 (+1) iff x >= beta[c], else -1",
        "padding": "pad_value=0: padded taps contribute 0 (left out of popcount and K)",
        "check_shape": [1, c, *CHECK_SHAPE[2:]],
        "check_max_abs_err": check_err,
        "full_size_max_abs_err": full_err,
        "compiled_properties": props,
    }


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--channels", type=int, nargs="+", default=[C])
    args = ap.parse_args()
    if not available():
        raise SystemExit("openvino is not installed: pip install 'scales-edge[bench]'")
    print(f"OpenVINO {version()}")
    for c in args.channels:
        for n in args.threads:
            r = time_layer(n, args.runs, args.warmup, c=c)
            print(json.dumps(r, indent=2))
