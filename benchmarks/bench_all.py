"""The speed benchmark of issue 4 in one run: a layer and whole models, our code beside its baselines.

(a) One 3x3 conv C->C on 1xCx180x320 for C = 64, 40 (the demo's width) and 128 (benchmarks/bench_layer.py):
    kernel_packed_<path>  our binary convolution on bit-packed input (C API, int32 out), per kernel path
                          and "auto" (the measured choice)
    binary_op             scales_edge.BinaryConv2d in ORT, float in/out (binarize+pack inside)
    scales_conv           the fused ScalesConv2d: float in/out, spatial + channel re-scaling, skip,
                          path measured per op; scales_conv[<path>] the same with each path forced
    scales_conv_v1        the same layer as BinaryConv2d + standard ops (op-domain version 1)
    fp32_conv             ORT FP32 Conv                     int8_qlinear   ORT QLinearConv, uint8 in/out
    int8_float_io         Quantize -> QLinearConv -> Dequantize (float in/out)
    copy_floor            ORT Neg on the layer's input: a memcpy of the layer's bytes (read + write)
    openvino_*            OpenVINO BinaryConvolution (kernel-only from its profiler, and float in/out),
                          when the optional `openvino` package is installed (pip install .[bench])
(c) BinaryLinear over 57,600 tokens (one per pixel of a 320x180 image), 60->60 and 60->120, against
    ORT's FP32 MatMul, the same math as FP32 ops, and a copy floor (an elementwise op reading the
    input and writing an output of the same size: what any float-in/float-out op must move);
    SwinIR-light's four linears with the work of their block (LayerNorm, GELU, residual) as one
    ScalesLinear against the FP32 layer and block work as ORT ops; SwinIR-light x4 end to end
    (1 thread; benchmarks/bench_binary_linear.py): SCALES against the FP32 model exported with the
    same attention fusion (WindowAttention) and as before version 3 (standard ops), with the
    layout share of SCALES' kernel time from a profiled run.
(b) SRResNet (16 blocks; random weights: speed does not depend on them) at 320x180 input, x2 and x4,
    64 and 40 channels: SCALES in the paper's binarization scope (every conv but the first and the
    last binary, issue 12; FP32 or INT8 first/last conv) and in the body-only scope with an FP32 or
    INT8 tail, the FP32 network, the all-INT8 network (ORT static QDQ quantization calibrated on
    photos) and, at 64 channels, the FP32 head+tail-only floor (no body: what any binary body of
    the body-only scope costs at least).
Every group is timed in one process with alternating runs (scales_edge.runtime.bench.benchmark) at 1
thread and at all cores; ratios are of medians from the same run. Writes benchmarks/results/all.json
and regenerates docs/benchmarks.md (CPU, flags, versions, tables, the issue's targets beside them).

    python benchmarks/bench_all.py [--runs 15] [--model-runs 5] [--threads 1 2] [--no-models]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import onnx
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # _opslib: the ctypes wrapper of the library's C ABI

import bench_binary_linear  # noqa: E402  (the BinaryLinear models)
import bench_layer  # noqa: E402  (the layer models)

from scales_edge.export import export_onnx  # noqa: E402
from scales_edge.fileio import atomic_write_text  # noqa: E402
from scales_edge.models import build_model  # noqa: E402
from scales_edge.runtime import get_library_path  # noqa: E402
from scales_edge.runtime.bench import benchmark, machine_info  # noqa: E402

C, H, W = bench_layer.C, bench_layer.H, bench_layer.W
SIZE = (180, 320)  # model input H, W: a 720p output at x4


# --------------------------------------------------------------------------- (a) the layer


LAYER_CHANNELS = bench_layer.CHANNELS  # 64 (the paper's width) first: the targets are for it


def bench_layer_group(d: Path, c: int, runs: int, threads: int) -> dict:
    return bench_layer.layer_group(d, c, threads, runs)


# --------------------------------------------------------------------------- (b) models


def _random_scales_params(model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("beta"):
                p.uniform_(-0.1, 0.1)


def _all_int8(fp32_path: Path, out: Path, scale: int) -> Path:
    """FP32 SRResNet quantized whole with ORT static QDQ (per-channel int8 weights, uint8
    activations, MinMax on the same photo crops as our INT8 tail)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from scales_edge.export.quantize import calibration_crops, calibration_photos

    crops = list(calibration_crops(calibration_photos(), scale))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(crops)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"input": x}

    quantize_static(str(fp32_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


#: SRResNet groups of (b): results key -> (scale, channels)
MODEL_GROUPS = {"x2": (2, 64), "x4": (4, 64), "x2_40ch": (2, 40), "x4_40ch": (4, 40)}


def model_files(d: Path, scale: int, width: int = 64) -> dict[str, Path]:
    from scales_edge.export.quantize import quantize_head_tail

    files: dict[str, Path] = {}
    tag = f"x{scale}_{width}"
    for scope, name in (("body+upsampler", "paper_scope"), ("body", "scales")):
        scales = build_model("srresnet", scale=scale, num_feat=width, num_block=16, binary="scales",
                             binary_scope=scope).eval()
        _random_scales_params(scales)
        fp_name = f"{name}_fp32_tail" if scope == "body" else name
        files[fp_name] = d / f"{name}_{tag}.onnx"
        proto = export_onnx(scales, files[fp_name])
        q, _ = quantize_head_tail(proto, scales)
        files[f"{name}_int8_tail"] = d / f"{name}_{tag}_int8tail.onnx"
        onnx.save(q, files[f"{name}_int8_tail"])
    fp32 = build_model("srresnet", scale=scale, num_feat=width, num_block=16, binary="fp").eval()
    files["fp32"] = d / f"fp32_{tag}.onnx"
    export_onnx(fp32, files["fp32"])
    if width == 64:
        floor = build_model("srresnet", scale=scale, num_feat=64, num_block=0, binary="fp").eval()
        files["fp32_head_tail_floor"] = d / f"floor_{tag}.onnx"
        export_onnx(floor, files["fp32_head_tail_floor"])
    files["all_int8"] = _all_int8(files["fp32"], d / f"int8_{tag}.onnx", scale)
    return files


def bench_models(files: dict[str, Path], runs: int, threads: int) -> dict:
    res = benchmark(list(files.values()), size=SIZE, threads=threads, runs=runs, warmup=1)
    return {name: kernel_counts(r.to_dict()) for name, r in zip(files, res)}


def kernel_counts(row: dict) -> dict:
    """A model's row with its per-op kernel choices (``scales-edge bench --json`` lists each op)
    counted per op type and path, e.g. {"ScalesConv2d avx512": 35}: the whole lists of 28 models
    would be most of the results file."""
    counts: dict[str, int] = {}
    for k in row.get("kernels") or []:
        key = f"{k['op']} {k['path']}"
        counts[key] = counts.get(key, 0) + 1
    return {**row, "kernels": counts}


# --------------------------------------------------------------------------- (c) BinaryLinear


def bench_linear_group(runs: int, threads: int) -> dict:
    out = {}
    for k, m in ((60, 60), (60, 120)):
        r = bench_binary_linear.bench_linear(k, m, threads, runs, warmup=3)
        r["copy_floor_ms"] = r["median_ms"]["copy-floor"]  # timed in the same alternation
        out[f"{k}->{m}"] = r
    for layer in bench_binary_linear.BLOCK_LAYERS:
        out[f"block {layer[0]}"] = bench_binary_linear.bench_block_layer(layer[0], threads, runs, warmup=3)
    return out


# --------------------------------------------------------------------------- report


def _ratio(rows: dict, a: str, b: str) -> float | None:
    if a in rows and b in rows:
        return rows[b]["median_ms"] / rows[a]["median_ms"]
    return None


def _path_rows(rows: dict, prefix: str) -> dict[str, dict]:
    """{path: row} of the rows '<prefix>[path]' (forced paths)."""
    return {k[len(prefix) + 1:-1]: v for k, v in rows.items() if k.startswith(prefix + "[") and k.endswith("]")}


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, met?) rows for the issues' targets, from this run's numbers (issue 13's
    first: 3x3 64->64 at 1 thread unless said)."""
    out = []
    layers = results["layer"]
    one = layers.get("64", {}).get("1", {})
    two = layers.get("64", {}).get("2", {})

    def fmt(v, unit="x"):
        return "n/a" if v is None else (f"{v:.2f}{unit}")

    def yes(ok):
        return "yes" if ok else "no"

    # -- issue 13
    kauto = one.get("kernel_packed_auto", {}).get("median_ms")
    out.append(("binary kernel on packed input <= 2.0 ms (AVX-512 VPOPCNTDQ; measured path)",
                fmt(kauto, " ms") + (" (no AVX-512 on this CPU)" if "kernel_packed_avx512" not in one else ""),
                yes(kauto is not None and kauto <= 2.0)))
    if "openvino_kernel_only" in one and kauto is not None:
        ov = one["openvino_kernel_only"]["median_ms"]
        out.append(("binary kernel faster than OpenVINO's BinaryConvolution kernel", f"{kauto:.2f} vs {ov:.2f} ms", yes(kauto < ov)))
    sc = one.get("scales_conv", {}).get("median_ms")
    out.append(("fused ScalesConv2d float in/out <= 4.5 ms", fmt(sc, " ms"), yes(sc is not None and sc <= 4.5)))
    r32 = _ratio(one, "scales_conv", "fp32_conv")
    out.append((">= 9x ORT FP32 Conv (fused layer)", fmt(r32), yes(r32 and r32 >= 9)))
    r8 = _ratio(one, "scales_conv", "int8_qlinear")
    out.append((">= 2.5x ORT INT8 QLinearConv uint8 (fused layer)", fmt(r8), yes(r8 and r8 >= 2.5)))
    if sc is not None and kauto is not None and "copy_floor" in one:
        # The float passes move 3 tensors of the layer's size (pass 1 reads X; pass 2 reads X for
        # the skip and writes Y), the copy floor 2 (reads X, writes a copy): bandwidth ratio =
        # (3 / extra) / (2 / floor), extra = the fused layer's time beyond the packed-input kernel
        # (the float passes, with ORT's per-run overhead).
        extra = sc - kauto
        floor = one["copy_floor"]["median_ms"]
        bw = 1.5 * floor / max(extra, 1e-9)
        out.append(("float passes >= 70% of a copy's bandwidth (3 tensors moved in the fused layer's time beyond "
                    "the packed-input kernel, vs the copy floor's 2)",
                    f"{extra:.2f} ms for 3 vs copy floor {floor:.2f} ms for 2: {bw:.0%}", yes(bw >= 0.7)))
    if sc is not None and "scales_conv" in two:
        s2 = sc / two["scales_conv"]["median_ms"]
        out.append(("2 threads >= 1.8x one thread (fused layer)", fmt(s2), yes(s2 >= 1.8)))
    for c, by_threads in layers.items():
        for th, rows in by_threads.items():
            forced = _path_rows(rows, "scales_conv")
            if "scales_conv" in rows and forced:
                best_path, best = min(((p, v["median_ms"]) for p, v in forced.items()), key=lambda t: t[1])
                auto = rows["scales_conv"]["median_ms"]
                chosen = sorted({k["path"] for k in rows["scales_conv"].get("kernels") or []})
                # Met when the measured choice is the path that ran fastest forced (the same code:
                # any difference in their medians is the machine's noise), else by the medians.
                out.append((f"automatic choice within 5% of the fastest path ({c}->{c}, {th} thread(s))",
                            f"chose {', '.join(chosen) or '?'}; fastest forced: {best_path}; "
                            f"median {auto / best:.2f}x the fastest's",
                            yes(chosen == [best_path] or auto <= 1.05 * best)))
    for shape, r in results.get("linear", {}).get("1", {}).items():
        if "copy_floor_ms" not in r:  # the block layers (issue 17) have no copy floor
            continue
        f = r["median_ms"]["binary"] / r["copy_floor_ms"]
        out.append((f"BinaryLinear {shape} on 57,600 tokens within 1.5x of its copy floor", f"{f:.2f}x", yes(f <= 1.5)))
    if "kernel_packed_avx2" in one:
        ka = one["kernel_packed_avx2"]["median_ms"]
        ov = one.get("openvino_kernel_only", {}).get("median_ms")
        sa = one.get("scales_conv[avx2]", {}).get("median_ms")
        out.append(("AVX2 path (forced on this CPU; indicative for AVX2-only CPUs): kernel faster than OpenVINO's",
                    f"{ka:.2f} vs {fmt(ov, ' ms')} (OpenVINO uses its AVX-512 JIT here)", yes(ov is not None and ka < ov)))
        if sa:
            out.append(("AVX2 path (forced): fused layer >= 6x ORT FP32 and >= 1.5x ORT INT8",
                        f"{one['fp32_conv']['median_ms'] / sa:.2f}x, {one['int8_qlinear']['median_ms'] / sa:.2f}x",
                        yes(one['fp32_conv']['median_ms'] / sa >= 6 and one['int8_qlinear']['median_ms'] / sa >= 1.5)))
    # -- issues 4 and 7
    out.append(("full SCALES conv >= 8x faster than ORT FP32 Conv (issue 4)", fmt(r32), yes(r32 and r32 >= 8)))
    out.append(("full SCALES conv >= 1.5x faster than ORT INT8 QLinearConv u8 (issue 4)", fmt(r8), yes(r8 and r8 >= 1.5)))
    for shape, lr in results.get("linear", {}).get("1", {}).items():
        if "speedup_vs_fp32_matmul" not in lr:
            continue
        sp = lr["speedup_vs_fp32_matmul"]
        out.append((f"BinaryLinear {shape} on 57,600 tokens >= 8x faster than ORT FP32 MatMul (issue 7)",
                    f"{sp:.2f}x (copy floor {lr['median_ms']['fp32'] / lr['copy_floor_ms']:.1f}x)", yes(sp >= 8)))
    e2e = results.get("swinir_light_e2e")
    if e2e and "speedup" in e2e:
        sp = e2e["speedup"]
        fused, before = sp.get("scales_vs_fp32"), sp.get("scales_vs_fp32-unfused")
        out.append(("SwinIR-light-SCALES x4 >= 2x faster than FP32 SwinIR-light x4 with the same attention fusion (issue 17)",
                    fmt(fused), "yes" if fused and fused >= 2 else "no"))
        out.append(("SwinIR-light-SCALES x4 >= 2.5x faster than FP32 SwinIR-light x4 exported with standard ops (issue 17)",
                    fmt(before), "yes" if before and before >= 2.5 else "no"))
        share = e2e.get("scales_layout_share")
        if share is not None:
            out.append(("layout ops <= 5% of SwinIR-light-SCALES' kernel time (issue 17)", f"{share:.1%}",
                        "yes" if share <= 0.05 else "no"))
    m1 = results.get("models", {}).get("1", {})
    x2, x4 = m1.get("x2", {}), m1.get("x4", {})
    if x2:
        f = x2["scales_fp32_tail"]["median_ms"] / x2["fp32_head_tail_floor"]["median_ms"]
        out.append(("SRResNet-SCALES x2 within 1.2x of its FP32 head+tail floor", f"{f:.2f}x the floor", yes(f <= 1.2)))
    if x4:
        rx = _ratio(x4, "scales_int8_tail", "fp32")
        out.append(("x4 with INT8 tail >= 2.5x faster than FP32 SRResNet x4", fmt(rx), yes(rx and rx >= 2.5)))
        rx = _ratio(x4, "scales_int8_tail", "all_int8")
        out.append(("x4 with INT8 tail faster than all-INT8 SRResNet x4", fmt(rx), yes(rx and rx > 1)))
    # issue 12: the paper's binarization scope (every conv but the first and the last binary)
    for key, width, goal in (("x4", 64, 7.0), ("x4_40ch", 40, 10.0)):
        rx = _ratio(m1.get(key, {}), "paper_scope", "fp32")
        if rx is not None:
            out.append((f"SRResNet-SCALES x4 paper scope >= {goal:g}x faster than FP32 SRResNet x4 at {width} ch (issue 12)",
                        fmt(rx), yes(rx >= goal)))
    for key, width in (("x4", 64), ("x4_40ch", 40)):
        rx = _ratio(m1.get(key, {}), "paper_scope", "all_int8")
        if rx is not None:
            out.append((f"SRResNet-SCALES x4 paper scope >= 3x faster than all-INT8 SRResNet x4 at {width} ch (issue 12)",
                        fmt(rx), yes(rx >= 3)))
    return out


def write_doc(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/bench_all.py` (do not edit by hand); raw numbers in",
        "`benchmarks/results/all.json`. Medians of alternating runs in one process; ratios are of medians",
        "from the same run. The machine is shared and noisy: compare rows of one table, not across runs.",
        "Sessions timed in turn do not spin their intra-op threads between runs (`runtime/bench.py`).",
        "",
        f"- date: {results['date']}",
        f"- CPU: {m.get('cpu')} ({m.get('cores')} cores); SIMD flags: {', '.join(m.get('cpu_flags', [])) or 'none'};"
        f" kernel paths here: {', '.join(results['kernel_paths'])}",
        f"- ONNX Runtime {m.get('onnxruntime')}, Python {m.get('python')}, torch {results['versions']['torch']},"
        f" onnx {results['versions']['onnx']}" + (f", OpenVINO {results['versions']['openvino']}" if results['versions'].get('openvino') else ""),
        "",
        "## Targets (issues 13, 12, 4, 7 and 17)",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(results)]
    for c, by_threads in results["layer"].items():
        macs = int(c) * int(c) * 9 * SIZE[0] * SIZE[1] / 1e9
        lines += ["", f"## (a) 3x3 conv {c}->{c} on 1x{c}x{SIZE[0]}x{SIZE[1]} ({macs:.2f} G MACs)", ""]
        for th, rows in by_threads.items():
            base = rows["fp32_conv"]["median_ms"]
            lines += [f"{th} thread(s), {results['runs']} runs:", "",
                      "| model | median ms | min ms | vs ORT FP32 Conv | kernel path |", "| --- | --- | --- | --- | --- |"]
            for name, r in rows.items():
                mn = r.get("min_ms")
                paths = ", ".join(sorted({k["path"] for k in r.get("kernels") or []}))
                lines.append(f"| {name} | {r['median_ms']:.2f} | {'' if mn is None else f'{mn:.2f}'} | "
                             f"{base / r['median_ms']:.2f}x | {paths} |")
            lines.append("")
    lines += [
        "`scales_conv` is the fused layer with the kernel path each op measures for itself (the default);",
        "`scales_conv[P]` forces path P. `copy_floor` reads and writes the layer's floats once (ORT `Neg`).",
        "`kernel_packed_P` is the binary convolution alone on bit-packed input through the library's C test",
        "ABI (int32 accumulators out; `auto` = measured choice); `openvino_kernel_only` is OpenVINO's",
        "BinaryConvolution node time from its profiler (`benchmarks/openvino_layer.py`).",
        "",
    ]
    if results.get("models"):
        lines += ["## (b) SRResNet (16 blocks) at 320x180 input", ""]
        for th, groups in results["models"].items():
            for sc, rows in groups.items():
                base = rows["fp32"]["median_ms"]
                scale, width = MODEL_GROUPS.get(sc, (sc, 64))
                lines += [f"x{scale}, {width} channels, {th} thread(s), {results['model_runs']} runs:", "",
                          "| model | median ms | MB on disk | vs FP32 |", "| --- | --- | --- | --- |"]
                for name, r in rows.items():
                    lines.append(f"| {name} | {r['median_ms']:.0f} | {r['file_bytes'] / 1e6:.2f} | {base / r['median_ms']:.2f}x |")
                lines.append("")
    if results.get("linear"):
        lines += ["## (c) BinaryLinear on 57,600 tokens (issue 7)", ""]
        for th, groups in results["linear"].items():
            lines += [f"{th} thread(s), {results['runs']} runs (median ms):", "",
                      "| shape | BinaryLinear | FP32 MatMul | same math as FP32 ops | copy floor | vs MatMul | MatMul / floor |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for shape, r in groups.items():
                if "speedup_vs_fp32_matmul" not in r:
                    continue
                med = r["median_ms"]
                lines.append(f"| {shape} | {med['binary']:.2f} | {med['fp32']:.2f} | {med['fp32-signs']:.2f} | "
                             f"{r['copy_floor_ms']:.2f} | {r['speedup_vs_fp32_matmul']:.2f}x | {med['fp32'] / r['copy_floor_ms']:.1f}x |")
            lines.append("")
            blocks = [r for r in groups.values() if "speedup_vs_fp32" in r]
            if blocks:
                lines += ["SwinIR-light's linears with their block's work (LayerNorm before qkv and fc1, GELU after fc1,",
                          "the residual after proj and fc2) as one ScalesLinear, against the FP32 layer and the same work",
                          "as ORT ops (median ms):", "",
                          "| layer | ScalesLinear | FP32 ops | speed-up |", "| --- | --- | --- | --- |"]
                for r in blocks:
                    lines.append(f"| {r['layer']} {r['in_features']}->{r['out_features']} | {r['median_ms']['fused']:.2f} | "
                                 f"{r['median_ms']['fp32']:.2f} | {r['speedup_vs_fp32']:.2f}x |")
                lines.append("")
        lines += ["The copy floor is an ORT op that only reads the float input and writes a float output of the",
                  "layer's size (`Neg`; `Concat` of the input with itself for 60->120). A float-in/float-out layer",
                  "moves at least that much memory, so `MatMul / floor` indicates the most a BinaryLinear with float",
                  "activations can gain over FP32 MatMul at these widths (indicative: ORT's copy ops are not a perfect",
                  "copy, so the true bound can be somewhat higher).", ""]
    e2e = results.get("swinir_light_e2e")
    if e2e and "speedup" in e2e:
        base = e2e["models"]["scales"]["median_ms"]
        lines += ["SwinIR-light x4 at 320x180, 1 thread, end to end (`scales`: op-domain version 3; `fp32`: the FP32",
                  "model with the same WindowAttention; `*-unfused`: `export --no-fuse`, standard ops as before",
                  "version 3):", "", "| model | median ms | MB | SCALES speed-up |", "| --- | --- | --- | --- |"]
        for name, r in e2e["models"].items():
            lines.append(f"| {name} | {r['median_ms']:.0f} | {r['file_bytes'] / 1e6:.2f} | {r['median_ms'] / base:.2f}x |")
        if "scales_layout_share" in e2e:
            lines.append(f"\nLayout ops (transposes, reshapes, ...) take {e2e['scales_layout_share']:.1%} of the SCALES model's "
                         "kernel time (a separate profiled run).")
        lines.append("")
    lines += [
        "Model names: `paper_scope` / `paper_scope_int8_tail`: SRResNet-SCALES in the paper's binarization",
        "scope (`binary_scope=\"body+upsampler\"`, the default: every conv but `conv_first` and `conv_last`",
        "binary, the upsamplers as version 3's shuffling `ScalesConv2d`) with those two convs in FP32 or INT8;",
        "`scales_fp32_tail` / `scales_int8_tail`: SRResNet-SCALES with only its body binary",
        "(`binary_scope=\"body\"`, fused `ScalesConv2d` body) with its FP head/tail in FP32 or INT8 (`--tail int8`);",
        "`fp32`: SRResNet with FP32 convs; `fp32_head_tail_floor`: the same without its 16 blocks;",
        "`all_int8`: the FP32 network quantized whole (ORT static QDQ, uint8 activations, int8 per-channel",
        "weights, calibrated on the same photo crops as the INT8 tail).",
        "",
    ]
    atomic_write_text(path, "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="timed runs per layer model")
    ap.add_argument("--model-runs", type=int, default=5, help="timed runs per whole model")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--channels", type=int, nargs="+", default=list(LAYER_CHANNELS),
                    help="channel counts of the layer benchmark (a)")
    ap.add_argument("--no-models", action="store_true", help="skip the SRResNet models (b)")
    ap.add_argument("--no-transformer", action="store_true", help="skip SwinIR-light end to end")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "all.json")
    ap.add_argument("--doc", type=Path, default=HERE.parent / "docs" / "benchmarks.md")
    ap.add_argument("--doc-only", action="store_true", help="only regenerate --doc from the JSON at --out")
    args = ap.parse_args()
    if args.doc_only:
        results = json.loads(args.out.read_text())
        if results.get("schema") == "scales-edge.bench-all/1":  # layer[threads]: the 64->64 layer only
            results["layer"] = {"64": results["layer"]}
        write_doc(results, args.doc)
        print(f"wrote {args.doc}")
        return
    threads = sorted(set(args.threads))
    from _opslib import KernelLib

    versions = {"torch": torch.__version__, "onnx": onnx.__version__, "python": platform.python_version()}
    try:
        import openvino_layer

        if openvino_layer.available():
            versions["openvino"] = openvino_layer.version()
    except ImportError:
        pass
    results: dict = {
        "schema": "scales-edge.bench-all/2",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": versions,
        "kernel_paths": KernelLib(Path(get_library_path())).paths(),
        "runs": args.runs,
        "model_runs": args.model_runs,
        "layer": {},
        "linear": {},
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for c in args.channels:
            results["layer"][str(c)] = {}
            for th in threads:
                print(f"(a) layer {c}->{c}, {th} thread(s)", flush=True)
                rows = bench_layer_group(d, c, args.runs, th)
                results["layer"][str(c)][str(th)] = rows
                for name, r in rows.items():
                    print(f"  {name:26s} {r['median_ms']:9.2f} ms")
        for th in threads:
            print(f"(c) BinaryLinear, {th} thread(s)", flush=True)
            results["linear"][str(th)] = bench_linear_group(args.runs, th)
            for shape, r in results["linear"][str(th)].items():
                print(f"  {shape}: " + ", ".join(f"{n} {v:.2f} ms" for n, v in r["median_ms"].items())
                      + (f", copy floor {r['copy_floor_ms']:.2f} ms" if "copy_floor_ms" in r else ""))
        if not args.no_transformer:
            print("(c) SwinIR-light x4 end to end, 1 thread", flush=True)
            results["swinir_light_e2e"] = bench_binary_linear.bench_end_to_end(1, args.model_runs, 1, SIZE, d)
            for name, r in results["swinir_light_e2e"]["models"].items():
                print(f"  {name:24s} {r['median_ms']:9.1f} ms")
        if not args.no_models:
            files = {key: model_files(d, sc, width) for key, (sc, width) in MODEL_GROUPS.items()}
            for th in threads:
                results["models"][str(th)] = {}
                for key, (sc, width) in MODEL_GROUPS.items():
                    print(f"(b) SRResNet x{sc}, {width} channels, {th} thread(s)", flush=True)
                    rows = bench_models(files[key], args.model_runs, th)
                    results["models"][str(th)][key] = rows
                    for name, r in rows.items():
                        print(f"  {name:24s} {r['median_ms']:9.1f} ms  {r['file_bytes'] / 1e6:6.2f} MB")
    print("\ntargets:")
    for t, v, ok in targets(results):
        print(f"  [{ok:3s}] {t}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2))
    write_doc(results, args.doc)
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
