"""The ``scales-edge`` command line (Typer).

Every command reports a problem with its input (a missing or unreadable file, a non-image, a model
scales-edge did not export, a scale that disagrees with the model, an image too small for it) as
one line ``error: ...`` on stderr and exit code 2; ``scales-edge --debug CMD ...`` shows the
traceback instead. Shell completion: ``scales-edge --install-completion``.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import ScalesEdgeError

app = typer.Typer(
    name="scales-edge",
    help="Deploy SCALES binary super-resolution networks: train, export to ONNX, validate, benchmark, "
    "upscale images, inspect model costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError):
        text = f"missing {text}"
    return (text.splitlines() or [type(exc).__name__])[0]


def command(name: str, **kwargs: Any) -> Callable:
    """``app.command`` whose errors become one line and an exit code (see the module docstring):
    our own errors, OS errors and ``ValueError`` exit 2; anything else is a bug, reported in one
    line with exit code 1 (the traceback with ``--debug``)."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except (typer.Exit, typer.Abort, typer.TyperException):
                raise
            except KeyboardInterrupt:
                typer.echo("error: interrupted", err=True)
                raise typer.Exit(130) from None
            except (ScalesEdgeError, OSError, ValueError) as exc:
                if _state["debug"]:
                    raise
                fail(_one_line(exc))
            except Exception as exc:  # a bug: still one line unless --debug
                if _state["debug"]:
                    raise
                typer.echo(
                    f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
                    "(rerun with --debug for the traceback and report it)",
                    err=True,
                )
                raise typer.Exit(1) from None

        return app.command(name, **kwargs)(wrapper)

    return deco


def _run(fn, *args, **kwargs):
    """Call ``fn`` (errors are handled by :func:`command`; kept for the commands' readability)."""
    return fn(*args, **kwargs)


def _progress(label: str):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


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


@command("archs")
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


@command("train")
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


@command("evaluate")
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
        json_out.parent.mkdir(parents=True, exist_ok=True)
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


@command("export")
def export_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pth): ours, BasicSR, or a state dict (then give --arch)."),
    output: Path = typer.Argument(..., help="ONNX file to write."),
    arch: Optional[str] = typer.Option(None, help="Architecture, for checkpoints that do not name it."),
    set_: list[str] = typer.Option([], "--set", help="Build options for such checkpoints, key=value (e.g. scale=4)."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Run onnxsim on the exported graph."),
    opset: int = typer.Option(17, help="ONNX opset of the standard ops."),
    binary_as: str = typer.Option(
        "custom",
        "--as",
        help="custom: binary layers as scales_edge ops; fp32-reference: the same math with standard FP32 ops "
        "(the baseline that isolates what the binary kernels buy).",
    ),
    fuse: bool = typer.Option(
        True, "--fuse/--no-fuse",
        help="Write each SCALES conv (binary conv + re-scalings + skip) as one fused ScalesConv2d "
        "(op-domain version 2; faster); --no-fuse writes BinaryConv2d plus standard ops (version 1).",
    ),
    tail: str = typer.Option(
        "fp32",
        "--tail",
        help="Precision of the FP head and tail (the convs before the first and after the last binary layer): "
        "fp32 (as trained), or int8: ONNX Runtime static quantization (QDQ, int8 per-channel weights, uint8 "
        "activations, MinMax ranges from photos); the binary body is unchanged.",
    ),
    calib: Optional[Path] = typer.Option(
        None,
        "--calib",
        help="With --tail int8: folder of photos to calibrate on (LR crops made with MATLAB bicubic). Default: "
        "the photos packaged with scikit-image/matplotlib, minus the demo's held-out ones.",
    ),
) -> None:
    """Export a checkpoint to ONNX with binary layers as scales_edge custom ops (bit-packed weights).

    --tail int8 quantizes the FP head and tail to INT8 (smaller file, faster tail on CPU) at a small PSNR cost; `scales-edge validate OUT.onnx --images DIR --ckpt CKPT` reports that cost.

    Example: scales-edge export runs/x4/model.pth model.onnx

    Example (INT8 head and tail): scales-edge export runs/x4/model.pth model_int8.onnx --tail int8 --calib photos/

    Example (baseline): scales-edge export runs/x4/model.pth model_fp32ref.onnx --as fp32-reference

    Example (baseline with an FP32 body and the INT8 head/tail): scales-edge export runs/x4/model.pth ref_int8.onnx --as fp32-reference --tail int8
    """
    from .export import TAILS, export_onnx

    if tail not in TAILS:
        fail(f"--tail must be one of {', '.join(TAILS)}, not {tail!r}")
    if calib is not None and tail != "int8":
        fail("--calib chooses the calibration photos of --tail int8; drop it or add --tail int8")
    model = _load_ckpt(ckpt, arch, set_)
    proto = _run(
        export_onnx, model, output, simplify=simplify, opset=opset, binary_as=binary_as, fuse=fuse, tail=tail,
        calib=calib,
    )
    n_ops = sum(1 for n in proto.graph.node if n.domain == "scales_edge")
    size = output.stat().st_size
    precision = ", INT8 head/tail" if tail == "int8" else ""
    typer.echo(f"wrote {output} ({size / 1e6:.2f} MB, {n_ops} binary ops, {len(proto.graph.node)} nodes{precision})")


@command("validate")
def validate_cmd(
    model: Path = typer.Argument(..., help="Exported ONNX model."),
    ckpt: Optional[Path] = typer.Option(
        None, "--ckpt", help="The checkpoint it was exported from: numerical parity (alone) or PyTorch's scores (with --images)."
    ),
    images: Optional[Path] = typer.Option(
        None, "--images", help="Folder of HR photos: PSNR/SSIM of the model beside bicubic (LR made with MATLAB bicubic). "
        "CNNs run in exact tiles; Transformers (SwinIR, HAT) run whole images, as PyTorch does."
    ),
    scale: Optional[int] = typer.Option(None, "--scale", help="Expected scale; an error if the model's differs."),
    save_dir: Optional[Path] = typer.Option(
        None, "--save-dir", help="With --images: write each SR image and an HR | bicubic | model comparison PNG here."
    ),
    arch: Optional[str] = typer.Option(None, help="Architecture, for checkpoints that do not name it."),
    set_: list[str] = typer.Option([], "--set", help="Build options for such checkpoints, key=value."),
    size: list[str] = typer.Option(
        [], "--size", help="Parity input size WxH (repeatable); default 23x17, 64x64, 320x180."
    ),
    threads: Optional[int] = typer.Option(None, help="ORT intra-op threads."),
    threshold: Optional[float] = typer.Option(
        None, help="Parity: minimum PSNR (dB) between ORT and PyTorch outputs. Default 60, or 30 for a model "
        "exported with --tail int8 (its quantized head/tail against PyTorch's FP32 ones).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON."),
) -> None:
    """Check an exported model: parity with PyTorch (--ckpt), or quality on photos (--images).

    Parity (--ckpt alone): ORT with our ops vs PyTorch on random tensors and photo crops; exit 1 below --threshold.

    Quality (--images): each HR photo is mod-cropped, downscaled with MATLAB bicubic, super-resolved by ONNX Runtime and scored (PSNR/SSIM on Y, border = scale, BasicSR convention) beside bicubic and, with --ckpt, beside the PyTorch model and the difference (for an INT8 head/tail model: what the quantization costs).

    Example: scales-edge validate model.onnx --ckpt runs/x4/model.pth --json parity.json

    Example: scales-edge validate model.onnx --images Set5/HR --scale 4 --save-dir out/ --json q.json
    """
    from .runtime.infer import Upscaler

    if ckpt is None and images is None:
        fail("give --ckpt CKPT (numerical parity with PyTorch) and/or --images DIR (quality on HR photos)")
    if images is None and save_dir is not None:
        fail("--save-dir needs --images DIR (it holds the SR images and comparisons of those photos)")
    if images is not None and size:
        fail("--size sets the parity check's inputs; with --images the photos set the sizes (drop --size)")
    upscaler = Upscaler(str(model), threads=threads)
    _check_scale(model, upscaler.scale, scale, "--scale")
    torch_model = None
    if ckpt is not None:
        torch_model = _load_ckpt(ckpt, arch, set_)
        ckpt_scale = int(torch_model.config.get("scale", getattr(torch_model, "scale", upscaler.scale)))
        if ckpt_scale != upscaler.scale:
            fail(f"{model} is a x{upscaler.scale} model but {ckpt} is x{ckpt_scale}: give the checkpoint it was exported from")
    if images is not None:
        _validate_images(model, upscaler, images, torch_model, ckpt, save_dir, json_out)
        return

    from .runtime.validate import DEFAULT_SIZES, PARITY_PSNR_DB, check_parity, make_inputs

    sizes = [_parse_size(item) for item in size]
    inputs = make_inputs(sizes or DEFAULT_SIZES, channels=int(torch_model.config.get("num_in_ch", 3)))
    report = check_parity(model, torch_model, inputs, threads=threads, threshold_db=threshold)
    if report.tail == "int8":
        typer.echo(
            f"{model.name} has an INT8 head/tail (quantized); PyTorch runs them in FP32, so the outputs differ by "
            f"the quantization: bar {report.threshold_db:g} dB instead of {PARITY_PSNR_DB:g} dB"
        )
    table = Table("input", "max |err|", "mean |err|", "PSNR (dB)", "sign flips")
    for c in report.cases:
        table.add_row(
            f"{c.name}", f"{c.max_abs:.2e}", f"{c.mean_abs:.2e}", f"{c.psnr:.2f}", f"{c.sign_flips}/{c.signs}"
        )
    Console().print(table)
    verdict = "PASS" if report.passed else "FAIL"
    typer.echo(
        f"{verdict}: min PSNR {report.min_psnr:.2f} dB (threshold {report.threshold_db:g} dB), max |err| {report.max_abs:.2e}, "
        f"sign flips {report.flip_share:.2e}"
    )
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": str(model), "checkpoint": str(ckpt), **report.to_dict()}, indent=2))
    if not report.passed:
        raise typer.Exit(1)


def _check_scale(model: Path, model_scale: int, flag: Optional[int], flag_name: str) -> None:
    if flag is not None and flag != model_scale:
        fail(f"{model} upscales x{model_scale}, not x{flag}: drop {flag_name} or pass {flag_name} {model_scale}")


def _validate_images(model, upscaler, images: Path, torch_model, ckpt, save_dir, json_out) -> None:
    import numpy as np

    from .data import imread, list_images
    from .runtime.session import tail_precision
    from .quality import mean_scores, min_hr_side, score_images, torch_upscale
    from .runtime.infer import DEFAULT_TILE

    scale = upscaler.scale
    paths = list_images(images)
    need = min_hr_side(scale, upscaler.min_side)
    for p in paths:  # fail fast, before any long work: unreadable files and too-small photos
        h, w = imread(p).shape[:2]
        if min(h - h % scale, w - w % scale) < need:
            fail(
                f"{p}: {w}x{h} px is too small to score at x{scale}; the HR photo needs at least {need}x{need} px "
                f"(after cropping to a multiple of {scale}, SSIM's 11-px window must fit inside the {scale}-px border crop)"
            )

    # Whole images for window-attention Transformers, as PyTorch runs them: their tiles are exact only
    # with an overlap of their (wide) receptive field, and scores should be the model's own.
    tile = 0 if upscaler.window else DEFAULT_TILE

    def ort_up(rgb):
        return upscaler.upscale_image(np.ascontiguousarray(rgb[..., ::-1]), tile=tile)[..., ::-1]

    runs = [("ONNX Runtime", ort_up, save_dir)]
    if torch_model is not None:
        runs.append(("PyTorch", torch_upscale(torch_model), None))
    results = []
    with _progress("validate") as bar:
        task = bar.add_task("validate", total=len(paths) * len(runs), info="")
        for i, (label, fn, sd) in enumerate(runs):
            bar.update(task, info=label)
            results.append(
                score_images(fn, paths, scale, save_dir=sd, on_image=lambda k, n, i=i: bar.update(task, completed=i * n + k))
            )
    ort_scores = results[0]
    torch_scores = results[1] if len(results) > 1 else None
    int8 = tail_precision(upscaler.meta) == "int8"
    cols = ["image", "bicubic PSNR / SSIM", f"ONNX Runtime{' (INT8 head/tail)' if int8 else ''} PSNR / SSIM"]
    if torch_scores:
        # PyTorch runs the FP32 head/tail: for an INT8 model the difference is what quantization costs
        cols += [f"PyTorch{' (FP32)' if int8 else ''} PSNR / SSIM", f"{'INT8 cost: ' if int8 else ''}PyTorch - ORT"]
    table = Table(*cols, title=f"{Path(model).name} x{scale} on {images} (Y channel, border {scale})")
    rows = []
    for k, sc in enumerate(ort_scores):
        row = {"image": sc.image, "psnr": sc.psnr, "ssim": sc.ssim, "bicubic_psnr": sc.bicubic_psnr, "bicubic_ssim": sc.bicubic_ssim}
        cells = [sc.image, f"{sc.bicubic_psnr:.2f} / {sc.bicubic_ssim:.4f}", f"{sc.psnr:.2f} / {sc.ssim:.4f}"]
        if torch_scores:
            t = torch_scores[k]
            row.update(torch_psnr=t.psnr, torch_ssim=t.ssim, torch_minus_ort_psnr=t.psnr - sc.psnr,
                       torch_minus_ort_ssim=t.ssim - sc.ssim)
            cells += [f"{t.psnr:.2f} / {t.ssim:.4f}", f"{t.psnr - sc.psnr:+.3f} dB / {t.ssim - sc.ssim:+.5f}"]
        rows.append(row)
        table.add_row(*cells)
    mean = mean_scores(ort_scores)
    cells = ["mean", f"{mean['bicubic_psnr']:.2f} / {mean['bicubic_ssim']:.4f}", f"{mean['psnr']:.2f} / {mean['ssim']:.4f}"]
    if torch_scores:
        tm = mean_scores(torch_scores)
        mean.update(torch_psnr=tm["psnr"], torch_ssim=tm["ssim"], torch_minus_ort_psnr=tm["psnr"] - mean["psnr"],
                    torch_minus_ort_ssim=tm["ssim"] - mean["ssim"])
        cells += [f"{mean['torch_psnr']:.2f} / {mean['torch_ssim']:.4f}",
                  f"{mean['torch_minus_ort_psnr']:+.3f} dB / {mean['torch_minus_ort_ssim']:+.5f}"]
    table.add_row(*cells, style="bold")
    Console().print(table)
    typer.echo(
        f"mean PSNR {mean['psnr']:.2f} dB vs bicubic {mean['bicubic_psnr']:.2f} dB "
        f"({mean['psnr'] - mean['bicubic_psnr']:+.2f} dB) on {len(paths)} image(s)"
        + (f"; SR images and comparisons in {save_dir}" if save_dir else "")
    )
    if int8 and torch_scores:
        typer.echo(
            f"INT8 head/tail cost: {mean['torch_minus_ort_psnr']:+.3f} dB PSNR, {mean['torch_minus_ort_ssim']:+.5f} SSIM "
            f"(PyTorch with its FP32 head/tail {mean['torch_psnr']:.2f} dB, this model {mean['psnr']:.2f} dB)"
        )
    elif int8:
        typer.echo("INT8 head/tail: add --ckpt CKPT to score the FP32 PyTorch model beside it and see what quantization costs")
    if json_out:
        payload = {
            "model": str(model),
            "checkpoint": str(ckpt) if ckpt else None,
            "images_dir": str(images),
            "scale": scale,
            "tail": "int8" if int8 else "fp32",
            "metric": "PSNR/SSIM on Y (BT.601), border = scale, BasicSR convention",
            "images": rows,
            "mean": mean,
            "save_dir": str(save_dir) if save_dir else None,
        }
        if int8 and torch_scores:
            payload["int8_cost"] = {
                "psnr_db": mean["torch_minus_ort_psnr"],
                "ssim": mean["torch_minus_ort_ssim"],
                "meaning": "mean over the images of PyTorch (FP32 head/tail) minus ONNX Runtime (INT8 head/tail)",
            }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2))


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
    payload = _run(_bench_table, [model] + ([baseline] if baseline else []), _parse_size(size), threads, runs, warmup, profile)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2))


def _bench_table(models, hw, threads, runs, warmup, profile=False) -> dict:
    from rich.progress import Progress

    from .runtime.bench import JSON_SCHEMA, benchmark, machine_info, peak_rss_mb

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        results = benchmark(
            models, hw, threads, runs, warmup, profile=profile,
            on_step=lambda d, t: bar.update(task, completed=d, total=t),
        )
    table = Table("model", "median ms", "p10", "p90", "min", "MP/s", "MB on disk")
    for r in results:
        table.add_row(
            Path(r.model).name, f"{r.median_ms:.1f}", f"{r.p10_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.min_ms:.1f}",
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


# ------------------------------------------------------------------------------------ upscale

_GLOB_CHARS = set("*?[")
#: What each output format can store: (16-bit, alpha).
_FORMATS = {".png": (True, True), ".tif": (True, True), ".tiff": (True, True), ".jpg": (False, False),
            ".jpeg": (False, False), ".bmp": (False, True), ".webp": (False, True)}


def _upscale_inputs(spec: str, scale: int) -> list[Path]:
    """INPUT as a file, a folder (its images, minus earlier outputs) or a glob."""
    import glob

    from .data import IMAGE_EXTENSIONS, list_images

    path = Path(spec)
    if path.is_dir():
        files = list_images(path)
        stems = {p.stem for p in files}
        # Leave out this command's own earlier outputs (<stem>_x<scale>.png beside <stem>.*).
        suffix = f"_x{scale}"
        return [p for p in files if not (p.stem.endswith(suffix) and p.stem[: -len(suffix)] in stems)]
    if path.is_file():
        return [path]
    if _GLOB_CHARS & set(spec):
        files = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        files = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            fail(f"no image file matches {spec!r} ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    fail(f"{spec}: no such file or folder; give an image, a folder of images or a quoted glob ('photos/*.jpg')")
    return []


def _upscale_outputs(inputs: list[Path], output: Optional[Path], scale: int, overwrite: bool, single: bool) -> list[Path]:
    def name(p: Path) -> str:
        return f"{p.stem}_x{scale}.png"

    if output is None:
        outs = [p.parent / name(p) for p in inputs]
    elif single and not output.is_dir() and output.suffix and not str(output).endswith(("/", "\\")):
        if output.suffix.lower() not in _FORMATS:
            fail(f"{output}: unknown image format {output.suffix!r}; use one of {', '.join(_FORMATS)}")
        outs = [output]
    else:
        if output.exists() and not output.is_dir():
            fail(f"{output} is a file; with several inputs OUTPUT must be a folder")
        outs = [output / name(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outs):
        key = dst.resolve()
        if key in seen:
            fail(f"{seen[key]} and {src} would both be written to {dst}; upscale them into different folders")
        seen[key] = src
    in_set = {p.resolve() for p in inputs}
    for src, dst in zip(inputs, outs):
        if dst.resolve() in in_set and not overwrite:
            fail(f"{dst} is an input; refusing to overwrite it (pass --overwrite to replace it)")
        if dst.exists() and not overwrite:
            hint = " (if your shell expanded a glob into two names, quote the glob: 'photos/*.png')" if single and output else ""
            fail(f"{dst} exists; pass --overwrite to replace it, or choose another OUTPUT{hint}")
    return outs


def _write_image(path: Path, img) -> None:
    """Write an OpenCV-layout image (gray/BGR/BGRA, 8 or 16 bit) atomically (temp file, rename)."""
    import os

    import cv2
    import numpy as np

    ext = path.suffix.lower()
    deep, alpha = _FORMATS[ext]
    if img.dtype == np.uint16 and not deep:
        raise ScalesEdgeError(f"{path}: {ext} cannot store 16-bit images; write .png or .tif")
    if img.ndim == 3 and img.shape[2] == 4 and not alpha:
        raise ScalesEdgeError(f"{path}: {ext} cannot store an alpha channel; write .png, .tif or .webp")
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ScalesEdgeError(f"{path}: OpenCV could not encode the image as {ext}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        buf.tofile(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@command("upscale")
def upscale_cmd(
    input: str = typer.Argument(..., help="An image, a folder of images, or a quoted glob ('photos/*.jpg')."),
    output: Optional[Path] = typer.Argument(
        None, help="Output file (one input) or folder. Default: <stem>_x<scale>.png next to each input."
    ),
    model: Path = typer.Option(..., "--model", "-m", help="Exported ONNX model (scales-edge export)."),
    tile: int = typer.Option(256, help="Tile side in LR pixels (the kept part of each tile); 0 = whole image at once."),
    overlap: Optional[int] = typer.Option(
        None, help="Extra LR pixels each tile sees on every side. Default: the model's receptive-field radius "
        "(tiled output = whole-image output), at most a quarter of the tile (at least 16). Transformers (SwinIR, "
        "HAT): whole windows; a real-size model's field is wider than the default, so its tiles come out close to "
        "a whole-image run, not equal (docs/benchmarks-transformers.md)."
    ),
    threads: Optional[int] = typer.Option(None, help="ORT intra-op threads (default: all cores)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Expected scale; an error if the model's differs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (even an input)."),
) -> None:
    """Super-resolve images: files, folders or globs; gray, RGB, RGBA and 16-bit kept as they are.

    Colour goes through the model (gray is replicated to RGB and converted back); an alpha channel is upscaled bicubically; 16-bit images stay 16-bit (the model runs on float input). Large images run in tiles with overlap, and the channel statistics of SCALES' re-scaling are taken over the whole image, so the result equals a whole-image run while memory stays bounded. Window-attention Transformers (SwinIR, HAT) get tiles aligned to their window grid and the same whole-image statistics; their tiles equal a whole-image run when --overlap covers their receptive field (the first line printed says whether it does) and are close otherwise; --tile 0 runs whole images. Never overwrites a file unless --overwrite.

    Example: scales-edge upscale photo.jpg --model model.onnx

    Example: scales-edge upscale 'shots/*.png' out/ --model model.onnx --tile 192 --threads 2

    Example (SwinIR-light, overlap covering its 175-px receptive field): scales-edge upscale big.png -m swinir_light.onnx --overlap 176
    """
    from .data import imread_any
    from .runtime.infer import Upscaler

    if tile < 0:
        fail(f"--tile must be >= 0 (0 = whole image), got {tile}")
    if overlap is not None and overlap < 0:
        fail(f"--overlap must be >= 0, got {overlap}")
    upscaler = Upscaler(str(model), threads=threads)
    s = upscaler.scale
    _check_scale(model, s, scale, "--scale")
    inputs = _upscale_inputs(input, s)
    single = len(inputs) == 1 and Path(input).is_file()
    outputs = _upscale_outputs(inputs, output, s, overwrite, single)
    if tile:
        from .runtime.tiling import TilingError, aligned_overlap

        try:
            g = upscaler.runner.geometry
            ov = aligned_overlap(upscaler.auto_overlap(tile) if overlap is None else overlap, g.window or 1)
            if not g.exact:
                note = "receptive field unknown: approximate near tile borders"
            elif ov >= g.exact_overlap:
                note = "covers the receptive field"
            elif g.window:  # window attention: a difference at a tile border does not fade
                note = f"below the receptive field, {g.exact_overlap} px: approximate, see docs/benchmarks-transformers.md; --tile 0 is exact"
            else:
                note = f"below the receptive field, {g.exact_overlap} px: near-exact"
            typer.echo(f"{model.name}: x{s}, tiles of {tile} px + {ov} px overlap ({note})", err=True)
        except TilingError:  # images larger than a tile will say so
            pass
    t_all = time.perf_counter()
    with _progress("upscale") as bar:
        task = bar.add_task("upscale", total=len(inputs), info="")
        for i, (src, dst) in enumerate(zip(inputs, outputs)):
            bar.update(task, completed=i, info=src.name)
            img = imread_any(src)
            t0 = time.perf_counter()
            out = upscaler.upscale_image(
                img, tile=tile, overlap=overlap, on_progress=lambda f, i=i: bar.update(task, completed=i + f)
            )
            _write_image(dst, out)
            h, w = img.shape[:2]
            kind = "gray" if out.ndim == 2 else {3: "RGB", 4: "RGBA"}[out.shape[2]]
            bar.console.print(
                f"{src} -> {dst} ({w}x{h} -> {w * s}x{h * s}, {kind}, {out.dtype.itemsize * 8}-bit, "
                f"{time.perf_counter() - t0:.1f} s)",
                highlight=False,
            )
        bar.update(task, completed=len(inputs), info="done")
    typer.echo(f"upscaled {len(inputs)} image(s) x{s} in {time.perf_counter() - t_all:.1f} s")


# ------------------------------------------------------------------------------------ info


def _si(v: float) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= f:
            return f"{v / f:.3g}{unit}"
    return f"{v:.3g}"


@command("info")
def info_cmd(
    model: Path = typer.Argument(..., help="An exported model (.onnx) or a checkpoint (.pth)."),
    size: str = typer.Option("320x180", help="LR input size WxH the operations are counted for (320x180 -> 720p at x4)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the numbers as JSON."),
) -> None:
    """What a model is and costs: arch, scale, parameters, bytes, OPs, custom ops.

    OPs follow the SCALES paper: FP MACs + binary MACs / 64, where FP MACs are the multiply-accumulates of the full-precision convolutions / linears (re-scaling branches and a Transformer's attention products included) and binary MACs those of the XNOR/popcount layers; element-wise ops are not counted. "binary layers only" restricts the count to the binarized layers and their branches (the paper's ablation table counts only the body). An .onnx and the checkpoint it came from give the same counts; a Transformer is counted at --size padded to its window multiple, as it runs.

    Example: scales-edge info model.onnx --size 320x180 --json info.json

    Example: scales-edge info runs/x4/model.pth
    """
    from .info import model_info

    h, w = _parse_size(size)
    info = model_info(model, (h, w))
    p, m = info["params"], info["macs"]
    table = Table("", "value", title=f"{model.name}")
    chans = f", {info['channels']} channels" if info["channels"] is not None else ""
    table.add_row("architecture", f"{info['arch']} x{info['scale']}{chans}, binary={info['binary']}")
    table.add_row("file", f"{info['format']}, {info['bytes_on_disk']:,} bytes on disk")
    stored = "1-bit + INT8 + FP32" if info["int8_params"] else "1-bit + FP32"
    table.add_row("parameters", f"{p['binary']:,} binary + {p['fp']:,} FP = {p['total']:,} ({info['weights_bytes']:,} bytes as {stored})")
    table.add_row(
        "FP head and tail",
        f"INT8 ({info['int8_params']:,} int8 weights, QDQ)" if info["tail"] == "int8" else "FP32",
    )
    table.add_row("input -> output", f"{info['input_size'][0]}x{info['input_size'][1]} -> {info['output_size'][0]}x{info['output_size'][1]}")
    table.add_row("OPs", f"{_si(info['ops'])} = {_si(m['fp'])} FP MACs + {_si(m['binary'])} binary MACs / 64")
    table.add_row("OPs, binary layers only", f"{_si(info['ops_binary_layers'])} (FP branches {_si(m['fp_in_binary_layers'])} + binary / 64)")
    version = info["op_domain_version"]
    table.add_row(
        "custom ops",
        f"{info['custom_ops']} {info['op_domain']} ops, domain version {version}" if version is not None
        else f"{info['custom_ops']} (no {info['op_domain']} op domain: a full-precision model)",
    )
    Console().print(table)
    typer.echo(f"OPs convention: {info['ops_convention']}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(info, indent=2))


def run() -> None:  # pragma: no cover - console entry point helper
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
