"""Binary Transformers in ONNX Runtime: their linear layers, and whole SwinIR-light / HAT-S models.

Part 1 (op level). Linear layers over 57,600 tokens (a 320x180 LR image, one token per pixel):

* bare, 60 -> 60 (SwinIR-light's ``proj``) and 60 -> 120 (its ``fc1``), as three one-node-ish models:
  ``binary`` = ``scales_edge::BinaryLinear`` (threshold, XNOR/popcount against the packed weights,
  per-output scale and bias: the whole binary layer core); ``fp32`` = ``MatMul`` + ``Add`` with FP32
  weights, what an ``nn.Linear`` exports to; ``fp32-signs`` = the same math as ``binary`` with standard
  ops (``Sub``, ``GreaterOrEqual``, ``Where`` to +-1, ``MatMul`` with +-1 weights, ``Mul``, ``Add``);
  ``copy-floor`` = ``Neg`` (``Concat`` of the input with itself for 60 -> 120): reads the input and
  writes an output of the layer's size, what any float-in/float-out layer must move;
* with the work of their block (:data:`BLOCK_LAYERS`: SwinIR-light's ``qkv`` with the LayerNorm before
  it, ``proj`` and ``fc2`` with the residual add after them, ``fc1`` with LayerNorm before and GELU
  after, all SCALES layers with their spatial re-scaling): ``fused`` = one
  ``scales_edge::ScalesLinear`` (op-domain version 3) against ``fp32`` = the same block work around an
  FP32 linear as standard ops (``LayerNormalization``, ``MatMul`` + ``Add``, GELU, ``Add``; ORT fuses
  what it can).

Part 2 (end to end). SwinIR-light x4 (or ``--arch hat_s``; real config, random weights, randomized
thresholds and scales) exported four ways and timed on a 320x180 input:

* ``scales``: the SCALES model as ``scales-edge export`` writes it (version 3: ``ScalesLinear`` and
  ``WindowAttention``, fused ``ScalesConv2d``);
* ``fp32``: the FP32 model (``binary="fp"``, what SCALES replaces) exported with the same attention
  fusion (``WindowAttention``): the fair baseline, whose ratio to ``scales`` measures binarization;
* ``fp32-unfused``: the FP32 model with standard ops only (``export --no-fuse``: what the FP32
  export was before version 3);
* ``scales-unfused``: the SCALES model as version 1 (``--no-fuse``).

Then the ``scales`` model runs again in an ORT-profiled session (kernel time per op type and per
group, layout ops included), apart from the timed runs.

Every comparison alternates the models run by run in one process
(:func:`scales_edge.runtime.bench.benchmark` for part 2), so both see the same machine state; the
numbers are medians. Results are printed and written as JSON to ``benchmarks/results/``.

    python benchmarks/bench_binary_linear.py                      # both parts, SwinIR-light
    python benchmarks/bench_binary_linear.py --skip-e2e --runs 50  # op level only
    python benchmarks/bench_binary_linear.py --skip-op --arch hat_s  # HAT-S end to end only
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


def _time_alternating(sessions: dict, feed: dict, runs: int, warmup: int) -> tuple[dict, dict]:
    """Each session run ``warmup`` times, then ``runs`` times in turn (run by run): (outputs, times)."""
    outs = {name: s.run(None, feed)[0] for name, s in sessions.items()}
    for _ in range(warmup):
        for s in sessions.values():
            s.run(None, feed)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, s in sessions.items():  # alternate run by run
            t0 = time.perf_counter()
            s.run(None, feed)
            times[name].append(time.perf_counter() - t0)
    return outs, times


def bench_linear(k: int, m: int, threads: int, runs: int, warmup: int) -> dict:
    from scales_edge.runtime import make_session

    models = linear_models(k, m)
    # Taking turns: no session may keep spinning threads (see scales_edge.runtime.bench.benchmark).
    sessions = {name: make_session(proto, threads=threads, spin=False) for name, proto in models.items()}
    x = np.random.default_rng(1).standard_normal((1, TOKENS, k)).astype(np.float32)
    outs, times = _time_alternating(sessions, {"input": x}, runs, warmup)
    # the binary op and its FP32-signs equivalent compute the same numbers (exact +-1 sums)
    agree = float(np.abs(outs["binary"] - outs["fp32-signs"]).max())
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


#: SwinIR-light's linear layers with the work of their block: (name, K, M, LayerNorm before,
#: activation, residual after).
BLOCK_LAYERS = (
    ("qkv", 60, 180, True, "none", False),
    ("proj", 60, 60, False, "none", True),
    ("fc1", 60, 120, True, "gelu", False),
    ("fc2", 120, 60, False, "none", True),
)


def block_layer_models(k: int, m: int, norm: bool, act: str, residual: bool, seed: int = 0) -> dict[str, onnx.ModelProto]:
    """One linear layer with its block's work over ``[1, TOKENS, k]`` (+ a residual input): the
    fused ``ScalesLinear`` (SCALES: spatial re-scaling too) and the FP32 layer as standard ops."""
    from scales_edge.export import DOMAIN, DOMAIN_VERSION

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k)).astype(np.float32) * 0.1
    vec = lambda n, sd=0.2: (rng.standard_normal(n) * sd).astype(np.float32)  # noqa: E731
    init = lambda name, arr: numpy_helper.from_array(np.asarray(arr), name)  # noqa: E731
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "tokens", k])
    r = helper.make_tensor_value_info("residual", TensorProto.FLOAT, [1, "tokens", m])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "tokens", m])
    ins = [x] + ([r] if residual else [])
    nw, nb, bias = 1 + vec(k), vec(k), vec(m, 0.1)

    names = ["input", "beta", "packed", "scale", "bias", "sw", "sb", "residual" if residual else ""]
    names += ["nw", "nb"] if norm else []
    while names[-1] == "":
        names.pop()
    attrs = {"activation": act} if act != "none" else {}
    fused = helper.make_graph(
        [helper.make_node("ScalesLinear", names, ["output"], domain=DOMAIN, **attrs)], "fused", ins, [y],
        [init("beta", vec(k)), init("packed", _pack_rows(np.where(w >= 0, 1.0, -1.0))),
         init("scale", (np.abs(w).mean(axis=1) * 0.8).astype(np.float32)), init("bias", bias),
         init("sw", vec(k, 0.3)), init("sb", vec(1))] + ([init("nw", nw), init("nb", nb)] if norm else []),
    )
    nodes, cur = [], "input"
    if norm:
        nodes.append(helper.make_node("LayerNormalization", ["input", "nw", "nb"], ["normed"], axis=-1))
        cur = "normed"
    nodes += [helper.make_node("MatMul", [cur, "wt"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["lin"])]
    cur = "lin"
    if act == "gelu":  # as the exporter writes nn.GELU (ORT fuses it into one Gelu)
        nodes += [helper.make_node("Div", [cur, "sqrt2"], ["g0"]), helper.make_node("Erf", ["g0"], ["g1"]),
                  helper.make_node("Add", ["g1", "one"], ["g2"]), helper.make_node("Mul", [cur, "g2"], ["g3"]),
                  helper.make_node("Mul", ["g3", "half"], ["act"])]
        cur = "act"
    if residual:
        nodes.append(helper.make_node("Add", [cur, "residual"], ["res"]))
        cur = "res"
    nodes[-1].output[0] = "output"
    consts = [init("wt", np.ascontiguousarray(w.T)), init("bias", bias)]
    if act == "gelu":
        consts += [init("sqrt2", np.float32(np.sqrt(2))), init("one", np.float32(1)), init("half", np.float32(0.5))]
    fp32 = helper.make_graph(nodes, "fp32", ins, [y], consts + ([init("nw", nw), init("nb", nb)] if norm else []))
    opset = [helper.make_opsetid("", 17)]
    return {
        "fused": helper.make_model(fused, opset_imports=opset + [helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]),
        "fp32": helper.make_model(fp32, opset_imports=opset),
    }


def bench_block_layer(name: str, threads: int, runs: int, warmup: int) -> dict:
    """:data:`BLOCK_LAYERS` ``name``: the fused ScalesLinear against the FP32 layer and block work."""
    from scales_edge.runtime import make_session

    _, k, m, norm, act, residual = next(layer for layer in BLOCK_LAYERS if layer[0] == name)
    models = block_layer_models(k, m, norm, act, residual)
    sessions = {n: make_session(proto, threads=threads, spin=False) for n, proto in models.items()}
    rng = np.random.default_rng(1)
    feed = {"input": rng.standard_normal((1, TOKENS, k)).astype(np.float32)}
    if residual:
        feed["residual"] = rng.standard_normal((1, TOKENS, m)).astype(np.float32)
    _, times = _time_alternating(sessions, feed, runs, warmup)
    med = {n: _median_ms(t) for n, t in times.items()}
    return {
        "layer": name, "tokens": TOKENS, "in_features": k, "out_features": m, "layer_norm": norm,
        "activation": act, "residual": residual, "threads": threads, "runs": runs, "median_ms": med,
        "min_ms": {n: float(min(t) * 1e3) for n, t in times.items()},
        "speedup_vs_fp32": med["fp32"] / med["fused"],
    }


#: Part 2's models: name -> (binary, export keyword arguments).
E2E_MODELS = {
    "scales": ("scales", {}),
    "fp32": ("fp", {}),
    "fp32-unfused": ("fp", {"fuse": False}),
    "scales-unfused": ("scales", {"fuse": False}),
}


def export_e2e_models(arch: str, workdir: Path, names=tuple(E2E_MODELS)) -> dict[str, Path]:
    """Part 2's models of ``arch`` x4 (random weights; thresholds and layer scales randomized, as
    a trained model has them), exported to ``workdir``."""
    import torch

    from scales_edge.export import export_onnx
    from scales_edge.models import build_model
    from scales_edge.nn import ScalesConv2d, ScalesLinear, binary_layers

    built = {}
    for binary in {E2E_MODELS[n][0] for n in names}:
        torch.manual_seed(0)
        model = build_model(arch, scale=4, binary=binary).eval()
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for _, layer in binary_layers(model):
                if isinstance(layer, (ScalesLinear, ScalesConv2d)):
                    layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                    layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
        built[binary] = model
    paths = {}
    for name in names:
        binary, kw = E2E_MODELS[name]
        paths[name] = workdir / f"{arch}_{name}_x4.onnx"
        export_onnx(built[binary], paths[name], **kw)
    return paths


def bench_end_to_end(threads: int, runs: int, warmup: int, size: tuple[int, int], workdir: Path,
                     arch: str = "swinir_light", names=tuple(E2E_MODELS), profile: bool = True) -> dict:
    from scales_edge.runtime.bench import benchmark
    from scales_edge.runtime.profiling import LAYOUT, profile_model

    paths = export_e2e_models(arch, workdir, names)
    results = benchmark(list(paths.values()), size=size, threads=threads, runs=runs, warmup=warmup)
    out = {name: r.to_dict() for name, r in zip(paths, results)}
    med = {name: out[name]["median_ms"] for name in paths}
    res = {
        "arch": arch,
        "scale": 4,
        "input_hw": list(size),
        "threads": threads,
        "runs": runs,
        "models": out,
        "speedup": {f"scales_vs_{n}": med[n] / med["scales"] for n in paths if n != "scales"},
    }
    if threads == 1:  # the same ratios of the runs' CPU time (less sensitive to a busy machine)
        cpu = {name: out[name]["cpu_median_ms"] for name in paths}
        res["cpu_speedup"] = {f"scales_vs_{n}": cpu[n] / cpu["scales"] for n in paths if n != "scales"}
    if profile:  # the SCALES model alone, in its own profiled session (not the timed runs)
        x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
        prof = profile_model(paths["scales"], {"input": x}, threads, runs=2, warmup=1).to_dict()
        res["scales_profile"] = prof
        res["scales_layout_share"] = next(g["share"] for g in prof["by_group"] if g["group"] == LAYOUT)
    return res


def _machine() -> dict:
    from scales_edge.runtime.bench import machine_info

    info = machine_info()
    info["loadavg_at_start"] = list(os.getloadavg())
    info["kernel_path"] = os.environ.get("SCALES_EDGE_KERNEL", "auto")
    return info


def print_e2e(r: dict) -> None:
    h, w = r["input_hw"]
    parts = [f"{n} {v['median_ms']:.0f} ms ({v['file_bytes'] / 1e6:.2f} MB)" for n, v in r["models"].items()]
    print(f"{r['arch']} x4 {w}x{h} -> {4 * w}x{4 * h}, {r['threads']} thread(s): " + ", ".join(parts))
    print("  SCALES speed-up: " + ", ".join(f"{k[len('scales_vs_'):]} {v:.2f}x" for k, v in r["speedup"].items())
          + (f"; layout ops {r['scales_layout_share']:.1%} of SCALES' kernel time" if "scales_layout_share" in r else ""))
    if "cpu_speedup" in r:
        print("  in CPU time: " + ", ".join(f"{k[len('scales_vs_'):]} {v:.2f}x" for k, v in r["cpu_speedup"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per model (op level)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = every core")
    ap.add_argument("--skip-e2e", action="store_true", help="op level only")
    ap.add_argument("--skip-op", action="store_true", help="end to end only")
    ap.add_argument("--arch", default="swinir_light", choices=("swinir_light", "hat_s"), help="end-to-end model")
    ap.add_argument("--e2e-runs", type=int, default=5)
    ap.add_argument("--e2e-warmup", type=int, default=1)
    ap.add_argument("--e2e-threads", default="1", help="comma list of thread counts for the end-to-end part")
    ap.add_argument("--e2e-models", default=",".join(E2E_MODELS), help=f"comma list of {', '.join(E2E_MODELS)}")
    ap.add_argument("--size", default="180x320", help="end-to-end LR input HxW")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    def thread_list(text: str) -> list[int]:
        return [os.cpu_count() or 1 if t == "all" else int(t) for t in text.split(",")]

    names = [n.strip() for n in args.e2e_models.split(",") if n.strip()]
    if "scales" not in names or set(names) - set(E2E_MODELS):
        ap.error(f"--e2e-models must include scales and name only {', '.join(E2E_MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    print(f"machine: {machine['cpu']} ({machine['cores']} cores, {', '.join(machine['cpu_flags'])}), "
          f"ORT {machine['onnxruntime']}, load average {machine['loadavg_at_start'][0]:.2f}")

    op_results, block_results = [], []
    for threads in [] if args.skip_op else dict.fromkeys(thread_list(args.threads)):
        for k, m in SHAPES:
            r = bench_linear(k, m, threads, args.runs, args.warmup)
            op_results.append(r)
            md = r["median_ms"]
            print(f"linear {k}->{m} x {TOKENS} tokens, {threads} thread(s): BinaryLinear {md['binary']:.2f} ms, "
                  f"FP32 MatMul+Add {md['fp32']:.2f} ms ({r['speedup_vs_fp32_matmul']:.1f}x), "
                  f"FP32 +-1 MatMul {md['fp32-signs']:.2f} ms ({r['speedup_vs_fp32_signs']:.1f}x)")
        for layer in BLOCK_LAYERS:
            r = bench_block_layer(layer[0], threads, args.runs, args.warmup)
            block_results.append(r)
            md = r["median_ms"]
            print(f"{r['layer']} {r['in_features']}->{r['out_features']} with its block's work, {threads} thread(s): "
                  f"ScalesLinear {md['fused']:.2f} ms, FP32 ops {md['fp32']:.2f} ms ({r['speedup_vs_fp32']:.1f}x)")
    if op_results:
        payload = {"schema": "scales-edge.bench-binary-linear/2", "machine": machine, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "results": op_results, "block_layers": block_results}
        atomic_write_text(args.out / "binary_linear.json", json.dumps(payload, indent=2))
        print(f"wrote {args.out / 'binary_linear.json'}")

    if not args.skip_e2e:
        h, w = (int(v) for v in args.size.lower().split("x"))
        e2e = []
        with tempfile.TemporaryDirectory() as tmp:
            for threads in dict.fromkeys(thread_list(args.e2e_threads)):
                r = bench_end_to_end(threads, args.e2e_runs, args.e2e_warmup, (h, w), Path(tmp), args.arch, names)
                e2e.append(r)
                print_e2e(r)
        payload = {"schema": "scales-edge.bench-transformer-e2e/2", "machine": machine, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": e2e}
        out = args.out / f"{args.arch}_e2e.json"
        atomic_write_text(out, json.dumps(payload, indent=2))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
