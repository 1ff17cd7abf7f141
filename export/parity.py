"""Parity of an export: the PyTorch model against its ONNX model in ONNX Runtime with our ops.

The authoring half of :mod:`scales_edge.runtime.validate` (which holds the inputs, the report and
the thresholds, torch-free): this module runs the PyTorch model, so it lives with the exporter.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import torch
from torch import nn

from ..nn import BinaryConv2dBase, binary_layers
from ..runtime.session import load_model, make_session, metadata, tail_precision
from ..runtime.validate import (
    CaseResult,
    ParityReport,
    _signs,
    _with_binary_inputs_as_outputs,
    image_psnr,
    make_inputs,
    parity_threshold,
)

__all__ = ["check_parity"]


def check_parity(
    onnx_model: "str | onnx.ModelProto",
    torch_model: nn.Module,
    inputs: Sequence[tuple[str, np.ndarray]] | None = None,
    *,
    threads: int | None = None,
    check_signs: bool = True,
    threshold_db: float | None = None,
) -> ParityReport:
    """Run both models on ``inputs`` (default: :func:`make_inputs`) and compare them.

    ``threshold_db`` defaults to the bar for the model's head/tail (:func:`parity_threshold`): 60 dB,
    or 30 dB for an INT8 head/tail, which differs from the FP PyTorch model by its quantization."""
    proto = load_model(onnx_model)
    tail = tail_precision(metadata(proto))
    if threshold_db is None:
        threshold_db = parity_threshold(tail)
    torch_model = torch_model.eval()
    if inputs is None:
        channels = int(proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value or 3)
        inputs = make_inputs(channels=channels)
    exposed: list[tuple[str, str, np.ndarray]] = []
    if check_signs:
        proto, exposed = _with_binary_inputs_as_outputs(proto)
    session = make_session(proto, threads=threads)
    input_name = session.get_inputs()[0].name
    out_names = [o.name for o in session.get_outputs()]
    layers = dict(binary_layers(torch_model))
    captured: dict[str, np.ndarray] = {}
    hooks = []
    if check_signs:
        for name, _, _ in exposed:
            if name in layers:
                hooks.append(
                    layers[name].register_forward_pre_hook(
                        lambda _m, args, name=name: captured.__setitem__(name, args[0].detach().numpy().copy())
                    )
                )
    report = ParityReport(threshold_db=threshold_db, tail=tail)
    try:
        for case, x in inputs:
            captured.clear()
            with torch.no_grad():
                ref = torch_model(torch.from_numpy(x)).numpy()
            results = dict(zip(out_names, session.run(out_names, {input_name: x})))
            out = results[out_names[0]]
            if out.shape != ref.shape:
                raise ValueError(f"{case}: ORT output shape {out.shape} != PyTorch {ref.shape}")
            flips = total = 0
            for name, xname, beta in exposed:
                if name not in captured:
                    continue
                xt, xo = captured[name], results[xname]
                axis = 1 if isinstance(layers[name], BinaryConv2dBase) else -1
                flips += int(np.count_nonzero(_signs(xt, beta, axis) != _signs(xo, beta, axis)))
                total += xt.size
            diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
            synced = None
            if flips and check_signs:
                synced = image_psnr(out, _synced_output(torch_model, layers, exposed, results, x))
            report.cases.append(
                CaseResult(case, tuple(x.shape), float(diff.max()), float(diff.mean()), image_psnr(out, ref), flips, total,
                           synced)
            )
    finally:
        for h in hooks:
            h.remove()
    return report


def _synced_output(model: nn.Module, layers: dict, exposed, results: dict, x: np.ndarray) -> np.ndarray:
    """PyTorch's output when every binary layer binarizes ORT's input to it (its signs) instead of
    its own; everything else (the scale, bias, branches, skips, FP layers) is PyTorch's own float
    arithmetic. A wrong op would still show: its output feeds the next layers' float paths."""

    def core_from(x_ort: np.ndarray):
        def core(layer, x_own):
            p = layer.core_params()
            conv = isinstance(layer, BinaryConv2dBase)
            shape = (1, -1, 1, 1) if conv else (-1,)
            xs = torch.where(torch.from_numpy(x_ort) - p.beta.view(shape) >= 0, 1.0, -1.0)
            y = layer._conv(xs, p.weight_sign) if conv else torch.nn.functional.linear(xs, p.weight_sign)
            y = y * p.scale.view(shape)
            return y if p.bias is None else y + p.bias.view(shape)

        return core

    try:
        for name, xname, _ in exposed:
            if name in layers:
                layers[name].core_override = core_from(results[xname])
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    finally:
        for layer in layers.values():
            layer.core_override = None
