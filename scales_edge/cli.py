"""The ``scales-edge`` command line (Typer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import ScalesEdgeError

app = typer.Typer(
    name="scales-edge",
    help="Deploy SCALES binary super-resolution networks: train, export to ONNX, validate, benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scales-edge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def fail(message: str) -> None:
    """Print one line saying what is wrong and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ScalesEdgeError as exc:
        if _state["debug"]:
            raise
        fail(str(exc))
    except (FileNotFoundError, ValueError) as exc:
        if _state["debug"]:
            raise
        fail(str(exc))


def _parse_kv(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, true/false), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            fail(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@app.command("archs")
def archs_cmd() -> None:
    """List the architectures of the model zoo.

    Example: scales-edge archs
    """
    from .models import get_arch, list_archs

    table = Table("arch", "family", "binarizations", "description")
    for name in list_archs():
        e = get_arch(name)
        table.add_row(name, e.family, ", ".join(e.binaries), e.description)
    Console().print(table)


@app.command("train")
def train_cmd(
    train_dir: Path = typer.Argument(..., help="Folder of HR training images (DIV2K style)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: latest.pth (resumable) and model.pth."),
    arch: str = typer.Option("srresnet", help="Architecture (see `scales-edge archs`)."),
    scale: int = typer.Option(4, help="Upscaling factor: 2, 3 or 4."),
    binary: str = typer.Option("scales", help="Body binarization: scales, e2fif, bibert or fp."),
    num_feat: Optional[int] = typer.Option(None, help="Channel width (the arch's default if unset)."),
    num_block: Optional[int] = typer.Option(None, help="Number of body blocks (the arch's default if unset)."),
    set_: list[str] = typer.Option([], "--set", help="Other build options, key=value (e.g. spatial=false)."),
    val_dir: Optional[Path] = typer.Option(None, help="Folder of HR validation images."),
    iters: int = typer.Option(1000, help="Total training iterations."),
    batch_size: int = typer.Option(16, help="Patches per iteration (per process)."),
    patch_size: int = typer.Option(48, help="LR patch side in pixels."),
    lr: float = typer.Option(2e-4, help="Adam learning rate."),
    lr_step: int = typer.Option(200_000, help="Halve the learning rate every this many iterations."),
    val_every: int = typer.Option(500, help="Validate every this many iterations."),
    save_every: int = typer.Option(500, help="Write latest.pth every this many iterations."),
    repeat: int = typer.Option(100, help="Patches per image per pass over the data."),
    workers: int = typer.Option(0, help="DataLoader worker processes."),
    threads: Optional[int] = typer.Option(None, help="torch threads per process."),
    seed: int = typer.Option(0, help="Random seed."),
    resume: bool = typer.Option(True, help="Resume from OUT/latest.pth when it exists."),
) -> None:
    """Train a model on a folder of HR images; resumable; multi-process with torchrun.

    Example: scales-edge train DIV2K_train_HR --out runs/srresnet_x4 --scale 4 --iters 300000

    Example (2 processes): torchrun --nproc_per_node 2 -m scales_edge train DIR --out runs/x
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .training import TrainConfig, train

    model_kw: dict[str, Any] = {"scale": scale, "binary": binary, **_parse_kv(set_)}
    if num_feat is not None:
        model_kw["num_feat"] = num_feat
    if num_block is not None:
        model_kw["num_block"] = num_block
    cfg = TrainConfig(
        arch=arch,
        train_dir=str(train_dir),
        out_dir=str(out),
        model=model_kw,
        val_dir=str(val_dir) if val_dir else None,
        patch_size=patch_size,
        batch_size=batch_size,
        iters=iters,
        lr=lr,
        lr_step=lr_step,
        val_every=val_every,
        save_every=save_every,
        repeat=repeat,
        workers=workers,
        threads=threads,
        seed=seed,
        resume=resume,
    )
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("train", total=iters, info="")

        def progress(it: int, total: int, loss: float, val: dict[str, float] | None) -> None:
            info = f"loss {loss:.4f}"
            if val:
                info += f"  val PSNR {val['psnr']:.2f} dB (bicubic {val['bicubic_psnr']:.2f})"
            bar.update(task, completed=it, info=info)

        result = _run(train, cfg, progress)
    if result is not None:
        typer.echo(json.dumps(result))


@app.command("evaluate")
def evaluate_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pth)."),
    images: Path = typer.Option(..., "--images", help="Folder of HR images."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """PSNR/SSIM (Y, BasicSR convention) of a PyTorch checkpoint on HR images, beside bicubic.

    Example: scales-edge evaluate model.pth --images photos/
    """
    from .checkpoints import load_checkpoint
    from .data import list_images
    from .training import evaluate

    model = _run(load_checkpoint, ckpt)
    paths = _run(list_images, images)
    scale = int(model.config["scale"])
    res = _run(evaluate, model, paths, scale)
    table = Table("", "PSNR (dB)", "SSIM")
    table.add_row("bicubic", f"{res['bicubic_psnr']:.2f}", f"{res['bicubic_ssim']:.4f}")
    table.add_row(model.config["arch"], f"{res['psnr']:.2f}", f"{res['ssim']:.4f}")
    Console().print(table)
    if json_out:
        json_out.write_text(json.dumps({"checkpoint": str(ckpt), "images": len(paths), **res}, indent=2))


def _parse_size(text: str) -> tuple[int, int]:
    """``WxH`` → ``(H, W)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        fail(f"a size is WxH in pixels, e.g. 320x180; got {text!r}")
    return h, w


def _load_ckpt(ckpt: Path, arch: Optional[str], set_: list[str]):
    from .checkpoints import load_checkpoint

    return _run(load_checkpoint, ckpt, arch, **_parse_kv(set_))


@app.command("export")
def export_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pth): ours, BasicSR, or a state dict (then give --arch)."),
    output: Path = typer.Argument(..., help="ONNX file to write."),
    arch: Optional[str] = typer.Option(None, help="Architecture, for checkpoints that do not name it."),
    set_: list[str] = typer.Option([], "--set", help="Build options for such checkpoints, key=value (e.g. scale=4)."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Run onnxsim on the exported graph."),
    opset: int = typer.Option(17, help="ONNX opset of the standard ops."),
) -> None:
    """Export a checkpoint to ONNX with binary layers as scales_edge custom ops (bit-packed weights).

    Example: scales-edge export runs/x4/model.pth model.onnx
    """
    from .export import export_onnx

    model = _load_ckpt(ckpt, arch, set_)
    proto = _run(export_onnx, model, output, simplify=simplify, opset=opset)
    n_ops = sum(1 for n in proto.graph.node if n.domain == "scales_edge")
    size = output.stat().st_size
    typer.echo(f"wrote {output} ({size / 1e6:.2f} MB, {n_ops} binary ops, {len(proto.graph.node)} nodes)")


@app.command("validate")
def validate_cmd(
    model: Path = typer.Argument(..., help="Exported ONNX model."),
    ckpt: Path = typer.Option(..., "--ckpt", help="The checkpoint it was exported from."),
    arch: Optional[str] = typer.Option(None, help="Architecture, for checkpoints that do not name it."),
    set_: list[str] = typer.Option([], "--set", help="Build options for such checkpoints, key=value."),
    size: list[str] = typer.Option([], "--size", help="Input size WxH (repeatable); default 23x17, 64x64, 320x180."),
    threads: Optional[int] = typer.Option(None, help="ORT intra-op threads."),
    threshold: float = typer.Option(60.0, help="Minimum PSNR (dB) between ORT and PyTorch outputs."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON."),
) -> None:
    """Check that ONNX Runtime with our ops computes what PyTorch computes (exit 1 if not).

    Example: scales-edge validate model.onnx --ckpt runs/x4/model.pth --json parity.json
    """
    from .runtime.validate import DEFAULT_SIZES, check_parity, make_inputs

    sizes = [_parse_size(item) for item in size]
    torch_model = _load_ckpt(ckpt, arch, set_)
    inputs = make_inputs(sizes or DEFAULT_SIZES, channels=int(torch_model.config.get("num_in_ch", 3)))
    report = _run(check_parity, model, torch_model, inputs, threads=threads, threshold_db=threshold)
    table = Table("input", "max |err|", "mean |err|", "PSNR (dB)", "sign flips")
    for c in report.cases:
        table.add_row(
            f"{c.name}", f"{c.max_abs:.2e}", f"{c.mean_abs:.2e}", f"{c.psnr:.2f}", f"{c.sign_flips}/{c.signs}"
        )
    Console().print(table)
    verdict = "PASS" if report.passed else "FAIL"
    typer.echo(
        f"{verdict}: min PSNR {report.min_psnr:.2f} dB (threshold {threshold} dB), max |err| {report.max_abs:.2e}, "
        f"sign flips {report.flip_share:.2e}"
    )
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": str(model), "checkpoint": str(ckpt), **report.to_dict()}, indent=2))
    if not report.passed:
        raise typer.Exit(1)


@app.command("bench")
def bench_cmd(
    model: Path = typer.Argument(..., help="ONNX model to time."),
    threads: int = typer.Option(1, help="ORT intra-op threads."),
    size: str = typer.Option("320x180", help="Input size WxH (320x180 gives a 720p output at x4)."),
    runs: int = typer.Option(20, help="Timed runs per model."),
    warmup: int = typer.Option(3, help="Untimed warm-up runs per model."),
    baseline: Optional[Path] = typer.Option(None, help="Another ONNX model timed in the same process, alternating."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
) -> None:
    """Latency of a model in ONNX Runtime: median/p10/p90/min, megapixels/s, peak RSS, file size.

    Example: scales-edge bench model.onnx --threads 1 --baseline model_fp32.onnx
    """
    payload = _run(_bench_table, [model] + ([baseline] if baseline else []), _parse_size(size), threads, runs, warmup)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2))


def _bench_table(models, hw, threads, runs, warmup) -> dict:
    from rich.progress import Progress

    from .runtime.bench import JSON_SCHEMA, benchmark, machine_info, peak_rss_mb

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("bench", total=len(models) * (runs + warmup))
        results = benchmark(models, hw, threads, runs, warmup, on_step=lambda d, t: bar.update(task, completed=d))
    table = Table("model", "median ms", "p10", "p90", "min", "MP/s", "MB on disk")
    for r in results:
        table.add_row(
            Path(r.model).name, f"{r.median_ms:.1f}", f"{r.p10_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.min_ms:.1f}",
            f"{r.megapixels_per_s:.2f}", f"{r.file_bytes / 1e6:.2f}",
        )
    Console().print(table)
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


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("scales-edge-demo"), "--out", help="Folder for the models, images and summary.json."),
    threads: int = typer.Option(1, help="ORT intra-op threads for parity, quality and latency."),
    runs: int = typer.Option(10, help="Timed runs per model in the latency comparison."),
    ckpt: Optional[Path] = typer.Option(None, help="Use this checkpoint instead of the bundled demo model."),
) -> None:
    """The main job on the bundled demo model: export -> parity -> quality -> latency, one summary.

    Example: scales-edge demo --out scales-edge-demo
    """
    from .demo import run_demo

    s = _run(run_demo, out, ckpt, threads, runs, log=lambda m: typer.echo(m, err=True))
    p, q, b = s["parity"], s["quality"]["mean"], s["bench"]
    res = {Path(r["model"]).name: r for r in b["results"]}
    table = Table("step", "result", title=f"scales-edge demo ({s['config']['arch']} x{s['config']['scale']}, "
                  f"{s['config']['num_feat']} channels, {s['config']['binary']})")
    table.add_row("parity (ORT vs PyTorch)", f"{'PASS' if p['passed'] else 'FAIL'}: min PSNR {p['min_psnr_db'] if isinstance(p['min_psnr_db'], str) else round(p['min_psnr_db'], 1)} dB, "
                  f"max |err| {p['max_abs_error']:.1e}, sign flips {p['sign_flip_share']:.1e}")
    table.add_row("quality, held-out photos", f"PSNR {q['psnr']:.2f} dB / SSIM {q['ssim']:.4f}  "
                  f"(bicubic {q['bicubic_psnr']:.2f} / {q['bicubic_ssim']:.4f})")
    for name, r in res.items():
        table.add_row(f"latency {name}", f"median {r['median_ms']:.1f} ms (p10 {r['p10_ms']:.1f}, p90 {r['p90_ms']:.1f}), {r['file_bytes'] / 1e6:.2f} MB")
    table.add_row("binary vs FP32 reference", f"{b['speedup_vs_fp32_reference']:.2f}x faster (same run, {threads} thread(s))")
    table.add_row("outputs", f"{out}/ (summary.json, images/*_compare.png)")
    Console().print(table)
    typer.echo(f"demo finished in {s['seconds']:.0f} s")
    if not p["passed"]:
        raise typer.Exit(1)


def run() -> None:  # pragma: no cover - console entry point helper
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
