"""runtime/unfuse.py: a fused export rewritten as version 1 computes exactly what the exporter's own
version-1 export (fuse=False) computes, with the same ops, and leaves other models unchanged."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from scales_edge.export import DOMAIN, export_onnx
from scales_edge.models import build_model
from scales_edge.runtime import make_session
from scales_edge.runtime.unfuse import has_fused, unfuse

CFGS = {
    "srresnet": dict(num_feat=24, num_block=2),
    "rdn": dict(num_feat=16, num_block=2, num_layer=2, growth=8),  # C != M: channel_from_output
}


def _model(arch, scale=2, scope="body+upsampler"):
    torch.manual_seed(3)
    m = build_model(arch, binary="scales", scale=scale, binary_scope=scope, **CFGS[arch]).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("beta"):
                p.uniform_(-0.2, 0.2)
    return m


def _ops(proto):
    counts: dict[str, int] = {}
    for n in proto.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


@pytest.mark.parametrize("scale,scope", [(2, "body+upsampler"), (3, "body+upsampler"), (4, "body")])
@pytest.mark.parametrize("arch", sorted(CFGS))
def test_unfused_equals_the_version_1_export(tmp_path, arch, scale, scope):
    """Version 2 and 3 ops (the upsampling ones: DepthToSpace and a nearest Resize for the skip)."""
    model = _model(arch, scale, scope)
    fused = export_onnx(model, tmp_path / "fused.onnx")
    v1 = export_onnx(model, tmp_path / "v1.onnx", fuse=False)
    assert has_fused(fused) and not has_fused(v1)
    un = unfuse(fused)
    onnx.checker.check_model(un)
    assert not has_fused(un)
    assert {(i.domain, i.version) for i in un.opset_import if i.domain == DOMAIN} == {(DOMAIN, 1)}
    ops = _ops(un)
    assert ops.get("BinaryConv2d") == _ops(v1)["BinaryConv2d"] == _ops(fused)["ScalesConv2d"]
    for op in ("Sigmoid", "ReduceMean", "Mul", "Add", "DepthToSpace", "Resize"):
        assert ops.get(op, 0) == _ops(v1).get(op, 0), op
    if scope == "body+upsampler":
        assert ops["DepthToSpace"] == (2 if scale == 4 else 1) and "DepthToSpace" not in _ops(fused)
    onnx.save(un, tmp_path / "un.onnx")
    x = np.random.default_rng(0).random((1, 3, 21, 26), dtype=np.float32)
    got = make_session(tmp_path / "un.onnx").run(None, {"input": x})[0]
    want = make_session(tmp_path / "v1.onnx").run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, want)  # the same ops on the same values


def test_models_without_fused_ops_are_copied_unchanged(tmp_path):
    v1 = export_onnx(_model("srresnet"), tmp_path / "v1.onnx", fuse=False)
    un = unfuse(v1)
    assert un is not v1 and un.SerializeToString() == v1.SerializeToString()
