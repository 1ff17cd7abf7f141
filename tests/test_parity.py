"""End to end: PyTorch model → ONNX with scales_edge ops → ONNX Runtime with our C++ library.

For every CNN arch × scale × binarization of the zoo (random weights, thresholds and batch-norm
statistics; channel widths 40 and 48, not multiples of 64), the ORT output must match PyTorch at
PSNR ≥ 60 dB on [0, 1] images, at 17×23, 64×64 and 180×320 inputs, in the paper's binarization
scope (the default: upsampler convs binary, fused as version 3's shuffling ScalesConv2d); the
body-only scope and the unfused (version 1) export of the paper scope on smaller inputs.
"""

from __future__ import annotations


import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from scales_edge.export import DOMAIN, export_onnx
from scales_edge.models import build_model, get_arch, list_archs
from scales_edge.nn import E2FIFConv2d, ScalesConv2d, binary_layers
from _opslib import require_installed_library
from scales_edge.export.parity import check_parity
from scales_edge.runtime.validate import make_inputs

require_installed_library()

torch.set_num_threads(1)

TINY = {
    "srresnet": dict(num_block=2),
    "edsr": dict(num_block=2),
    "edsr_l": dict(num_block=2),
    "rdn": dict(num_block=2, num_layer=2, growth=24),
    "rcan": dict(num_group=2, num_block=1, squeeze_factor=8),
}
CNN_ARCHS = [a for a in list_archs() if get_arch(a).family == "cnn"]
CASES = [
    (arch, scale, binary)
    for arch in CNN_ARCHS
    for scale in (2, 3, 4)
    for binary in get_arch(arch).binaries
]


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial thresholds, scales and BN statistics (the initial ones are 0/1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in binary_layers(model):
            if isinstance(layer, ScalesConv2d):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
            if isinstance(layer, E2FIFConv2d):
                layer.bn.running_mean.copy_(torch.randn(layer.bn.running_mean.shape, generator=g))
                layer.bn.running_var.copy_(torch.rand(layer.bn.running_var.shape, generator=g) * 10 + 1)
    return model.eval()


def test_case_matrix_covers_the_zoo():
    assert {a for a, _, _ in CASES} == {"srresnet", "edsr", "edsr_l", "rdn", "rcan"}
    assert len(CASES) == 5 * 3 * 3


@pytest.mark.parametrize("arch,scale,binary", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_ort_matches_pytorch(tmp_path, arch, scale, binary):
    width = 40 if (scale + len(arch)) % 2 else 48
    torch.manual_seed(scale)
    model = randomize(build_model(arch, scale=scale, binary=binary, num_feat=width, **TINY[arch]), seed=scale)
    path = tmp_path / "m.onnx"
    proto = export_onnx(model, path)
    n_ops = sum(1 for n in proto.graph.node if n.domain == DOMAIN)
    assert n_ops == len(binary_layers(model))
    assert (n_ops > 0) == (binary != "fp")
    if binary == "scales":
        # every binary layer is one fused op, the upsampling ones write the shuffled layout
        ops = [n.op_type for n in proto.graph.node]
        assert ops.count("ScalesConv2d") == n_ops and "DepthToSpace" not in ops and "BinaryConv2d" not in ops
        assert [i.version for i in proto.opset_import if i.domain == DOMAIN] == [3]
    inputs = make_inputs(sizes=[(17, 23), (64, 64)]) + make_inputs(sizes=[(180, 320)], photos=False, seed=3)
    report = check_parity(path, model, inputs, threads=1)
    assert [c.shape for c in report.cases][-1] == (1, 3, 180, 320)
    assert report.passed, report.to_dict()
    assert report.min_psnr >= 60.0


OTHER_FORMS = [
    (arch, scale, scope, fuse)
    for i, arch in enumerate(CNN_ARCHS)
    for scope, fuse in (("body", True), ("body+upsampler", False))
    for scale in [(2, 3, 4)[i % 3]]
]


@pytest.mark.parametrize("arch,scale,scope,fuse", OTHER_FORMS, ids=["-".join(map(str, c)) for c in OTHER_FORMS])
def test_other_scopes_and_forms_match_pytorch(tmp_path, arch, scale, scope, fuse):
    """binary_scope="body" (fused, version 2) and the paper scope exported unfused (version 1:
    BinaryConv2d, the shuffles as DepthToSpace, the skips' repeated input as a nearest Resize)."""
    torch.manual_seed(scale)
    model = randomize(build_model(arch, scale=scale, num_feat=40, binary_scope=scope, **TINY[arch]), seed=scale)
    proto = export_onnx(model, tmp_path / "m.onnx", fuse=fuse)
    ops = [n.op_type for n in proto.graph.node]
    version = [i.version for i in proto.opset_import if i.domain == DOMAIN]
    if fuse:
        assert version == [2] and ops.count("ScalesConv2d") == len(binary_layers(model))
    else:
        assert version == [1] and ops.count("BinaryConv2d") == len(binary_layers(model))
        assert ops.count("DepthToSpace") == len([m for _, m in binary_layers(model) if m.upscale > 1])
    report = check_parity(tmp_path / "m.onnx", model, make_inputs(sizes=[(17, 23), (31, 36)]), threads=1)
    assert report.passed and report.min_psnr >= 60.0, report.to_dict()


def test_parity_detects_a_wrong_model(tmp_path):
    """The check can fail: a model whose packed weights are flipped is caught."""
    model = randomize(build_model("srresnet", scale=2, num_feat=40, num_block=2), seed=0)
    proto = export_onnx(model, tmp_path / "m.onnx")
    for t in proto.graph.initializer:
        if t.name.endswith(".packed_weight"):
            t.CopyFrom(numpy_helper.from_array(~numpy_helper.to_array(t), t.name))
            break
    onnx.save(proto, tmp_path / "bad.onnx")
    report = check_parity(tmp_path / "bad.onnx", model, make_inputs(sizes=[(17, 23)], photos=False), threads=1)
    assert not report.passed and report.flip_share > 0


def test_threads_agree(tmp_path):
    model = randomize(build_model("rcan", scale=2, num_feat=40, **TINY["rcan"]), seed=1)
    export_onnx(model, tmp_path / "m.onnx")
    x = make_inputs(sizes=[(33, 47)], photos=False)
    from scales_edge.runtime import make_session

    outs = [make_session(tmp_path / "m.onnx", threads=t).run(None, {"input": x[0][1]})[0] for t in (1, 2)]
    np.testing.assert_array_equal(outs[0], outs[1])


def test_binary_weights_cost_one_bit(tmp_path):
    """SRResNet-SCALES x4 (64 channels, paper scope): the file holds the FP first and last convs
    and the branches at 4 bytes a parameter and every other conv at 1 bit a weight, and nothing
    else of size."""
    model = build_model("srresnet", scale=4).eval()
    proto = export_onnx(model, tmp_path / "scales.onnx")
    export_onnx(build_model("srresnet", scale=4, binary="fp").eval(), tmp_path / "fp.onnx")
    packed = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.name.endswith(".packed_weight")]
    assert all(p.dtype == np.uint64 for p in packed)
    # 32 body convs, upconv1 and upconv2 (64 -> 256), conv_hr
    assert sorted(p.shape for p in packed) == [(64, 3, 3, 1)] * 33 + [(256, 3, 3, 1)] * 2
    binary_weights = sum(m.weight.numel() for _, m in binary_layers(model))
    other_params = sum(p.numel() for p in model.parameters()) - binary_weights
    expected = 4 * other_params + binary_weights / 8
    size = (tmp_path / "scales.onnx").stat().st_size
    fp_size = (tmp_path / "fp.onnx").stat().st_size
    # + the metadata (the tiling plan's graphs: a few compressed nodes, no weights), names and node
    # records, about 1 KB per binary layer (a stray FP32 64->64 conv would be 147 KB)
    meta = sum(len(p.key) + len(p.value) for p in proto.metadata_props)
    assert size < 1.10 * expected + meta + 1024 * len(packed), (size, expected, meta)
    # FP32 SRResNet x4 is 1.52 M parameters; all but 3.5 K of them (conv_first, conv_last) are binary.
    assert fp_size / size > 15, (fp_size, size)


def test_demo_checkpoint_parity(tmp_path):
    """The bundled demo model (trained, so real thresholds) at 17x23, 64x64 and 180x320."""
    from scales_edge import load_checkpoint
    from scales_edge.demo import DEMO_CHECKPOINT

    model = load_checkpoint(DEMO_CHECKPOINT)
    export_onnx(model, tmp_path / "demo.onnx")
    report = check_parity(tmp_path / "demo.onnx", model, make_inputs(), threads=1)
    assert {c.shape[2:] for c in report.cases} == {(17, 23), (64, 64), (180, 320)}
    assert report.passed, report.to_dict()
    # where rounding flipped signs, the synchronized comparison is far above the bar
    for c in report.cases:
        assert c.psnr >= 60 or (c.synced_psnr is not None and c.synced_psnr >= 80), report.to_dict()
    small = [c for c in report.cases if c.shape[2] <= 64]
    assert all(c.sign_flips == 0 and c.psnr >= 100 for c in small), report.to_dict()


def test_synced_parity_detects_a_wrong_op(tmp_path):
    """Synchronizing the signs does not hide an op error: one binary conv of the demo model with
    its packed weights inverted fails both comparisons."""
    from scales_edge import load_checkpoint
    from scales_edge.demo import DEMO_CHECKPOINT

    model = load_checkpoint(DEMO_CHECKPOINT)
    proto = export_onnx(model, tmp_path / "demo.onnx")
    for t in proto.graph.initializer:
        if t.name.startswith("body.3.conv1") and t.name.endswith("packed_weight"):
            w = numpy_helper.to_array(t)
            valid = np.uint64((1 << model.config["num_feat"]) - 1)  # C = 40 < 64: one word, padding bits stay 0
            t.CopyFrom(numpy_helper.from_array(w ^ valid, t.name))
            break
    else:
        raise AssertionError("no packed weight of body.3.conv1")
    onnx.save(proto, tmp_path / "bad.onnx")
    report = check_parity(tmp_path / "bad.onnx", model, make_inputs(sizes=((24, 32),)), threads=1)
    assert not report.passed and report.cases
    for case in report.cases:
        assert case.sign_flips > 0 and case.psnr < 50, report.to_dict()
        assert case.synced_psnr is not None and case.synced_psnr < 50, report.to_dict()  # far below the bar
