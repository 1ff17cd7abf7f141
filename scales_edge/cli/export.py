"""``scales-edge export``: a PyTorch checkpoint to ONNX (needs the torch extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import arch_option, check_output, command, fail, load_ckpt, set_option



@command("export")
def export_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pth): ours, BasicSR, or a state dict (then give --arch)."),
    output: Path = typer.Argument(..., help="ONNX file to write (never the checkpoint; an existing file only with --overwrite)."),
    arch: Optional[str] = arch_option(),
    set_: list[str] = set_option(),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Run onnxsim on the exported graph."),
    opset: int = typer.Option(17, help="ONNX opset of the standard ops (11 to 20)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists (without it, an existing file is an error)."),
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

    OUTPUT is written to a temporary file beside it and renamed into place, so an interrupted export never leaves half a model; an existing OUTPUT is replaced only with --overwrite, and never when it is the checkpoint.

    --tail int8 quantizes the FP head and tail to INT8 (smaller file, faster tail on CPU) at a small PSNR cost; `scales-edge validate OUT.onnx --images DIR --ckpt CKPT` reports that cost.

    Example: scales-edge export runs/x4/model.pth model.onnx

    Example (INT8 head and tail): scales-edge export runs/x4/model.pth model_int8.onnx --tail int8 --calib photos/

    Example (baseline): scales-edge export runs/x4/model.pth model_fp32ref.onnx --as fp32-reference

    Example (baseline with an FP32 body and the INT8 head/tail): scales-edge export runs/x4/model.pth ref_int8.onnx --as fp32-reference --tail int8
    """
    from ..export import TAILS, export_onnx

    if tail not in TAILS:
        fail(f"--tail must be one of {', '.join(TAILS)}, not {tail!r}")
    if calib is not None and tail != "int8":
        fail("--calib chooses the calibration photos of --tail int8; drop it or add --tail int8")
    check_output(output, [ckpt], overwrite)
    model = load_ckpt(ckpt, arch, set_)
    proto = export_onnx(model, output, simplify=simplify, opset=opset, binary_as=binary_as, fuse=fuse, tail=tail,
        calib=calib,
    )
    n_ops = sum(1 for n in proto.graph.node if n.domain == "scales_edge")
    size = output.stat().st_size
    precision = ", INT8 head/tail" if tail == "int8" else ""
    typer.echo(f"wrote {output} ({size / 1e6:.2f} MB, {n_ops} binary ops, {len(proto.graph.node)} nodes{precision})")
