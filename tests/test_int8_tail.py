"""``export --tail int8``: the FP head and tail quantized (ONNX Runtime QDQ), the binary body untouched.

The reference for the quantized graph is PyTorch: the same model with each quantized convolution's
input and output fake-quantized (``round(x / s) + z``, clamped to uint8) with the scales and zero
points of the exported graph and its weights replaced by their int8 values times their per-channel
scales (a conv the export pads with zero filters keeps its own: the reference has no padding).
ONNX Runtime's integer kernels must reproduce that network; the FP PyTorch model must stay
within the INT8 parity bar of it, and clearly below the 60 dB an FP32 tail reaches.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app
from scales_edge.demo import HELD_OUT
from scales_edge.export import ExportError, QuantizeError, export_onnx
from scales_edge.export.quantize import calibration_crops, calibration_photos, head_tail_convs
from scales_edge.runtime import make_session
from scales_edge.runtime.validate import INT8_PARITY_PSNR_DB, PARITY_PSNR_DB, image_psnr, make_inputs
from _opslib import require_installed_library

require_installed_library()
torch.set_num_threads(1)
runner = CliRunner()

HEAD_TAIL = ["conv_first", "upconv1", "upconv2", "conv_hr", "conv_last"]


def _small_srresnet(seed: int = 0, scope: str = "body"):
    """SRResNet x4, 16 channels, 2 blocks, by default with the FP upsampling tail that most tests
    here inspect (binary_scope="body"). ``conv_last`` is scaled up so the residual it adds to the
    bilinear base has an image's amplitude, as in a trained model (at initialisation it is ~0 and
    so would be any quantization error)."""
    torch.manual_seed(seed)
    model = build_model("srresnet", scale=4, num_feat=16, num_block=2, binary_scope=scope).eval()
    with torch.no_grad():
        model.conv_last.weight.mul_(16)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("int8")
    model = _small_srresnet()
    fp32 = export_onnx(model, d / "fp32.onnx")
    int8 = export_onnx(model, d / "int8.onnx", tail="int8")
    return d, model, fp32, int8


def _inits(proto):
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def _links(proto):
    """The graph's initializers (arrays), each tensor's producer node, each tensor's reader nodes."""
    readers: dict[str, list] = {}
    for n in proto.graph.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    return _inits(proto), {o: n for n in proto.graph.node for o in n.output}, readers


def test_head_and_tail_layers_are_found_by_execution_order():
    assert head_tail_convs(_small_srresnet()) == (["conv_first"], ["upconv1", "upconv2", "conv_hr", "conv_last"])
    rdn = build_model("rdn", scale=2, num_feat=8, num_block=2, num_layer=2, growth=4, binary_scope="body")
    assert head_tail_convs(rdn) == (["sfe1", "sfe2"], ["upsample.0", "conv_last"])
    rcan = build_model("rcan", scale=2, num_feat=8, num_group=1, num_block=1, squeeze_factor=4, binary_scope="body")
    head, tail = head_tail_convs(rcan)  # the channel attention's FP convs are body, not tail
    assert head == ["conv_first"] and tail == ["upsample.0", "conv_last"]
    # the paper's scope: only the first and the last conv are FP, so only they are quantized
    assert head_tail_convs(_small_srresnet(scope="body+upsampler")) == (["conv_first"], ["conv_last"])
    rdn = build_model("rdn", scale=4, num_feat=8, num_block=2, num_layer=2, growth=4)
    assert head_tail_convs(rdn) == (["sfe1"], ["conv_last"])


def test_quantize_dequantize_only_around_head_and_tail(exported):
    _, _, fp32, int8 = exported
    g = int8.graph
    producer = {o: n for n in g.node for o in n.output}
    qdq = {"QuantizeLinear", "DequantizeLinear"}
    assert sum(n.op_type == "QuantizeLinear" for n in g.node) >= 5
    assert not any(n.op_type.startswith("QLinear") for n in g.node)  # QDQ format: ORT fuses at load
    # The convolutions that read quantized weights are exactly the head and tail.
    quantized_convs = [n for n in g.node if n.op_type == "Conv" and producer.get(n.input[1], n).op_type == "DequantizeLinear"]
    assert sorted(n.name for n in quantized_convs) == sorted(f"/{name}/Conv" for name in HEAD_TAIL)
    for conv in quantized_convs:  # int8 weights, one scale per output channel, int32 bias
        wq = producer[conv.input[1]]
        inits = _inits(int8)
        assert inits[wq.input[0]].dtype == np.int8
        assert inits[wq.input[1]].shape == (inits[wq.input[0]].shape[0],)
        assert inits[producer[conv.input[2]].input[0]].dtype == np.int32
        assert inits[producer[conv.input[0]].input[2]].dtype == np.uint8  # uint8 activations
    # The body (our ops and every node of body.*) is unchanged, node for node and weight for weight,
    # and none of it reads a quantized tensor.
    body = [n for n in fp32.graph.node if n.domain == "scales_edge" or "/body/" in n.name]
    assert any(n.domain == "scales_edge" for n in body)
    new_nodes = {n.SerializeToString() for n in g.node}
    fp_inits, q_inits = _inits(fp32), _inits(int8)
    for n in body:
        assert n.SerializeToString() in new_nodes, n.name
        for t in n.input:
            if t in fp_inits:
                np.testing.assert_array_equal(q_inits[t], fp_inits[t])
    body_names = {n.name for n in body}
    for n in g.node:
        if n.name in body_names:
            assert not any(producer.get(t) is not None and producer[t].op_type in qdq for t in n.input), n.name
    assert sum(n.domain == "scales_edge" for n in g.node) == sum(n.domain == "scales_edge" for n in fp32.graph.node)
    onnx.checker.check_model(int8)


def test_metadata_records_the_tail(exported):
    _, _, fp32, int8 = exported
    meta = {p.key: p.value for p in int8.metadata_props}
    assert meta["scales_edge.tail"] == "int8"
    q = json.loads(meta["scales_edge.quantization"])
    assert q["head"] == ["conv_first"] and q["tail"] == HEAD_TAIL[1:]
    assert q["format"] == "QDQ" and q["activations"] == "uint8"
    assert q["calibration_photos"] and not {name.rsplit(".", 1)[0] for name in q["calibration_photos"]} & set(HELD_OUT)
    assert {p.key: p.value for p in fp32.metadata_props}["scales_edge.tail"] == "fp32"


def _fake_quant(x, s, z):
    return (torch.clamp(torch.round(x / s) + z, 0, 255) - z) * s


def _channels_last_blocksize(proto, tensor):
    """The blocksize r if ``tensor`` (a conv's uint8 output) goes into a pixel shuffle written in
    channels-last layout, else 0: Transpose(0,2,3,1) -> Reshape [0,0,0,r,r,-1] -> Transpose(0,1,3,2,4,5)
    -> Reshape -> Transpose(0,3,1,2)."""
    inits, _, readers = _links(proto)

    def perm(n):
        return [int(v) for a in n.attribute if a.name == "perm" for v in a.ints]

    first = [n for n in readers.get(tensor, []) if n.op_type == "Transpose"]
    if not first:
        return 0
    assert perm(first[0]) == [0, 2, 3, 1]
    split = next(n for n in readers[first[0].output[0]] if n.op_type == "Reshape")
    dims = inits[split.input[1]].tolist()
    assert dims[:3] == [0, 0, 0] and dims[3] == dims[4] and dims[5] == -1
    shuffle = readers[split.output[0]][0]
    assert perm(shuffle) == [0, 1, 3, 2, 4, 5]
    merge = readers[shuffle.output[0]][0]
    assert merge.op_type == "Reshape" and perm(readers[merge.output[0]][0]) == [0, 3, 1, 2]
    return int(dims[3])


def _fake_quantized_torch(model, proto):
    """``model`` with the head/tail convolutions quantized as ``proto`` says (see the module doc)."""
    g = proto.graph
    inits, producer, consumers = _links(proto)
    modules = dict(model.named_modules())
    for name in HEAD_TAIL:
        conv = next(n for n in g.node if n.name == f"/{name}/Conv")
        xq, wq, bq = (producer[t] for t in conv.input[:3])
        yq = next(n for n in consumers[conv.output[0]] if n.op_type == "QuantizeLinear")
        w = inits[wq.input[0]].astype(np.float32) * inits[wq.input[1]].reshape(-1, 1, 1, 1)
        b = inits[bq.input[0]].astype(np.float64) * inits[bq.input[1]]
        r = _channels_last_blocksize(proto, yq.output[0])
        if r:  # its output channels are in DCR order ((i*r + j)*C + c); PyTorch's pixel shuffle reads CRD
            w = w.reshape(r * r, -1, *w.shape[1:]).swapaxes(0, 1).reshape(w.shape)
            b = b.reshape(r * r, -1).T.reshape(-1)
        mod = modules[name]
        m = mod.out_channels  # the graph's conv may have zero filters after these (see test_narrow_conv_...)
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(w[:m]))
            mod.bias.copy_(torch.from_numpy(b[:m].astype(np.float32)))
        sx, zx = float(inits[xq.input[1]]), int(inits[xq.input[2]])
        sy, zy = float(inits[yq.input[1]]), int(inits[yq.input[2]])
        mod.register_forward_pre_hook(lambda _m, a, s=sx, z=zx: (_fake_quant(a[0], s, z),))
        mod.register_forward_hook(lambda _m, a, out, s=sy, z=zy: _fake_quant(out, s, z))
    return model


def test_ort_runs_the_quantized_network_and_stays_near_the_fp_model(exported):
    _, model, fp32, int8 = exported
    reference = _fake_quantized_torch(_small_srresnet(), int8)
    s8, s32 = make_session(int8, threads=1), make_session(fp32, threads=1)
    photo = [(name, x) for name, x in make_inputs(((48, 64),)) if not name.startswith("random")]
    assert photo, "needs a packaged photo"
    for name, x in make_inputs(((48, 64),)):
        with torch.no_grad():
            fp = model(torch.from_numpy(x)).numpy()
            fq = reference(torch.from_numpy(x)).numpy()
        out8 = s8.run(None, {"input": x})[0]
        # ORT's integer kernels compute the QDQ network (a rounding tie may differ: one step)
        assert image_psnr(out8, fq) > 65, name
        # and quantization really happened: the FP tail matches PyTorch, the INT8 one is near
        assert image_psnr(s32.run(None, {"input": x})[0], fp) > PARITY_PSNR_DB, name
        assert INT8_PARITY_PSNR_DB < image_psnr(out8, fp) < 55, name


def test_tail_runs_in_nhwc_uint8_from_upconv1_to_conv_last(exported, tmp_path):
    """In the graph ORT runs, the tail is NHWC QLinearConvs with nothing in float and no NCHW round
    trip between them: the pixel shuffles are uint8 channels-last Transposes of r*C-byte runs (the
    export writes them so, with the upconvs' filters in DCR order), not DepthToSpace between
    Transposes to and from NCHW (~10% of the x4 model's time at 720p on x86 AVX2)."""
    _, _, _, int8 = exported
    meta = {p.key: p.value for p in int8.metadata_props}
    assert json.loads(meta["scales_edge.quantization"])["pixel_shuffles"].startswith("2 channels-last")
    assert not any(n.op_type == "DepthToSpace" for n in int8.graph.node)
    path = tmp_path / "optimized.onnx"
    make_session(int8, threads=1, optimized_model=str(path))
    g = onnx.load(str(path)).graph
    convs = [i for i, n in enumerate(g.node) if n.op_type == "QLinearConv"]
    assert len(convs) == len(HEAD_TAIL)
    for i in convs:
        assert g.node[i].domain == "com.microsoft"
        assert {a.name: a.i for a in g.node[i].attribute}.get("channels_last") == 1
    producer = {o: n for n in g.node for o in n.output}
    # walk back from conv_last's input to upconv1: every node between reads one uint8 tensor
    between = []
    node = producer[g.node[convs[-1]].input[0]]
    while node is not g.node[convs[1]]:
        between.append(node)
        node = producer[node.input[0]]
    ops = sorted(n.op_type for n in between)
    assert ops == sorted(["QLinearConv"] * 2 + ["QLinearLeakyRelu"] * 3 + ["Reshape"] * 4 + ["Transpose"] * 2), ops
    for n in between:
        if n.op_type == "Transpose":
            assert [int(v) for a in n.attribute if a.name == "perm" for v in a.ints] == [0, 1, 3, 2, 4, 5]


def _unpadded_export(model, path, monkeypatch):
    """``model`` exported with --tail int8 but without the zero filters (the same calibration)."""
    import scales_edge.export.quantize as quantize

    with monkeypatch.context() as m:
        m.setattr(quantize, "_pad_narrow_convs", lambda *_a, **_k: {})
        return export_onnx(model, path, tail="int8")


def test_narrow_conv_last_gets_zero_filters_up_to_16_channels(exported, tmp_path, monkeypatch):
    """conv_last (3 output channels) has 13 zero filters so that ORT's QLinearConv runs MLAS' fast
    kernel (it needs >= 16 output channels; below, a whole-image im2col + GEMM twice as slow),
    and a Split drops their outputs from its uint8 output. The values are those of the unpadded
    export, bit for bit; the other convs (16 and more outputs) are as they were."""
    d, model, _, int8 = exported
    g = int8.graph
    inits, producer, readers = _links(int8)
    meta = json.loads({p.key: p.value for p in int8.metadata_props}["scales_edge.quantization"])
    assert list(meta["padded_convs"]) == ["conv_last"] and meta["padded_convs"]["conv_last"].startswith("3 -> 16")
    widths = {}
    for name in HEAD_TAIL:
        conv = next(n for n in g.node if n.name == f"/{name}/Conv")
        wq, bq = producer[conv.input[1]], producer[conv.input[2]]
        widths[name] = inits[wq.input[0]].shape[0]
        if name != "conv_last":
            continue
        w, ws, wz = (inits[t] for t in wq.input)
        b, bs, bz = (inits[t] for t in bq.input)
        assert w.shape == (16, 16, 3, 3) and w.dtype == np.int8 and not w[3:].any() and w[:3].any()
        assert ws.shape == bs.shape == (16,) and (ws > 0).all() and (bs > 0).all()
        assert not wz.any() and not bz[3:].any() and not b[3:].any()
        (q,) = readers[conv.output[0]]
        (split,) = readers[q.output[0]]
        assert (q.op_type, split.op_type) == ("QuantizeLinear", "Split")
        assert {a.name: a.i for a in split.attribute}["axis"] == 1 and inits[split.input[1]].tolist() == [3, 13]
        kept, dropped = split.output
        assert [n.op_type for n in readers[kept]] == ["DequantizeLinear"]
        assert dropped not in readers and dropped not in {o.name for o in g.output}
    assert widths == {"conv_first": 16, "upconv1": 64, "upconv2": 64, "conv_hr": 16, "conv_last": 16}

    # ORT fuses it into one QLinearConv of 16 filters, followed by the Split
    path = tmp_path / "optimized.onnx"
    make_session(int8, threads=1, optimized_model=str(path))
    opt = onnx.load(str(path)).graph
    opt_inits = {t.name: t for t in opt.initializer}
    conv = next(n for n in opt.node if n.op_type == "QLinearConv" and n.name.startswith("/conv_last/"))
    assert list(opt_inits[conv.input[3]].dims) == [16, 16, 3, 3]
    assert any(n.op_type == "Split" for n in opt.node)

    # the same values as without the padding, bit for bit
    plain = _unpadded_export(model, tmp_path / "unpadded.onnx", monkeypatch)
    assert not any(n.op_type == "Split" for n in plain.graph.node)
    s_pad, s_plain = make_session(int8, threads=1), make_session(plain, threads=1)
    for name, x in make_inputs(((48, 64), (23, 37))):
        np.testing.assert_array_equal(s_pad.run(None, {"input": x})[0], s_plain.run(None, {"input": x})[0], err_msg=name)


def test_tiles_equal_the_whole_image(exported):
    """Tiling follows the channels-last pixel shuffles (a DepthToSpace to runtime.tiling) and the
    Split that drops conv_last's zero filters."""
    from scales_edge.runtime.infer import Upscaler

    d, _, _, int8 = exported
    assert any(n.op_type == "Split" for n in int8.graph.node)
    up = Upscaler(str(d / "int8.onnx"), threads=1)
    fp = Upscaler(str(d / "fp32.onnx"), threads=1).runner.geometry
    assert (up.runner.geometry.scale, up.runner.geometry.radius) == (fp.scale, fp.radius) == (4, 7)
    x = next(x for name, x in make_inputs(((40, 56),)) if not name.startswith("random"))
    whole = up.run_tensor(x)
    tiled = up.runner.run_array(x, tile=16, overlap=up.auto_overlap(16))
    assert tiled.shape == whole.shape == (1, 3, 160, 224)
    assert image_psnr(tiled, whole) > 60


def test_input_range_is_calibrated_on_photos(exported):
    """MinMax calibration: the graph input's uint8 scale is the brightest calibration pixel / 255."""
    _, model, _, int8 = exported
    inits = _inits(int8)
    producer = {o: n for n in int8.graph.node for o in n.output}
    conv = next(n for n in int8.graph.node if n.name == "/conv_first/Conv")
    dq = producer[conv.input[0]]
    brightest = max(float(c.max()) for c in calibration_crops(calibration_photos(), 4))
    assert float(inits[dq.input[1]]) == pytest.approx(brightest / 255, rel=1e-6)
    assert int(inits[dq.input[2]]) == 0


def test_int8_file_is_smaller(exported):
    d, *_ = exported
    assert (d / "int8.onnx").stat().st_size < 0.7 * (d / "fp32.onnx").stat().st_size


def test_calibration_defaults_exclude_held_out_and_are_deterministic(tmp_path, tiny_photo_dir):
    names = {p.stem for p in calibration_photos()}
    assert names and not names & set(HELD_OUT)
    a = list(calibration_crops(calibration_photos(), 4, count=5, size=16))
    b = list(calibration_crops(calibration_photos(), 4, count=5, size=16))
    assert len(a) == 5 and all(x.shape == (1, 3, 16, 16) and x.dtype == np.float32 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # --calib DIR: the user's photos (48 px HR at x4: 12 px LR crops, used whole)
    crops = list(calibration_crops(calibration_photos(tiny_photo_dir), 4, count=3))
    assert [c.shape for c in crops] == [(1, 3, 12, 12)] * 3


def test_fp32_reference_body_with_int8_tail(exported, tmp_path):
    _, model, _, int8 = exported
    ref = export_onnx(model, tmp_path / "ref_int8.onnx", binary_as="fp32-reference", tail="int8")
    assert not any(n.domain == "scales_edge" for n in ref.graph.node)
    assert {p.key: p.value for p in ref.metadata_props}["scales_edge.tail"] == "int8"
    x = next(x for name, x in make_inputs(((32, 40),)) if not name.startswith("random"))
    with torch.no_grad():
        fp = model(torch.from_numpy(x)).numpy()
    out_ref = make_session(ref, register_ops=False, threads=1).run(None, {"input": x})[0]
    out_custom = make_session(int8, threads=1).run(None, {"input": x})[0]
    assert image_psnr(out_ref, fp) > INT8_PARITY_PSNR_DB
    assert image_psnr(out_ref, out_custom) > 50  # same calibration, same quantized layers


@pytest.mark.parametrize(
    "arch, cfg",
    [
        ("srresnet", dict(scale=4, num_feat=16, num_block=1)),  # paper scope: conv_first, conv_last
        ("edsr", dict(scale=2, num_feat=16, num_block=1)),
        ("edsr_l", dict(scale=3, num_feat=24, num_block=1)),
        # untrained RDN: its quantized head feeds a binary sfe2 and (long skip) the binary
        # upsampler in the paper scope, 28.8 dB (runtime.validate's INT8 bar is 30); body scope here
        ("rdn", dict(scale=2, num_feat=16, num_block=2, num_layer=2, growth=8, binary_scope="body")),
        ("rcan", dict(scale=4, num_feat=16, num_group=1, num_block=1, squeeze_factor=4)),
        ("swinir", dict(scale=2, embed_dim=12, depths=[1], num_heads=[2], window_size=8, upsampler="pixelshuffledirect")),
    ],
)
def test_every_arch_with_a_binary_body(arch, cfg, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, **cfg).eval()
    head, tail = head_tail_convs(model)
    proto = export_onnx(model, tmp_path / "m.onnx", tail="int8")
    producer = {o: n for n in proto.graph.node for o in n.output}
    quantized = [n for n in proto.graph.node if n.op_type == "Conv" and producer.get(n.input[1], n).op_type == "DequantizeLinear"]
    assert len(quantized) == len(head) + len(tail)
    fused = make_session(proto, threads=1)
    # the same graph with no optimization: Q, DQ and Conv one by one in float, no integer kernels
    plain = make_session(proto, threads=1, optimization="disable")
    for name, x in make_inputs(((24, 24),)):
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out = fused.run(None, {"input": x})[0]
        assert image_psnr(out, plain.run(None, {"input": x})[0]) > 60, name
        assert INT8_PARITY_PSNR_DB < image_psnr(out, ref) < 70, name


def test_bad_tail_and_unsupported_models_are_clear_errors(tmp_path):
    model = build_model("srresnet", scale=2, num_feat=8, num_block=1)
    with pytest.raises(ExportError, match="tail must be one of fp32, int8"):
        export_onnx(model, tmp_path / "x.onnx", tail="int4")
    with pytest.raises(ExportError, match="calibration photos are for tail='int8'"):
        export_onnx(model, tmp_path / "x.onnx", calib=tmp_path)
    fp_model = build_model("srresnet", scale=2, num_feat=8, num_block=1, binary="fp")
    with pytest.raises(QuantizeError, match="no binary layers"):
        export_onnx(fp_model, tmp_path / "x.onnx", tail="int8")
    with pytest.raises(QuantizeError, match="opset >= 13"):
        export_onnx(model, tmp_path / "x.onnx", tail="int8", opset=12)
    ckpt = save_checkpoint(model, tmp_path / "m.pth")
    fp_ckpt = save_checkpoint(fp_model, tmp_path / "fp.pth")
    for args, message in [
        ([str(ckpt), str(tmp_path / "o.onnx"), "--tail", "int4"], "--tail must be one of fp32, int8, not 'int4'"),
        ([str(ckpt), str(tmp_path / "o.onnx"), "--calib", str(tmp_path)], "--calib chooses the calibration photos"),
        ([str(fp_ckpt), str(tmp_path / "o.onnx"), "--tail", "int8"], "has no binary layers (binary=fp)"),
        ([str(ckpt), str(tmp_path / "o.onnx"), "--tail", "int8", "--calib", str(tmp_path / "none")], "does not exist"),
    ]:
        res = runner.invoke(app, ["export", *args])
        assert res.exit_code == 2, res.output
        assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_cli_export_with_own_photos_then_info_and_validate(tmp_path, tiny_photo_dir):
    model = _small_srresnet()
    ckpt = save_checkpoint(model, tmp_path / "m.pth")
    out = tmp_path / "m_int8.onnx"
    res = runner.invoke(app, ["export", str(ckpt), str(out), "--tail", "int8", "--calib", str(tiny_photo_dir)])
    assert res.exit_code == 0, res.output
    assert "INT8 head/tail" in res.output
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert sorted(json.loads(meta["scales_edge.quantization"])["calibration_photos"]) == sorted(
        p.name for p in tiny_photo_dir.iterdir()
    )

    res = runner.invoke(app, ["info", str(out), "--json", str(tmp_path / "info.json")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "info.json").read_text())
    modules = dict(model.named_modules())
    assert info["tail"] == "int8" and "INT8" in res.output
    assert info["int8_params"] == sum(modules[n].weight.numel() for n in HEAD_TAIL)
    fp_info_path = tmp_path / "fp.json"
    export_onnx(model, tmp_path / "fp.onnx")
    assert runner.invoke(app, ["info", str(tmp_path / "fp.onnx"), "--json", str(fp_info_path)]).exit_code == 0
    fp_info = json.loads(fp_info_path.read_text())
    assert info["params"] == fp_info["params"] and fp_info["tail"] == "fp32"
    assert info["weights_bytes"] == fp_info["weights_bytes"] - 3 * info["int8_params"]

    # parity: the INT8 bar, said so
    res = runner.invoke(app, ["validate", str(out), "--ckpt", str(ckpt), "--size", "40x32", "--threads", "1",
                              "--json", str(tmp_path / "parity.json")])
    assert res.exit_code == 0, res.output
    assert "INT8 head/tail" in res.output and f"threshold {INT8_PARITY_PSNR_DB:g} dB" in res.output
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["tail"] == "int8" and parity["threshold_db"] == INT8_PARITY_PSNR_DB
    assert INT8_PARITY_PSNR_DB < parity["min_psnr_db"] < PARITY_PSNR_DB
    res = runner.invoke(app, ["validate", str(out), "--ckpt", str(ckpt), "--size", "40x32", "--threads", "1",
                              "--threshold", "60"])
    assert res.exit_code == 1 and "FAIL" in res.output

    # quality on photos beside the FP PyTorch model: the cost is explicit
    res = runner.invoke(app, ["validate", str(out), "--images", str(tiny_photo_dir), "--ckpt", str(ckpt),
                              "--threads", "1", "--json", str(tmp_path / "q.json")])
    assert res.exit_code == 0, res.output
    assert "INT8 head/tail cost" in res.output
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["tail"] == "int8"
    m = q["mean"]
    assert q["int8_cost"]["psnr_db"] == pytest.approx(m["torch_psnr"] - m["psnr"])
    assert q["int8_cost"]["ssim"] == pytest.approx(m["torch_ssim"] - m["ssim"])
    for row in q["images"]:
        assert row["torch_minus_ort_psnr"] == pytest.approx(row["torch_psnr"] - row["psnr"])
    assert abs(q["int8_cost"]["psnr_db"]) < 1.0
