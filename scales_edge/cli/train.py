"""Authoring commands (need the torch extra): ``archs``, ``train``, ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import arch_option, command, load_ckpt, parse_kv, set_option, write_json



@command("archs")
def archs_cmd() -> None:
    """List the architectures of the model zoo.

    Example: scales-edge archs
    """
    from ..models import get_arch, list_archs

    table = Table("arch", "family", "binarizations", "binary_scope", "description")
    for name in list_archs():
        e = get_arch(name)
        scopes = ", ".join(e.scopes) if e.scopes else "-"
        table.add_row(name, e.family, ", ".join(e.binaries), scopes, e.description)
    Console().print(table)
    typer.echo(
        "binary_scope (CNNs, --set binary_scope=...): body = the residual body is binary; body+upsampler "
        "(default) = every conv but the first and the last, as in the SCALES paper."
    )


@command("train")
def train_cmd(
    train_dir: Optional[Path] = typer.Argument(
        None, help="Folder of HR training images (DIV2K style); when resuming, the run's own by default."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o",
        help="Run folder: latest.pth (resumable), model.pth (final), train.log, metrics.jsonl. A folder that "
        "holds a run resumes it with its own model and options.",
    ),
    arch: Optional[str] = typer.Option(None, help="Architecture (see `scales-edge archs`) [default: srresnet]."),
    scale: Optional[int] = typer.Option(None, help="Upscaling factor: 2, 3 or 4 [default: 4]."),
    binary: Optional[str] = typer.Option(None, help="Body binarization: scales, e2fif, bibert or fp [default: scales]."),
    num_feat: Optional[int] = typer.Option(None, help="Channel width [default: the arch's]."),
    num_block: Optional[int] = typer.Option(None, help="Number of body blocks [default: the arch's]."),
    set_: list[str] = typer.Option([], "--set", help="Other build options, key=value (e.g. spatial=false)."),
    val_dir: Optional[Path] = typer.Option(None, help="Folder of HR validation images (PSNR/SSIM on whole images)."),
    lr_dir: Optional[Path] = typer.Option(
        None, help="Folder of the LR training images made beforehand (e.g. DIV2K_train_LR_bicubic/X4: 0001x4.png "
        "for 0001.png); without it each process makes them at start (MATLAB bicubic, ~1 s per DIV2K image).",
    ),
    iters: Optional[int] = typer.Option(None, help="Total training iterations [default: 1000]."),
    batch_size: Optional[int] = typer.Option(
        None, help="Patches per iteration over all processes; each of N processes takes 1/N [default: 16]."
    ),
    patch_size: Optional[int] = typer.Option(None, help="LR patch side in pixels [default: 48]."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate [default: 2e-4]."),
    lr_step: Optional[int] = typer.Option(None, help="Multiply the learning rate by --lr-gamma every this many iterations [default: 200000]."),
    lr_gamma: Optional[float] = typer.Option(None, help="Learning-rate factor at each step [default: 0.5]."),
    val_every: Optional[int] = typer.Option(None, help="Validate every this many iterations [default: 500]."),
    save_every: Optional[int] = typer.Option(None, help="Write latest.pth every this many iterations [default: 500]."),
    log_every: Optional[int] = typer.Option(
        None, help="A line with loss, lr, it/s and ETA every this many iterations (on the console when it is not a "
        "terminal; train.log and metrics.jsonl always) [default: 100]."
    ),
    repeat: Optional[int] = typer.Option(None, help="Patches per image per epoch [default: 100]."),
    seed: Optional[int] = typer.Option(None, help="Random seed: initial weights, patch order and crops [default: 0]."),
    init: Optional[Path] = typer.Option(
        None, help="A new run starts from this checkpoint's tensors that have the model's names and shapes (e.g. a "
        "body-scope model into the paper scope; BasicSR's pretrain_network_g, not strict); the rest keep their "
        "initial values."
    ),
    amp: Optional[str] = typer.Option(None, help="Mixed precision: off, bf16 or fp16 (autocast; fp16 adds a grad scaler) [default: off]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N; under torchrun, cuda means cuda:LOCAL_RANK."),
    workers: int = typer.Option(0, help="DataLoader worker processes (per process)."),
    threads: Optional[int] = typer.Option(None, help="torch threads per process."),
    force: bool = typer.Option(
        False, "--force", help="Start over in a folder that holds a run: its latest.pth, model.pth, train.log and "
        "metrics.jsonl are replaced."
    ),
) -> None:
    """Train a model on a folder of HR images: resumable, logged, on CPUs or GPUs, one process or many (torchrun).

    Options not given take their defaults, or when OUT holds a run, that run's values; one given anew is applied
    from the resumed iteration and recorded (the model cannot change). Ctrl-C or SIGTERM saves latest.pth first.

    Example: scales-edge train DIV2K_train_HR --out runs/x4 --lr-dir DIV2K_train_LR_bicubic/X4 --iters 300000

    Example (resume, or train on): scales-edge train --out runs/x4 --iters 400000

    Example (4 GPUs): torchrun --nproc_per_node 4 -m scales_edge train DIV2K_train_HR --out runs/x4 --amp bf16
    """
    import os

    from ..errors import ScalesEdgeError
    from ..training import RunLog, resolve_config, train

    given: dict[str, Any] = {"out_dir": str(out), "force": force, "device": device, "workers": workers, "threads": threads}
    options = dict(
        train_dir=train_dir, val_dir=val_dir, lr_dir=lr_dir, iters=iters, batch_size=batch_size, patch_size=patch_size,
        lr=lr, lr_step=lr_step, lr_gamma=lr_gamma, val_every=val_every, save_every=save_every, log_every=log_every,
        repeat=repeat, seed=seed, amp=amp, init=init,
    )  # fmt: skip
    given.update({k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None})
    model_kw = {k: v for k, v in dict(scale=scale, binary=binary, num_feat=num_feat, num_block=num_block).items() if v is not None}
    model_kw.update(parse_kv(set_))
    if model_kw:
        given["model"] = model_kw
    if arch is not None:
        given["arch"] = arch
    rank = int(os.environ.get("RANK", "0"))
    try:
        result = train(resolve_config(given), RunLog())
    except (ScalesEdgeError, KeyboardInterrupt):
        if rank != 0:  # every process meets the same check; rank 0 reports it
            raise typer.Exit(2) from None
        raise
    if result is not None:
        typer.echo(json.dumps(result))


@command("plot")
def plot_cmd(
    run: Path = typer.Argument(..., help="A run folder written by `scales-edge train` (its metrics.jsonl)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write [default: RUN/curves.png]."),
) -> None:
    """Draw a run's training loss and validation PSNR (beside bicubic) against the iteration (needs matplotlib).

    Example: scales-edge plot runs/x4
    """
    from ..training.plot import plot_run

    typer.echo(f"wrote {plot_run(run, out)}")


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
