"""Issue 12's models alone: SRResNet in the paper's binarization scope against FP32, all-INT8 and the
body-only scope, and the demo model against its FP32 reference, with each model's peak memory.

First one binary upsampling layer, as version 3's shuffling ScalesConv2d and as version 2's op
followed by DepthToSpace, a nearest Resize of its input and an Add (the skip): what the op's
shuffled store buys (the same values, bit for bit).

(b) of bench_all.py for the groups asked for (default: x2 and x4 at 64 and 40 channels), at 1 thread
and 320x180 input, alternating runs in one process (ratios of medians from the same run); then each
model once more in a fresh process of its own, for its peak RSS (the process's high-water mark after
two runs at 320x180, interpreter and libraries included; ``no_model`` is such a process that loads
no model). With ``--demo CKPT`` the checkpoint is exported as `scales-edge demo`
does (the model and its ``--as fp32-reference`` baseline) and timed the same way: the demo's
"binary vs FP32 reference" line. Writes benchmarks/results/scope.json (``--out``); bench_all.py
runs the same model groups in its full report (docs/benchmarks.md).

    python benchmarks/bench_scope.py [--runs 5] [--groups x4 x4_40ch] [--demo scales_edge/assets/demo_srresnet_x4.pth]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_all  # noqa: E402  (model_files, bench_models, MODEL_GROUPS, SIZE)

from scales_edge.runtime.bench import benchmark, machine_info  # noqa: E402

#: Peak RSS of one model in a fresh process: make the session (our default options), run twice.
#: VmHWM (the high-water mark of this process image's memory), not getrusage's ru_maxrss, which
#: after fork + exec still holds the parent's peak.
_RSS_CHILD = """
import sys
import numpy as np
from scales_edge.runtime import make_session

def hwm_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

if sys.argv[1] != "-":
    sess = make_session(sys.argv[1], threads=1)
    x = np.random.default_rng(0).random((1, 3, int(sys.argv[2]), int(sys.argv[3])), dtype=np.float32)
    for _ in range(2):
        sess.run(None, {sess.get_inputs()[0].name: x})
print(hwm_mb())
"""


def peak_rss_mb(model: Path | None, size: tuple[int, int] = bench_all.SIZE) -> float:
    """Peak RSS (MB) of a fresh process that runs ``model`` twice at ``size`` (None: loads nothing)."""
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(model) if model else "-", str(size[0]), str(size[1])],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.split()[0])


def upsampler_layer_files(d: Path, c: int = 40, r: int = 2, h: int = 360, w: int = 640) -> dict[str, Path]:
    """One binary upsampling layer (``c -> r*r*c``, shuffle, repeated-input skip, spatial scale; at
    x4 SRResNet's second step, ``upconv2``, reads a 640x360 map) as version 3's one op, and as
    version 2's op followed by the standard ops it replaces (``DepthToSpace``, a nearest ``Resize``
    of the input, ``Add``): what writing the shuffled output from the op buys."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from scales_edge.runtime import reference as ref

    rng = np.random.default_rng(0)
    m = c * r * r
    p = {
        "beta": rng.uniform(-0.3, 0.3, c).astype(np.float32),
        "W": ref.pack_bits(np.where(rng.random((m, c, 3, 3)) < 0.5, 1, -1).astype(np.int8), axis=1),
        "scale": rng.uniform(0.01, 0.2, m).astype(np.float32),
        "bias": rng.uniform(-1, 1, m).astype(np.float32),
        "spatial_weight": rng.normal(0, 0.3, c).astype(np.float32),
        "spatial_bias": rng.normal(0, 0.5, 1).astype(np.float32),
    }
    k33 = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}

    def save(nodes, version, path, extra=()):
        graph = helper.make_graph(
            nodes, "upsampler", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, "H", "W"])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, n) for n, v in p.items()] + list(extra))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", version)])
        model.ir_version = 8
        onnx.save(model, path)
        return path

    ins = ["input", *p]
    files = {
        "shuffling_op_v3": save([helper.make_node("ScalesConv2d", ins, ["output"], domain="scales_edge", skip=1,
                                                  pixel_shuffle=r, **k33)], 3, d / "up_v3.onnx"),
        "op_v2_then_standard_ops": save([
            helper.make_node("ScalesConv2d", ins, ["z"], domain="scales_edge", **k33),
            helper.make_node("DepthToSpace", ["z"], ["shuffled"], blocksize=r, mode="CRD"),
            helper.make_node("Resize", ["input", "", "up"], ["repeated"], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
            helper.make_node("Add", ["shuffled", "repeated"], ["output"]),
        ], 2, d / "up_v2.onnx", [numpy_helper.from_array(np.array([1, 1, r, r], np.float32), "up")]),
    }
    return files, (h, w)


def demo_files(d: Path, ckpt: Path) -> dict[str, Path]:
    from scales_edge.checkpoints import load_checkpoint
    from scales_edge.export import export_onnx

    model = load_checkpoint(ckpt)
    files = {"demo": d / "demo.onnx", "demo_fp32_reference": d / "demo_fp32ref.onnx"}
    export_onnx(model, files["demo"])
    export_onnx(model, files["demo_fp32_reference"], binary_as="fp32-reference")
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--groups", nargs="+", default=list(bench_all.MODEL_GROUPS), choices=list(bench_all.MODEL_GROUPS))
    ap.add_argument("--demo", type=Path, help="also time this checkpoint against its FP32 reference, as the demo does")
    ap.add_argument("--no-rss", action="store_true", help="skip the per-model peak-RSS processes")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scope.json")
    args = ap.parse_args()
    results: dict = {
        "schema": "scales-edge.bench-scope/1",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "threads": args.threads,
        "runs": args.runs,
        "size": list(bench_all.SIZE),
        "models": {},
        "peak_rss_mb": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        layer, size = upsampler_layer_files(d)
        print(f"upsampler layer (40 -> 160 channels, shuffle x2) on a {size[1]}x{size[0]} input, {args.threads} thread(s)")
        res = benchmark(list(layer.values()), size=size, threads=args.threads, runs=args.runs * 2, warmup=2)
        results["upsampler_layer"] = {name: r.to_dict() for name, r in zip(layer, res)}
        for name, r in results["upsampler_layer"].items():
            print(f"  {name:24s} {r['median_ms']:9.1f} ms")
        groups = {key: bench_all.model_files(d, *bench_all.MODEL_GROUPS[key]) for key in args.groups}
        if args.demo:
            groups["demo"] = demo_files(d, args.demo)
        for key, files in groups.items():
            print(f"{key}, {args.threads} thread(s), {args.runs} runs", flush=True)
            rows = bench_all.bench_models(files, args.runs, args.threads)
            results["models"][key] = rows
            base = rows["fp32" if "fp32" in rows else "demo_fp32_reference"]["median_ms"]
            for name, r in rows.items():
                print(f"  {name:24s} {r['median_ms']:9.1f} ms  {base / r['median_ms']:6.2f}x  {r['file_bytes'] / 1e6:6.2f} MB")
        if not args.no_rss:
            results["peak_rss_mb"]["no_model"] = peak_rss_mb(None)
            print(f"peak RSS, one model per process (a process that loads none: {results['peak_rss_mb']['no_model']:.0f} MB)")
            for key, files in groups.items():
                results["peak_rss_mb"][key] = {name: peak_rss_mb(p) for name, p in files.items()}
                print("  " + key + ": " + ", ".join(f"{n} {v:.0f} MB" for n, v in results["peak_rss_mb"][key].items()))
    m = results["models"]
    print("\nissue 12 targets (1 thread, 320x180, ratios of medians from the same run):")
    for key, width, goal in (("x4", 64, 7.0), ("x4_40ch", 40, 10.0)):
        if key in m:
            r = bench_all._ratio(m[key], "paper_scope", "fp32")
            r8 = bench_all._ratio(m[key], "paper_scope", "all_int8")
            print(f"  x4 {width} ch: paper scope {r:.2f}x FP32 (target {goal:g}x), {r8:.2f}x all-INT8 (target 3x)")
    if "demo" in m:
        r = bench_all._ratio(m["demo"], "demo", "demo_fp32_reference")
        print(f"  demo: binary vs FP32 reference {r:.2f}x (target 8x)")
        if "demo" in results["peak_rss_mb"]:
            print(f"  demo: peak RSS {results['peak_rss_mb']['demo']['demo']:.0f} MB (target 1024 MB)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
