"""Export to the scales_edge domain: packing, graph structure, metadata, the numpy reference."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from scales_edge.export import DOMAIN, DOMAIN_VERSION, export_onnx, pack_conv_weight, pack_linear_weight, pack_signs
from scales_edge.models import build_model
from scales_edge.nn import binary_layers

torch.set_num_threads(1)


def _bits_by_hand(signs: np.ndarray) -> np.ndarray:
    """Independent packing: word w = sum over j of (s[64w+j] < 0) << j, built with Python ints."""
    flat = signs.reshape(-1, signs.shape[-1])
    k = flat.shape[1]
    words = (k + 63) // 64
    out = np.zeros((flat.shape[0], words), dtype=np.uint64)
    for r in range(flat.shape[0]):
        for w in range(words):
            v = 0
            for j in range(64):
                idx = 64 * w + j
                if idx < k and flat[r, idx] < 0:
                    v |= 1 << j
            out[r, w] = np.uint64(v)
    return out.reshape(signs.shape[:-1] + (words,))


@pytest.mark.parametrize("k", [1, 5, 63, 64, 65, 130, 300])
def test_pack_signs_matches_bit_definition(k):
    rng = np.random.default_rng(k)
    signs = np.where(rng.random((3, 4, k)) < 0.5, -1.0, 1.0)
    np.testing.assert_array_equal(pack_signs(signs), _bits_by_hand(signs))


def test_pack_signs_zero_is_positive_and_padding_bits_zero():
    packed = pack_signs(np.array([0.0, -0.0, -1.0, 2.0, -3.0]))
    assert packed.dtype == np.uint64 and packed.shape == (1,)
    assert int(packed[0]) == 0b10100  # only elements 2 and 4 are negative; bits 5..63 are 0


def test_pack_conv_weight_layout():
    rng = np.random.default_rng(0)
    w = np.where(rng.random((5, 70, 3, 3)) < 0.5, -1.0, 1.0)
    packed = pack_conv_weight(w)
    assert packed.shape == (5, 3, 3, 2)
    # Word layout [m, i, j, word]: bit c%64 of word c//64 is the sign of w[m, c, i, j].
    for m, c, i, j in [(0, 0, 0, 0), (4, 69, 2, 1), (2, 64, 1, 2), (3, 63, 0, 2)]:
        bit = (int(packed[m, i, j, c // 64]) >> (c % 64)) & 1
        assert bit == (1 if w[m, c, i, j] < 0 else 0)
    assert pack_linear_weight(w[:, :, 0, 0]).shape == (5, 2)
    with pytest.raises(ValueError):
        pack_conv_weight(w[:, :, 0, 0])


def _tiny(arch, binary="scales", scale=2, **kw):
    cfgs = {
        "srresnet": dict(num_feat=40, num_block=2),
        "edsr": dict(num_feat=40, num_block=2),
        "rdn": dict(num_feat=16, num_block=2, num_layer=2, growth=8),
        "rcan": dict(num_feat=48, num_group=1, num_block=2, squeeze_factor=8),
    }
    torch.manual_seed(0)
    return build_model(arch, binary=binary, scale=scale, **{**cfgs[arch], **kw}).eval()


@pytest.mark.parametrize("fuse", [True, False])
def test_export_structure_and_metadata(tmp_path, fuse):
    model = _tiny("srresnet", scale=4, binary_scope="body")
    path = tmp_path / "m.onnx"
    proto = export_onnx(model, path, fuse=fuse)
    onnx.checker.check_model(onnx.load(path))
    ours = [n for n in proto.graph.node if n.domain == DOMAIN]
    layers = dict(binary_layers(model))
    assert [n.name for n in ours] == list(layers)  # one op per binary layer, named after it
    version = 2 if fuse else 1  # the lowest version that has every op used
    assert (DOMAIN, version) in {(i.domain, i.version) for i in proto.opset_import}
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in ours:
        assert node.op_type == ("ScalesConv2d" if fuse else "BinaryConv2d")
        layer = layers[node.name]
        params = layer.core_params()
        packed = inits[node.input[2]]
        assert packed.dtype == np.uint64 and packed.shape == (40, 3, 3, 1)
        np.testing.assert_array_equal(packed, _bits_by_hand(params.weight_sign.permute(0, 2, 3, 1).numpy()))
        np.testing.assert_allclose(inits[node.input[1]], layer.beta.detach().numpy())
        expected_scale = (layer.alpha * layer.weight.abs().mean(dim=(1, 2, 3))).detach().numpy()
        np.testing.assert_allclose(inits[node.input[3]], expected_scale, rtol=1e-6)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        conv_attrs = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
        if not fuse:
            assert attrs == conv_attrs
            continue
        # The fused op carries the branches: spatial 1x1 conv weights, the channel Conv1d taps, skip.
        assert attrs == {**conv_attrs, "skip": int(layer.skip), "channel_from_output": 0}
        assert node.input[4:] == [f"{node.name}.{r}" for r in ("bias", "spatial_weight", "spatial_bias", "channel_weight")]
        np.testing.assert_array_equal(inits[node.input[5]], layer.spatial.weight.detach().reshape(-1).numpy())
        np.testing.assert_array_equal(inits[node.input[6]], layer.spatial.bias.detach().numpy())
        np.testing.assert_array_equal(inits[node.input[7]], layer.channel.weight.detach().reshape(-1).numpy())
    assert any(layers[n.name].skip for n in ours) and not all(layers[n.name].skip for n in ours)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["scales_edge.arch"] == "srresnet" and meta["scales_edge.scale"] == "4"
    assert meta["scales_edge.channels"] == "40" and meta["scales_edge.binary"] == "scales"
    assert meta["scales_edge.op_domain_version"] == str(version) and meta["scales_edge.input_range"] == "0,1"
    assert meta["scales_edge.color"] == "RGB" and meta["scales_edge.version"]
    assert json.loads(meta["scales_edge.config"]) == model.config
    assert not any(k.startswith("onnxsim.") for k in meta)
    # Dynamic batch, height and width.
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_paper_scope_upsamplers_export_as_shuffling_ops(tmp_path, scale):
    """binary_scope="body+upsampler": each upsampling step is one ScalesConv2d with pixel_shuffle
    (op-domain version 3) whose packed weights hold its r²·C filters; no DepthToSpace is left."""
    model = _tiny("srresnet", scale=scale)
    proto = export_onnx(model, tmp_path / "m.onnx")
    layers = dict(binary_layers(model))
    ours = [n for n in proto.graph.node if n.domain == DOMAIN]
    assert [n.name for n in ours] == list(layers) and all(n.op_type == "ScalesConv2d" for n in ours)
    assert (DOMAIN, 3) in {(i.domain, i.version) for i in proto.opset_import}
    assert {p.key: p.value for p in proto.metadata_props}["scales_edge.op_domain_version"] == "3"
    assert not any(n.op_type == "DepthToSpace" for n in proto.graph.node)
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    r = 3 if scale == 3 else 2
    shuffled = [n for n in ours if layers[n.name].upscale > 1]
    assert [n.name for n in shuffled] == (["upconv1", "upconv2"] if scale == 4 else ["upconv1"])
    for node in ours:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        layer = layers[node.name]
        assert attrs.get("pixel_shuffle", 1) == layer.upscale  # only written when it shuffles
        assert inits[node.input[2]].shape == (layer.out_channels, 3, 3, 1)
        assert attrs["skip"] == int(layer.skip) and attrs["channel_from_output"] == 0
    assert all(inits[n.input[2]].shape == (40 * r * r, 3, 3, 1) for n in shuffled)
    assert json.loads({p.key: p.value for p in proto.metadata_props}["scales_edge.config"])["binary_scope"] == "body+upsampler"
    # --no-fuse: version 1 with the shuffle and the repeated-input skip as standard ops
    v1 = export_onnx(model, tmp_path / "v1.onnx", fuse=False)
    ops = [n.op_type for n in v1.graph.node]
    assert ops.count("DepthToSpace") == len(shuffled) and ops.count("BinaryConv2d") == len(layers)
    assert (DOMAIN, 1) in {(i.domain, i.version) for i in v1.opset_import}


def test_fp_model_exports_without_custom_ops(tmp_path):
    proto = export_onnx(_tiny("edsr", binary="fp"), tmp_path / "fp.onnx")
    assert not [n for n in proto.graph.node if n.domain == DOMAIN]


def test_shape_inference_sees_through_custom_ops(tmp_path):
    proto = export_onnx(_tiny("rdn", scale=3), tmp_path / "m.onnx", simplify=False)
    inferred = onnx.shape_inference.infer_shapes(proto)
    known = {v.name: v for v in inferred.graph.value_info}
    for node in (n for n in proto.graph.node if n.domain == DOMAIN):
        vi = known[node.output[0]]
        assert vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert vi.type.tensor_type.shape.dim[1].dim_value > 0  # output channels declared


@pytest.mark.parametrize("arch", ["srresnet", "edsr", "rdn", "rcan"])
@pytest.mark.parametrize("binary", ["scales", "e2fif"])
def test_reference_evaluator_runs_exported_model(tmp_path, arch, binary):
    """The numpy reference (no C++) runs the exported graph and reproduces PyTorch."""
    from onnx.reference import ReferenceEvaluator

    from scales_edge.runtime.reference import custom_ops

    model = _tiny(arch, binary=binary)
    proto = export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(1).random((1, 3, 9, 11), dtype=np.float32)
    out = ReferenceEvaluator(proto, new_ops=custom_ops()).run(None, {"input": x})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    mse = float(np.mean((np.clip(out, 0, 1) - np.clip(ref, 0, 1)) ** 2))
    assert mse == 0 or 10 * np.log10(1 / mse) >= 60


def test_export_cli(tmp_path):
    from typer.testing import CliRunner

    from scales_edge import save_checkpoint
    from scales_edge.cli import app

    ckpt = save_checkpoint(_tiny("srresnet"), tmp_path / "m.pth")
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(app, ["export", str(ckpt), str(out), "--no-simplify"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "6 binary ops" in res.output  # 2 blocks x 2, upconv1, conv_hr
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "missing.pth"), str(out), "--overwrite"])
    assert bad.exit_code == 2 and "no such checkpoint" in bad.output


def test_session_refuses_an_unknown_domain_version(tmp_path):
    """A version newer than this release's gets an error that names it, before ORT's own
    "not a registered function/op"."""
    from scales_edge.runtime import ModelError, make_session

    proto = export_onnx(_tiny("srresnet"), tmp_path / "m.onnx")
    for imp in proto.opset_import:
        if imp.domain == DOMAIN:
            imp.version = DOMAIN_VERSION + 1
    onnx.save(proto, tmp_path / "v3.onnx")
    with pytest.raises(ModelError, match=f"op-domain version {DOMAIN_VERSION + 1}"):
        make_session(tmp_path / "v3.onnx", register_ops=False)


def test_export_cli_fp32_reference(tmp_path):
    """--as fp32-reference: standard ops only, same outputs as PyTorch (plain onnxruntime, no library)."""
    import onnxruntime as ort
    from typer.testing import CliRunner

    from scales_edge import save_checkpoint
    from scales_edge.cli import app

    model = _tiny("srresnet")
    ckpt = save_checkpoint(model, tmp_path / "m.pth")
    out = tmp_path / "ref.onnx"
    res = CliRunner().invoke(app, ["export", str(ckpt), str(out), "--as", "fp32-reference"])
    assert res.exit_code == 0, res.output
    proto = onnx.load(out)
    assert not [n for n in proto.graph.node if n.domain == DOMAIN]
    assert {p.key: p.value for p in proto.metadata_props}["scales_edge.binary_as"] == "fp32-reference"
    x = np.random.default_rng(0).random((1, 3, 13, 17), dtype=np.float32)
    y = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(y, model(torch.from_numpy(x)).numpy(), atol=1e-4)
    bad = CliRunner().invoke(app, ["export", str(ckpt), str(out), "--as", "int4", "--overwrite"])
    assert bad.exit_code == 2 and "binary_as must be one of" in bad.output


def test_a_single_layer_exports_without_a_scale_and_loads(tmp_path):
    """A part of a model (one SCALES conv, as the layer benchmarks export) has no scale: the key is
    left out, not written empty (which the runtime's metadata check refuses)."""
    from scales_edge.nn import ScalesConv2d
    from scales_edge.runtime import make_session

    layer = ScalesConv2d(8, 8).eval()
    proto = export_onnx(layer, tmp_path / "layer.onnx", sample_size=(6, 7))
    assert "scales_edge.scale" not in {p.key for p in proto.metadata_props}
    x = np.random.default_rng(0).standard_normal((1, 8, 6, 7)).astype(np.float32)
    out = make_session(tmp_path / "layer.onnx", threads=1).run(None, {proto.graph.input[0].name: x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, layer(torch.from_numpy(x)).numpy(), atol=1e-5)
