"""``scales-edge validate``: parity with PyTorch, or quality on photos."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import arch_option, check_output, check_scale, command, fail, load_ckpt, parse_size, progress_bar, set_option, write_json



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
    arch: Optional[str] = arch_option(),
    set_: list[str] = set_option(),
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
    from ..runtime.infer import Upscaler

    if ckpt is None and images is None:
        fail("give --ckpt CKPT (numerical parity with PyTorch) and/or --images DIR (quality on HR photos)")
    if images is None and save_dir is not None:
        fail("--save-dir needs --images DIR (it holds the SR images and comparisons of those photos)")
    if images is not None and size:
        fail("--size sets the parity check's inputs; with --images the photos set the sizes (drop --size)")
    if json_out:
        from ..data import list_images

        check_output(json_out, [model, ckpt, *(list_images(images) if images and images.is_dir() else [])])
    upscaler = Upscaler(str(model), threads=threads)
    check_scale(model, upscaler.scale, scale, "--scale")
    torch_model = None
    if ckpt is not None:
        torch_model = load_ckpt(ckpt, arch, set_)
        ckpt_scale = int(torch_model.config.get("scale", getattr(torch_model, "scale", upscaler.scale)))
        if ckpt_scale != upscaler.scale:
            fail(f"{model} is a x{upscaler.scale} model but {ckpt} is x{ckpt_scale}: give the checkpoint it was exported from")
    if images is not None:
        _validate_images(model, upscaler, images, torch_model, ckpt, save_dir, json_out)
        return

    from ..export.parity import check_parity
    from ..runtime.validate import DEFAULT_SIZES, PARITY_PSNR_DB, make_inputs, parity_verdict

    from ..runtime.memory import check_run_fits

    sizes = [parse_size(item) for item in size]
    channels = int(torch_model.config.get("num_in_ch", 3))
    for h, w in sizes:
        check_run_fits(upscaler.meta, channels, h, w, what=str(model))
    inputs = make_inputs(sizes or DEFAULT_SIZES, channels=channels)
    report = check_parity(model, torch_model, inputs, threads=threads, threshold_db=threshold)
    if report.tail == "int8":
        typer.echo(
            f"{model.name} has an INT8 head/tail (quantized); PyTorch runs them in FP32, so the outputs differ by "
            f"the quantization: bar {report.threshold_db:g} dB instead of {PARITY_PSNR_DB:g} dB"
        )
    table = Table("input", "max |err|", "mean |err|", "PSNR (dB)", "sign flips", "PSNR, signs synced (dB)")
    for c in report.cases:
        table.add_row(
            f"{c.name}", f"{c.max_abs:.2e}", f"{c.mean_abs:.2e}", f"{c.psnr:.2f}", f"{c.sign_flips}/{c.signs}",
            "-" if c.synced_psnr is None else f"{c.synced_psnr:.2f}",
        )
    Console().print(table)
    typer.echo(parity_verdict(report))
    if json_out:
        write_json(json_out, {"model": str(model), "checkpoint": str(ckpt), **report.to_dict()})
    if not report.passed:
        raise typer.Exit(1)



def _validate_images(model, upscaler, images: Path, torch_model, ckpt, save_dir, json_out) -> None:
    import numpy as np

    from ..data import imread, list_images
    from ..runtime.session import tail_precision
    from ..quality import mean_scores, min_hr_side, score_images, torch_upscale
    from ..runtime.infer import DEFAULT_TILE

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
    with progress_bar("validate") as bar:
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
        write_json(json_out, payload)
