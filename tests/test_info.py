"""`scales-edge info`: parameters, bytes and OPs (FP MACs + binary MACs / 64) of .onnx and .pth."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app
from scales_edge.export import export_onnx
from scales_edge.info import module_info

runner = CliRunner()


def invoke(args):
    """``CliRunner.invoke`` with one ORT thread for the commands that run a model."""
    args = [str(a) for a in args]
    cmd = next((a for a in args if not a.startswith("-")), "")
    if cmd in ("upscale", "validate") and "--threads" not in args and "--help" not in args:
        args += ["--threads", "1"]
    return runner.invoke(app, args)
torch.set_num_threads(1)

KEYS = {
    "model", "format", "arch", "scale", "channels", "binary", "binary_scope", "tail", "bytes_on_disk", "params", "int8_params",
    "weights_bytes",
    "input_size", "output_size", "ops", "ops_binary_layers", "macs", "ops_convention", "custom_ops",
    "op_domain", "op_domain_version",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("info")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=8, num_block=1, binary_scope="body")
    ckpt = save_checkpoint(model, d / "m.pth")
    export_onnx(model, d / "m.onnx")
    return d, ckpt, d / "m.onnx"


@pytest.fixture(scope="module")
def tiny_paper(tmp_path_factory):
    d = tmp_path_factory.mktemp("info_paper")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=8, num_block=1)
    ckpt = save_checkpoint(model, d / "m.pth")
    export_onnx(model, d / "m.onnx")
    return d, ckpt, d / "m.onnx"


def _info(path, tmp_path, *extra):
    out = tmp_path / f"{path.suffix[1:]}.json"
    res = invoke(["info", str(path), "--json", str(out), *extra])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text()), res.output


def test_info_counts_by_hand(tiny, tmp_path):
    d, ckpt, onnx_path = tiny
    info, text = _info(onnx_path, tmp_path, "--size", "20x10")
    assert set(info) == KEYS
    px = 20 * 10  # LR pixels
    # FP MACs per LR pixel: conv_first 3*8*9, spatial 1x1 branches 2*8, upconv1 8*32*9,
    # conv_hr and conv_last at 2x (4 pixels each): 4*8*8*9 + 4*8*3*9; plus the channel
    # branches' Conv1d (k=5 over 8 pooled values) once per image: 2*5*8.
    fp = px * (216 + 16 + 2304 + 2304 + 864) + 80
    binary = px * 2 * 8 * 8 * 9
    assert info["macs"] == {"fp": fp, "fp_in_binary_layers": px * 16 + 80, "binary": binary}
    assert info["ops"] == pytest.approx(fp + binary / 64)
    assert info["ops_binary_layers"] == pytest.approx(px * 16 + 80 + binary / 64)
    # Parameters as deployed: 2 binary convs of 8x8x3x3 one-bit weights; FP = head, tail,
    # branches (2 x (8+1) spatial, 2 x 5 channel) and each binary conv's beta, scale, bias (3 x 8).
    fp_params = (3 * 8 * 9 + 8) + (8 * 32 * 9 + 32) + (8 * 8 * 9 + 8) + (8 * 3 * 9 + 3) + 2 * 9 + 2 * 5 + 2 * 24
    assert info["params"] == {"binary": 2 * 576, "fp": fp_params, "total": 2 * 576 + fp_params}
    assert info["weights_bytes"] == 2 * 576 // 8 + 4 * fp_params
    assert info["bytes_on_disk"] == onnx_path.stat().st_size
    assert (info["arch"], info["scale"], info["channels"], info["binary"]) == ("srresnet", 2, 8, "scales")
    assert info["binary_scope"] == "body"
    assert info["input_size"] == [20, 10] and info["output_size"] == [40, 20]
    # the fused ScalesConv2d's version; its branches are counted as the version-1 ops it expands to
    assert info["custom_ops"] == 2 and info["op_domain"] == "scales_edge" and info["op_domain_version"] == 2
    assert "binary MACs / 64" in info["ops_convention"] and "OPs" in text


@pytest.mark.parametrize("kind", ["onnx", "pth"])
def test_info_counts_the_paper_scope_by_hand(tiny_paper, tmp_path, kind):
    """binary_scope="body+upsampler": upconv1 (8 -> 32 at LR, shuffled) and conv_hr (8 -> 8 at
    2x) are binary too; only conv_first and conv_last stay FP."""
    d, ckpt, onnx_path = tiny_paper
    info, text = _info(onnx_path if kind == "onnx" else ckpt, tmp_path, "--size", "20x10")
    px = 20 * 10
    # binary MACs per LR pixel: body 2*8*8*9, upconv1 8*32*9, conv_hr at 2x 4*8*8*9
    binary = px * (2 * 576 + 2304 + 4 * 576)
    # FP per LR pixel: conv_first 216, conv_last at 2x 4*8*3*9; spatial 1x1 branches: body 2*8,
    # upconv1 8 (at LR), conv_hr 4*8 (at 2x); the channel Conv1d (k=5 over 8 pooled values, one
    # per output feature also for upconv1) once per image: 4*5*8
    branches = px * (16 + 8 + 32) + 160
    fp = px * (216 + 864) + branches
    assert info["macs"] == {"fp": fp, "fp_in_binary_layers": branches, "binary": binary}
    assert info["ops"] == pytest.approx(fp + binary / 64)
    # beta, scale, bias: 3 x 8 per 8 -> 8 conv (3 of them), 8 + 32 + 32 for upconv1
    fp_params = (3 * 8 * 9 + 8) + (8 * 3 * 9 + 3) + 4 * 9 + 4 * 5 + 3 * 24 + 72
    assert info["params"] == {"binary": 3 * 576 + 2304, "fp": fp_params, "total": 3 * 576 + 2304 + fp_params}
    assert info["binary_scope"] == "body+upsampler" and "binary_scope=body+upsampler" in text
    assert info["custom_ops"] == 4 and info["op_domain_version"] == 3


def test_onnx_and_checkpoint_agree(tiny, tmp_path):
    d, ckpt, onnx_path = tiny
    a, _ = _info(onnx_path, tmp_path)
    b, _ = _info(ckpt, tmp_path)
    assert a["format"] == "onnx" and b["format"] == "pth"
    for key in KEYS - {"model", "format", "bytes_on_disk"}:
        assert a[key] == b[key], key
    assert a["input_size"] == [320, 180] and a["output_size"] == [640, 360]  # default --size


def test_fp_model_has_no_custom_ops(tmp_path):
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=8, num_block=1, binary="fp")
    export_onnx(model, tmp_path / "fp.onnx")
    info, text = _info(tmp_path / "fp.onnx", tmp_path)
    assert info["custom_ops"] == 0 and info["op_domain_version"] is None
    assert info["params"]["binary"] == 0 and info["macs"]["binary"] == 0
    assert info["ops"] == info["macs"]["fp"]
    assert "no scales_edge op domain" in text


def test_int8_tail_with_zero_filters_counts_the_checkpoints_parameters(tiny, tmp_path):
    """--tail int8 pads convs of fewer than 16 output channels with zero filters whose outputs a
    Split drops (here conv_first, conv_hr: 8, conv_last: 3); info counts the model's filters."""
    d, ckpt, _ = tiny
    from scales_edge.checkpoints import load_checkpoint

    model = load_checkpoint(ckpt)
    proto = export_onnx(model, tmp_path / "int8.onnx", tail="int8")
    padded = json.loads({p.key: p.value for p in proto.metadata_props}["scales_edge.quantization"])["padded_convs"]
    assert sorted(padded) == ["conv_first", "conv_hr", "conv_last"]
    a, _ = _info(tmp_path / "int8.onnx", tmp_path)
    b, _ = _info(ckpt, tmp_path)
    for key in KEYS - {"model", "format", "bytes_on_disk", "tail", "int8_params", "weights_bytes"}:
        assert a[key] == b[key], key
    modules = dict(model.named_modules())
    assert a["int8_params"] == sum(modules[n].weight.numel() for n in ("conv_first", "upconv1", "conv_hr", "conv_last"))
    assert a["weights_bytes"] == b["weights_bytes"] - 3 * a["int8_params"]


def test_filters_whose_outputs_nothing_reads_are_not_counted(tmp_path):
    """A conv's output channels that a Split sends nowhere are dead: neither their filters nor
    their MACs count (16 filters, of which 3 reach the output)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from scales_edge.info import onnx_info

    def model(read_all: bool):
        rng = np.random.default_rng(0)
        inits = [
            numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(16, np.float32), "b"),
            numpy_helper.from_array(np.array([3, 13], np.int64), "parts"),
        ]
        nodes = [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Split", ["conv", "parts"], ["output", "rest"], axis=1),
        ]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in (["output", "rest"] if read_all else ["output"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])], outs, inits)
        path = tmp_path / f"split_{read_all}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return onnx_info(path, (10, 20))

    dead, live = model(False), model(True)
    assert dead["params"]["fp"] == 3 * 27 + 3 and dead["macs"]["fp"] == 200 * 3 * 27
    assert live["params"]["fp"] == 16 * 27 + 16 and live["macs"]["fp"] == 200 * 16 * 27


def test_paper_scale_numbers():
    """SRResNet x4, 16 blocks, on PyTorch's meta device (no computation).

    Paper (SCALES, deployment table): FP SRResNet x4 has 1.52M parameters and 64.98G OPs; our
    count matches the parameters exactly and the OPs for a 160x160 LR input (25,600 px, within
    0.1%); the paper does not state that size, and at 320x180 the count is 146.1G MACs."""
    fp = module_info(build_model("srresnet", scale=4, num_feat=64, binary="fp"), (160, 160))
    assert fp["params"]["fp"] == 1_517_571
    assert fp["ops"] == pytest.approx(64.98e9, rel=2e-3)
    s64 = module_info(build_model("srresnet", scale=4, num_feat=64, binary_scope="body"), (180, 320))
    assert s64["params"]["binary"] == 32 * 64 * 64 * 9
    assert s64["macs"]["binary"] == 32 * 64 * 64 * 9 * 180 * 320
    assert s64["ops"] == pytest.approx(79.31e9, rel=1e-3)  # FP head and tail dominate
    assert s64["ops_binary_layers"] == pytest.approx(1.18e9, rel=1e-2)  # paper's ablation table: 1.74G
    s40 = module_info(build_model("srresnet", scale=4, num_feat=40, binary_scope="body"), (180, 320))
    assert s40["ops"] == pytest.approx(31.41e9, rel=1e-3)
    assert s40["ops_binary_layers"] == pytest.approx(0.488e9, rel=1e-2)


def test_paper_scope_ops_at_160x160():
    """The paper's SCALES SRResNet x4 OPs (1.74G at 64 channels, 0.83G at 40; 160x160 LR input, as
    its FP figure) come from binarizing every conv but the first and the last. Ours: binary MACs
    (body, upconv1, upconv2, conv_hr) / 64 + conv_first and conv_last + the re-scaling branches;
    without the branches 1.755G / 0.862G (docs/scope.md says how the two counts differ)."""
    px = 160 * 160
    for width, paper in ((64, 1.74e9), (40, 0.83e9)):
        info = module_info(build_model("srresnet", scale=4, num_feat=width), (160, 160))
        c = width
        binary = px * (32 * c * c * 9 + 4 * c * c * 9) + 4 * px * 4 * c * c * 9 + 16 * px * c * c * 9
        assert info["macs"]["binary"] == binary
        head_tail = px * 3 * c * 9 + 16 * px * c * 3 * 9
        spatial = px * c * 33 + 4 * px * c + 16 * px * c  # 1x1 C -> 1 at each binary conv's pixels
        assert info["macs"]["fp"] - info["macs"]["fp_in_binary_layers"] == head_tail
        assert info["macs"]["fp_in_binary_layers"] == spatial + 35 * 5 * c
        without_branches = head_tail + binary / 64
        assert without_branches == pytest.approx(paper, rel=0.04)
        assert info["ops"] == pytest.approx(without_branches + spatial + 35 * 5 * c)
    assert module_info(build_model("srresnet", scale=4), (160, 160))["ops"] == pytest.approx(1.842e9, rel=1e-3)
    assert module_info(build_model("srresnet", scale=4, num_feat=40), (160, 160))["ops"] == pytest.approx(0.916e9, rel=1e-3)


#: Small Transformers (window 4): SwinIR-light with shifted windows, HAT-S with CAB and OCAB.
SMALL_TRANSFORMERS = {
    "swinir_light": dict(embed_dim=12, depths=[2, 1], num_heads=2, window_size=4),
    "hat_s": dict(embed_dim=12, depths=[2], num_heads=2, window_size=4, compress_ratio=3, squeeze_factor=4, upsample_feat=8),
}


@pytest.mark.parametrize(
    "arch,binary,fuse",
    [("swinir_light", "scales", True), ("swinir_light", "scales", False), ("swinir_light", "bibert", True),
     ("swinir_light", "fp", True), ("hat_s", "scales", True), ("hat_s", "bibert", True)],
)
def test_transformer_onnx_and_checkpoint_agree(tmp_path, arch, binary, fuse):
    """A Transformer's .onnx sizes its windows from the input's shape at run time (dynamic H, W):
    info fixes the input to --size and folds that shape arithmetic. It must give exactly the
    checkpoint's counts, attention products included, also at a size that is not a window multiple
    (both count the padded 24 x 40 map). All weights are perturbed: the exporter's simplifier drops
    an Add of an all-zero bias (freshly initialised linears), whose parameters an .onnx then lacks."""
    torch.manual_seed(0)
    model = build_model(arch, scale=3, binary=binary, **SMALL_TRANSFORMERS[arch])
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(torch.randn_like(prm) * 0.05)
    ckpt = save_checkpoint(model, tmp_path / "m.pth")
    export_onnx(model, tmp_path / "m.onnx", fuse=fuse)
    a, text = _info(tmp_path / "m.onnx", tmp_path, "--size", "37x23")
    b, _ = _info(ckpt, tmp_path, "--size", "37x23")
    for key in KEYS - {"model", "format", "bytes_on_disk", "op_domain_version"}:
        assert a[key] == b[key], key
    assert a["output_size"] == [111, 69] and a["macs"]["fp"] > 0
    if binary != "fp":
        assert a["macs"]["binary"] > 0 and a["params"]["binary"] > 0
    if binary == "scales":
        assert a["macs"]["fp_in_binary_layers"] > 0


def test_transformer_ops_by_hand(tmp_path):
    """FP SwinIR-light (12 ch, 2 blocks, 2 heads, window 4, x2) at 8 x 8 px = 4 windows of 16
    tokens: every linear, both attention products and every convolution, counted by hand. A 7 x 6
    input is padded to 8 x 8 and costs the same."""
    torch.manual_seed(0)
    model = build_model("swinir_light", scale=2, binary="fp", embed_dim=12, depths=[2], num_heads=2, window_size=4)
    export_onnx(model, tmp_path / "fp.onnx")
    px, c, windows, heads, n, d = 64, 12, 4, 2, 16, 6
    block = px * c * 3 * c + 2 * windows * heads * n * n * d + px * c * c + px * c * 2 * c + px * 2 * c * c
    convs = px * 3 * c * 9 + 2 * px * c * c * 9 + px * c * (4 * 3) * 9  # first; RSTB + after-body; upsample
    for size in ("8x8", "7x6"):
        info, _ = _info(tmp_path / "fp.onnx", tmp_path, "--size", size)
        assert info["macs"] == {"fp": 2 * block + convs, "fp_in_binary_layers": 0, "binary": 0}, size
    assert module_info(model, (6, 7))["macs"]["fp"] == 2 * block + convs


def test_info_errors(tiny, tmp_path):
    d, ckpt, onnx_path = tiny
    res = invoke(["info", str(tmp_path / "nope.onnx")])
    assert res.exit_code == 2 and "no such file" in res.output and "Traceback" not in res.output
    junk = tmp_path / "junk.onnx"
    junk.write_text("not protobuf")
    res = invoke(["info", str(junk)])
    assert res.exit_code == 2 and "junk.onnx" in res.output
    junk_pth = tmp_path / "junk.pth"
    junk_pth.write_text("not a checkpoint")
    res = invoke(["info", str(junk_pth)])
    assert res.exit_code == 2 and "junk.pth" in res.output and "checkpoint" in res.output
    res = invoke(["info", str(onnx_path), "--size", "wide"])
    assert res.exit_code == 2 and "WxH" in res.output
