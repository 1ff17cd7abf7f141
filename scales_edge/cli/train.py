"""Authoring commands (need the torch extra): ``archs``, ``train``, ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import arch_option, command, console, load_ckpt, parse_kv, set_option, write_json



@command("archs")
def archs_cmd() -> None:
    """List the architectures of the model zoo.

    Example: scales-edge archs
    """
    from ..models import get_arch, list_archs

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

    from ..training import TrainConfig, train

    model_kw: dict[str, Any] = {"scale": scale, "binary": binary, **parse_kv(set_)}
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

        result = train(cfg, progress)
    if result is not None:
        typer.echo(json.dumps(result))


@command("evaluate")
def evaluate_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pth): ours, BasicSR, or a state dict (then give --arch)."),
    images: Path = typer.Option(..., "--images", help="Folder of HR images."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    arch: Optional[str] = arch_option(),
    set_: list[str] = set_option(),
) -> None:
    """PSNR/SSIM (Y, BasicSR convention) of a PyTorch checkpoint on HR images, beside bicubic.

    Example: scales-edge evaluate model.pth --images photos/

    Example (a BasicSR checkpoint): scales-edge evaluate net_g_latest.pth --arch srresnet --images Set5/HR
    """
    from ..data import list_images
    from ..training import evaluate

    model = load_ckpt(ckpt, arch, set_)
    paths = list_images(images)
    scale = int(model.config["scale"])
    res = evaluate(model, paths, scale)
    table = Table("", "PSNR (dB)", "SSIM")
    table.add_row("bicubic", f"{res['bicubic_psnr']:.2f}", f"{res['bicubic_ssim']:.4f}")
    table.add_row(model.config["arch"], f"{res['psnr']:.2f}", f"{res['ssim']:.4f}")
    Console().print(table)
    if json_out:
        write_json(json_out, {"checkpoint": str(ckpt), "images": len(paths), **res})
