"""BinaryLinear vs ONNX Runtime's FP32 MatMul, and SwinIR-light-SCALES x4 vs SwinIR-light FP32.

Part 1 (op level). One linear layer over 57,600 tokens (a 320x180 LR image, one token per pixel),
60 -> 60 (SwinIR-light's ``proj``) and 60 -> 120 (its ``fc1``), as one-node-ish ONNX models
run in ONNX Runtime:

* ``binary``: ``scales_edge::BinaryLinear`` (threshold, XNOR/popcount against the packed weights,
  per-output scale and bias: the whole binary layer core);
* ``fp32``: ``MatMul`` + ``Add`` with FP32 weights, what an ``nn.Linear`` exports to;
* ``fp32-signs``: the same math as ``binary`` with standard ops (``Sub``, ``GreaterOrEqual``,
  ``Where`` to +-1, ``MatMul`` with +-1 weights, ``Mul``, ``Add``), the ``fp32-reference`` export;
* ``copy-floor``: ``Neg`` (``Concat`` of the input with itself for 60 -> 120): reads the input and
  writes an output of the layer's size, what any float-in/float-out layer must move.

Part 2 (end to end). SwinIR-light x4 (real config, random weights) exported three ways and timed on
a 320x180 input: SCALES with our ops, the FP32 SwinIR-light (``binary="fp"``: what SCALES replaces),
and the SCALES network with its binary layers written as FP32 ops (``fp32-reference``).

Every comparison alternates the models run by run in one process
(:func:`scales_edge.runtime.bench.benchmark` for part 2), so both see the same machine state; the
numbers are medians. Results are printed and written as JSON to ``benchmarks/results/``.

    python benchmarks/bench_binary_linear.py                      # both parts
    python benchmarks/bench_binary_linear.py --skip-e2e --runs 50  # op level only
    python benchmarks/bench_binary_linear.py --skip-op             # end to end only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from scales_edge.fileio import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
TOKENS = 57_600  # 320 x 180
SHAPES = ((60, 60), (60, 120))


def _pack_rows(signs: np.ndarray) -> np.ndarray:
    from scales_edge.export import pack_linear_weight

    return pack_linear_weight(signs)


def linear_models(k: int, m: int, seed: int = 0) -> dict[str, onnx.ModelProto]:
    """The single-layer models of part 1 over ``[1, TOKENS, k]`` inputs, and their copy floor."""
    from scales_edge.export import DOMAIN, DOMAIN_VERSION

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k)).astype(np.float32) * 0.1
    signs = np.where(w >= 0, 1.0, -1.0).astype(np.float32)
    beta = (rng.standard_normal(k) * 0.2).astype(np.float32)
    scale = (np.abs(w).mean(axis=1) * 0.8).astype(np.float32)
    bias = (rng.standard_normal(m) * 0.1).astype(np.float32)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "tokens", k])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "tokens", m])
    init = lambda name, arr: numpy_helper.from_array(arr, name)  # noqa: E731
    opset = [helper.make_opsetid("", 17)]

    binary = helper.make_graph(
        [helper.make_node("BinaryLinear", ["input", "beta", "packed", "scale", "bias"], ["output"], domain=DOMAIN)],
        "binary_linear",
        [x],
        [y],
        [init("beta", beta), init("packed", _pack_rows(signs)), init("scale", scale), init("bias", bias)],
    )
    fp32 = helper.make_graph(
        [helper.make_node("MatMul", ["input", "wt"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["output"])],
        "fp32_linear",
        [x],
        [y],
        [init("wt", np.ascontiguousarray(w.T)), init("bias", bias)],
    )
    signs_graph = helper.make_graph(
        [
            helper.make_node("Sub", ["input", "beta"], ["centred"]),
            helper.make_node("GreaterOrEqual", ["centred", "zero"], ["nonneg"]),
            helper.make_node("Where", ["nonneg", "one", "minus_one"], ["xs"]),
            helper.make_node("MatMul", ["xs", "st"], ["acc"]),
            helper.make_node("Mul", ["acc", "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["output"]),
        ],
        "fp32_signs_linear",
        [x],
        [y],
        [
            init("beta", beta),
            init("zero", np.array(0.0, np.float32)),
            init("one", np.array(1.0, np.float32)),
            init("minus_one", np.array(-1.0, np.float32)),
            init("st", np.ascontiguousarray(signs.T)),
            init("scale", scale),
            init("bias", bias),
        ],
    )
    # The copy floor: the cheapest graph that reads the layer's input and writes an output of its
    # size (Neg; Concat of the input with itself for a wider output), what any float layer moves.
    floor_node = (helper.make_node("Neg", ["input"], ["output"]) if m == k else
                  helper.make_node("Concat", ["input"] * (m // k), ["output"], axis=-1))
    floor = helper.make_graph([floor_node], "copy_floor", [x], [y])
    return {
        "binary": helper.make_model(binary, opset_imports=opset + [helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]),
        "fp32": helper.make_model(fp32, opset_imports=opset),
        "fp32-signs": helper.make_model(signs_graph, opset_imports=opset),
        "copy-floor": helper.make_model(floor, opset_imports=opset),
    }


def _median_ms(times: list[float]) -> float:
    return float(np.median(np.asarray(times) * 1e3))


def bench_linear(k: int, m: int, threads: int, runs: int, warmup: int) -> dict:
    from scales_edge.runtime import make_session

    models = linear_models(k, m)
    # Taking turns: no session may keep spinning threads (see scales_edge.runtime.bench.benchmark).
    sessions = {name: make_session(proto, threads=threads, spin=False) for name, proto in models.items()}
    x = np.random.default_rng(1).standard_normal((1, TOKENS, k)).astype(np.float32)
    feed = {"input": x}
    outs = {name: s.run(None, feed)[0] for name, s in sessions.items()}
    for _ in range(warmup):
        for s in sessions.values():
            s.run(None, feed)
    # the binary op and its FP32-signs equivalent compute the same numbers (exact +-1 sums)
    agree = float(np.abs(outs["binary"] - outs["fp32-signs"]).max())
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, s in sessions.items():  # alternate run by run
            t0 = time.perf_counter()
            s.run(None, feed)
            times[name].append(time.perf_counter() - t0)
    med = {name: _median_ms(t) for name, t in times.items()}
    return {
        "tokens": TOKENS,
        "in_features": k,
        "out_features": m,
        "threads": threads,
        "runs": runs,
        "median_ms": med,
        "min_ms": {name: float(min(t) * 1e3) for name, t in times.items()},
        "speedup_vs_fp32_matmul": med["fp32"] / med["binary"],
        "speedup_vs_fp32_signs": med["fp32-signs"] / med["binary"],
        "gmacs_per_s": {name: TOKENS * k * m / (v / 1e3) / 1e9 for name, v in med.items() if name != "copy-floor"},
        "max_abs_binary_vs_fp32_signs": agree,
    }


def bench_end_to_end(threads: int, runs: int, warmup: int, size: tuple[int, int], workdir: Path) -> dict:
    import torch

    from scales_edge.export import export_onnx
    from scales_edge.models import build_model
    from scales_edge.nn import ScalesConv2d, ScalesLinear, binary_layers
    from scales_edge.runtime.bench import benchmark

    torch.manual_seed(0)
    scales = build_model("swinir_light", scale=4, binary="scales").eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial thresholds and scales (a trained model has them)
        for _, layer in binary_layers(scales):
            if isinstance(layer, (ScalesLinear, ScalesConv2d)):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
    fp = build_model("swinir_light", scale=4, binary="fp").eval()
    paths = {
        "scales": workdir / "swinir_light_scales_x4.onnx",
        "fp32": workdir / "swinir_light_fp32_x4.onnx",
        "scales-fp32-reference": workdir / "swinir_light_scales_fp32ref_x4.onnx",
    }
    export_onnx(scales, paths["scales"])
    export_onnx(fp, paths["fp32"])
    export_onnx(scales, paths["scales-fp32-reference"], binary_as="fp32-reference")
    results = benchmark(list(paths.values()), size=size, threads=threads, runs=runs, warmup=warmup)
    out = {name: r.to_dict() for name, r in zip(paths, results)}
    med = {name: out[name]["median_ms"] for name in paths}
    return {
        "arch": "swinir_light",
        "scale": 4,
        "input_hw": list(size),
        "threads": threads,
        "runs": runs,
        "models": out,
        "speedup_vs_fp32": med["fp32"] / med["scales"],
        "speedup_vs_fp32_reference": med["scales-fp32-reference"] / med["scales"],
    }


def _machine() -> dict:
    from scales_edge.runtime.bench import machine_info

    info = machine_info()
    info["loadavg_at_start"] = list(os.getloadavg())
    info["kernel_path"] = os.environ.get("SCALES_EDGE_KERNEL", "auto")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per model (op level)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = every core")
    ap.add_argument("--skip-e2e", action="store_true", help="op level only")
    ap.add_argument("--skip-op", action="store_true", help="end to end only")
    ap.add_argument("--e2e-runs", type=int, default=5)
    ap.add_argument("--e2e-warmup", type=int, default=1)
    ap.add_argument("--e2e-threads", default="1", help="comma list of thread counts for the end-to-end part")
    ap.add_argument("--size", default="180x320", help="end-to-end LR input HxW")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    def thread_list(text: str) -> list[int]:
        return [os.cpu_count() or 1 if t == "all" else int(t) for t in text.split(",")]

    args.out.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    print(f"machine: {machine['cpu']} ({machine['cores']} cores, {', '.join(machine['cpu_flags'])}), "
          f"ORT {machine['onnxruntime']}, load average {machine['loadavg_at_start'][0]:.2f}")

    op_results = []
    for threads in [] if args.skip_op else dict.fromkeys(thread_list(args.threads)):
        for k, m in SHAPES:
            r = bench_linear(k, m, threads, args.runs, args.warmup)
            op_results.append(r)
            md = r["median_ms"]
            print(f"linear {k}->{m} x {TOKENS} tokens, {threads} thread(s): BinaryLinear {md['binary']:.2f} ms, "
                  f"FP32 MatMul+Add {md['fp32']:.2f} ms ({r['speedup_vs_fp32_matmul']:.1f}x), "
                  f"FP32 +-1 MatMul {md['fp32-signs']:.2f} ms ({r['speedup_vs_fp32_signs']:.1f}x)")
    if op_results:
        payload = {"schema": "scales-edge.bench-binary-linear/1", "machine": machine, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": op_results}
        atomic_write_text((args.out / "binary_linear.json"), json.dumps(payload, indent=2))
        print(f"wrote {args.out / 'binary_linear.json'}")

    if not args.skip_e2e:
        h, w = (int(v) for v in args.size.lower().split("x"))
        e2e = []
        with tempfile.TemporaryDirectory() as tmp:
            for threads in dict.fromkeys(thread_list(args.e2e_threads)):
                r = bench_end_to_end(threads, args.e2e_runs, args.e2e_warmup, (h, w), Path(tmp))
                e2e.append(r)
                med = {n: v["median_ms"] for n, v in r["models"].items()}
                size_mb = {n: v["file_bytes"] / 1e6 for n, v in r["models"].items()}
                print(f"SwinIR-light x4 {w}x{h} -> {4 * w}x{4 * h}, {threads} thread(s): SCALES {med['scales']:.0f} ms "
                      f"({size_mb['scales']:.2f} MB), FP32 {med['fp32']:.0f} ms ({size_mb['fp32']:.2f} MB, "
                      f"{r['speedup_vs_fp32']:.2f}x), SCALES as FP32 ops {med['scales-fp32-reference']:.0f} ms "
                      f"({r['speedup_vs_fp32_reference']:.2f}x)")
        payload = {"schema": "scales-edge.bench-swinir-e2e/1", "machine": machine, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": e2e}
        atomic_write_text((args.out / "swinir_light_e2e.json"), json.dumps(payload, indent=2))
        print(f"wrote {args.out / 'swinir_light_e2e.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
