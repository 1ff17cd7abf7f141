"""``scales-edge info``: what a model is and costs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .common import arch_option, check_output, command, fail, load_ckpt, parse_size, set_option, write_json



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
    arch: Optional[str] = arch_option(),
    set_: list[str] = set_option(),
) -> None:
    """What a model is and costs: arch, scale, parameters, bytes, OPs, custom ops.

    OPs follow the SCALES paper: FP MACs + binary MACs / 64, where FP MACs are the multiply-accumulates of the full-precision convolutions / linears (re-scaling branches and a Transformer's attention products included) and binary MACs those of the XNOR/popcount layers; element-wise ops are not counted. "binary layers only" restricts the count to the binarized layers and their branches (the paper's ablation table counts only the body). An .onnx and the checkpoint it came from give the same counts; a Transformer is counted at --size padded to its window multiple, as it runs.

    Example: scales-edge info model.onnx --size 320x180 --json info.json

    Example: scales-edge info runs/x4/model.pth
    """
    from ..info import model_info

    h, w = parse_size(size)
    if model.suffix.lower() == ".onnx" and (arch or set_):
        fail(f"--arch and --set describe a checkpoint; {model.name} is an exported model, which says what it is")
    if json_out:
        check_output(json_out, [model])
    loader = (lambda path: load_ckpt(path, arch, set_)) if model.suffix.lower() != ".onnx" else None
    info = model_info(model, (h, w), loader=loader)
    p, m = info["params"], info["macs"]
    table = Table("", "value", title=f"{model.name}")
    chans = f", {info['channels']} channels" if info["channels"] is not None else ""
    scope = f", binary_scope={info['binary_scope']}" if info.get("binary_scope") else ""
    table.add_row("architecture", f"{info['arch']} x{info['scale']}{chans}, binary={info['binary']}{scope}")
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
    table.add_row("OPs without the FP branches", f"{_si(info['ops'] - m['fp_in_binary_layers'])} (how the SCALES paper's figures come out closest)")
    version = info["op_domain_version"]
    table.add_row(
        "custom ops",
        f"{info['custom_ops']} {info['op_domain']} ops, domain version {version}" if version is not None
        else f"{info['custom_ops']} (no {info['op_domain']} op domain: a full-precision model)",
    )
    Console().print(table)
    typer.echo(f"OPs convention: {info['ops_convention']}")
    if json_out:
        write_json(json_out, info)
