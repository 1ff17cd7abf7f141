"""``scales-edge bench`` and ``scales-edge demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import arch_option, check_output, command, console, fail, load_ckpt, parse_size, set_option, write_json



@command("bench")
def bench_cmd(
    model: Path = typer.Argument(..., help="ONNX model to time."),
    threads: int = typer.Option(1, help="ORT intra-op threads."),
    size: str = typer.Option("320x180", help="Input size WxH (320x180 gives a 720p output at x4)."),
    runs: int = typer.Option(20, help="Timed runs per model."),
    warmup: int = typer.Option(3, help="Untimed warm-up runs per model."),
    baseline: Optional[Path] = typer.Option(None, help="Another ONNX model timed in the same process, alternating."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    profile: bool = typer.Option(
        False, "--profile",
        help="Then run each model again (warm-up + runs) in an ORT-profiled session and print the kernel "
        "time per op type and per group: binary ops, binary-layer FP branches, FP head/tail, layout "
        "(JSON: a \"profile\" key per result). The timed runs are not profiled.",
    ),
) -> None:
    """Latency of a model in ONNX Runtime: median/p10/p90/min, megapixels/s, peak RSS, file size.

    Example: scales-edge bench model.onnx --threads 1 --baseline model_fp32.onnx

    Example (where the time goes): scales-edge bench model.onnx --size 160x90 --profile
    """
    if json_out:
        check_output(json_out, [model, baseline])
    payload = _bench_table([model] + ([baseline] if baseline else []), parse_size(size), threads, runs, warmup, profile)
    if json_out:
        write_json(json_out, payload)


def _bench_table(models, hw, threads, runs, warmup, profile=False) -> dict:
    from rich.progress import Progress

    from ..runtime.bench import JSON_SCHEMA, benchmark, machine_info, peak_rss_mb

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        results = benchmark(
            models, hw, threads, runs, warmup, profile=profile,
            on_step=lambda d, t: bar.update(task, completed=d, total=t),
        )
    # CPU ms: the median CPU time of the calling thread per run (1 thread: the graph runs on it), which
    # leaves out the time a shared machine kept the process waiting for a core
    table = Table("model", "median ms", "p10", "p90", "min", "CPU ms", "MP/s", "MB on disk")
    for r in results:
        cpu = "-" if r.cpu_median_ms is None else f"{r.cpu_median_ms:.1f}"
        table.add_row(
            Path(r.model).name, f"{r.median_ms:.1f}", f"{r.p10_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.min_ms:.1f}", cpu,
            f"{r.megapixels_per_s:.2f}", f"{r.file_bytes / 1e6:.2f}",
        )
    Console().print(table)
    for r in results:
        if r.kernels:
            typer.echo(f"{Path(r.model).name}: kernel paths: {_paths_summary(r.kernels)}")
    for r in results:
        if r.profile:
            _print_profile(Path(r.model).name, r.profile, r.median_ms)
    payload = {
        "schema": JSON_SCHEMA,
        "machine": machine_info(),
        "peak_rss_mb": peak_rss_mb(),
        "results": [r.to_dict() for r in results],
    }
    if len(results) == 2:
        ratio = results[1].median_ms / results[0].median_ms
        payload["speedup_vs_baseline"] = ratio
        typer.echo(f"{Path(results[0].model).name} is {ratio:.2f}x the speed of {Path(results[1].model).name} (median, same run)")
    typer.echo(f"peak RSS {payload['peak_rss_mb']:.0f} MB")
    return payload


def _paths_summary(kernels: list[dict]) -> str:
    """'ScalesConv2d avx512 x32 (measured 1, cached 31)' from library.kernel_choices() records."""
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for c in kernels:
        how = groups.setdefault((c["op"], c["path"]), {})
        how[c["how"]] = how.get(c["how"], 0) + 1
    return "; ".join(
        f"{op} {path} x{sum(h.values())} ({', '.join(f'{k} {v}' for k, v in sorted(h.items()))})"
        for (op, path), h in sorted(groups.items())
    )


def _print_profile(name: str, prof: dict, median_ms: float) -> None:
    """The per-op-type and per-group tables of one ``Profile.to_dict()``."""
    title = f"{name}: kernel time per run, mean of {prof['runs']} profiled run(s)"
    table = Table("op type", "ms", "share", "nodes", "kernel path", title=title)
    for row in prof["by_op_type"]:
        paths = ", ".join(f"{p} x{n}" for p, n in sorted(row.get("paths", {}).items()))
        table.add_row(row["op_type"], f"{row['ms']:.3f}", f"{row['share']:.1%}", str(row["nodes"]), paths)
    Console().print(table)
    table = Table("group", "ms", "share", "nodes", "largest op types", title=f"{name}: by group")
    for row in prof["by_group"]:
        table.add_row(row["group"], f"{row['ms']:.3f}", f"{row['share']:.1%}", str(row["nodes"]), ", ".join(row["op_types"][:4]))
    table.add_row("all nodes", f"{prof['node_ms']:.3f}", "100.0%", str(sum(r["nodes"] for r in prof["by_group"])), "", style="bold")
    Console().print(table)
    typer.echo(
        f"{name}: {prof['node_ms']:.2f} ms in kernels per profiled run; the profiled runs took "
        f"{prof['wall_median_ms']:.2f} ms (median), {prof['outside_nodes_ms']:.2f} ms outside the kernels "
        f"(ORT scheduling, allocation, profiling); the timed runs' median is {median_ms:.2f} ms"
    )


@command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("scales-edge-demo"), "--out", help="Folder for the models, images and summary.json."),
    threads: int = typer.Option(1, help="ORT intra-op threads for parity, quality and latency."),
    runs: int = typer.Option(10, help="Timed runs per model in the latency comparison."),
    ckpt: Optional[Path] = typer.Option(None, help="Use this checkpoint instead of the bundled demo model (needs PyTorch)."),
    arch: Optional[str] = arch_option(),
    set_: list[str] = set_option(),
    prebuilt: Optional[bool] = typer.Option(
        None, "--prebuilt/--export", help="Run the shipped export of the bundled model (parity against the numpy reference of "
        "the ops) instead of exporting it (parity against PyTorch). Default: --export when PyTorch is installed.",
        show_default=False,
    ),
) -> None:
    """The main job on the bundled demo model: export -> parity -> quality -> latency, one summary.

    Without PyTorch (the runtime install) the demo runs the prebuilt export of the bundled model and checks
    its parity against the numpy reference of the scales_edge ops.

    Example: scales-edge demo --out scales-edge-demo
    """
    from ..demo import run_demo

    if ckpt is None and (arch or set_):
        fail("--arch and --set describe the checkpoint given with --ckpt; the bundled demo model names its own")
    s = run_demo(out, ckpt, threads, runs, log=lambda m: typer.echo(m, err=True), prebuilt=prebuilt,
                 loader=lambda p: load_ckpt(p, arch, set_))
    p, quality, b = s["parity"], s["quality"], s["bench"]
    res = {Path(r["model"]).name: r for r in b["results"]}
    table = Table("step", "result", title=f"scales-edge demo ({s['config']['arch']} x{s['config']['scale']}, "
                  f"{s['config']['num_feat']} channels, {s['config']['binary']}{', prebuilt' if s['prebuilt'] else ''})")
    scope = s.get("binary_scope")
    what = {"body+upsampler": "every conv but the first and the last (the paper's scope)",
            "body": "the residual body; head, upsampler and HR convs FP32"}.get(scope, "")
    table.add_row("binarized", f"binary_scope={scope}: {what}" if what else f"binary_scope={scope}")
    against = "PyTorch" if p["against"] == "PyTorch" else "numpy reference"
    table.add_row(f"parity (ORT vs {against})", f"{'PASS' if p['passed'] else 'FAIL'}: min PSNR {_db(p['min_psnr_db'])} dB, "
                  f"max |err| {p['max_abs_error']:.1e}" + (f", sign flips {p['sign_flip_share']:.1e}" if against == "PyTorch" else "")
                  + (f"; {_db(p['min_synced_psnr_db'])} dB with the signs synchronized (rounding flips cascade through "
                     "binary layers: `scales-edge validate` explains)" if p.get("min_synced_psnr_db") is not None
                     and not p.get("passed_plain", True) else ""))
    if quality:
        q = quality["mean"]
        table.add_row("quality, held-out photos", f"PSNR {q['psnr']:.2f} dB / SSIM {q['ssim']:.4f}  "
                      f"(bicubic {q['bicubic_psnr']:.2f} / {q['bicubic_ssim']:.4f})")
    else:
        table.add_row("quality, held-out photos", f"skipped: {s['quality_skipped']}")
    for name, r in res.items():
        table.add_row(f"latency {name}", f"median {r['median_ms']:.1f} ms (p10 {r['p10_ms']:.1f}, p90 {r['p90_ms']:.1f}), {r['file_bytes'] / 1e6:.2f} MB")
    table.add_row("binary vs FP32 reference", f"{b['speedup_vs_fp32_reference']:.2f}x faster (same run, {threads} thread(s))")
    table.add_row("outputs", f"{out}/ (summary.json{', images/*_compare.png' if quality else ''})")
    Console().print(table)
    typer.echo(f"demo finished in {s['seconds']:.0f} s")
    if not p["passed"]:
        raise typer.Exit(1)


def _db(v) -> str:
    return v if isinstance(v, str) else f"{v:.1f}"
