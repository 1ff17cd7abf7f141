"""scales_edge.ScalesConv2d (op-domain version 2, and version 3's pixel_shuffle for upsampling
convs): the fused SCALES convolution inside ONNX Runtime
must equal the numpy reference (runtime/reference.py, itself checked against PyTorch's ScalesConv2d
layer here) on every kernel path this machine runs, for every combination of branches, strides,
dilations and channel counts; bad branch inputs give ORT errors naming the op; the version contract
holds (a version-1 model cannot use the op; both versions load)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _opslib import KernelLib, load_reference, ort_session as session, require_library

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

LIB_PATH = require_library()
ref = load_reference()


@pytest.fixture(autouse=True)
def _no_kernel_env(monkeypatch):
    monkeypatch.delenv("SCALES_EDGE_KERNEL", raising=False)


def params(rng, c, m, k, *, spatial=True, channel=True, ck=5):
    p = dict(
        beta=rng.uniform(-0.3, 0.3, c).astype(np.float32),
        W=ref.pack_bits(np.where(rng.random((m, c, k, k)) < 0.5, 1, -1).astype(np.int8), axis=1),
        scale=rng.uniform(0.01, 0.2, m).astype(np.float32),
        bias=rng.uniform(-1.0, 1.0, m).astype(np.float32),
    )
    if spatial:
        p["spatial_weight"] = rng.normal(0, 0.3, c).astype(np.float32)
        p["spatial_bias"] = rng.normal(0, 0.5, 1).astype(np.float32)
    if channel:
        p["channel_weight"] = rng.normal(0, 1.0, ck).astype(np.float32)
    return p


ORDER = ("beta", "W", "scale", "bias", "spatial_weight", "spatial_bias", "channel_weight")


def model(p, attrs, version=2, c=None):
    names = ["X"] + [n if n in p else "" for n in ORDER]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("ScalesConv2d", names, ["Y"], domain="scales_edge", **attrs)
    c = p["beta"].shape[0] if c is None else c
    graph = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", c, "H", "W"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, n) for n, v in p.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", version)])
    m.ir_version = 8
    return m


def reference(x, p, attrs):
    return ref.scales_conv2d(
        x, p["beta"], p["W"], p["scale"], p.get("bias"), p.get("spatial_weight"), p.get("spatial_bias"),
        p.get("channel_weight"), kernel_shape=attrs["kernel_shape"], strides=attrs.get("strides"),
        pads=attrs.get("pads"), dilations=attrs.get("dilations"), skip=attrs.get("skip", 0),
        channel_from_output=attrs.get("channel_from_output", 0), pixel_shuffle=attrs.get("pixel_shuffle", 1))


def close(got, want):
    # Accumulators are exact; S and Cs are float sums whose order the contract leaves open.
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


CASES = [
    # C, M, k, attrs, branches (spatial, channel), H, W
    (64, 64, 3, dict(pads=[1, 1, 1, 1], skip=1), (True, True), 13, 17),
    (40, 40, 3, dict(pads=[1, 1, 1, 1], skip=1), (True, True), 9, 31),
    (64, 64, 3, dict(pads=[1, 1, 1, 1]), (False, True), 8, 8),
    (64, 64, 3, dict(pads=[1, 1, 1, 1], skip=1), (True, False), 7, 5),
    (32, 48, 3, dict(pads=[1, 1, 1, 1], channel_from_output=1), (True, True), 10, 11),
    (130, 24, 1, dict(channel_from_output=1), (False, True), 6, 9),
    (70, 17, 3, dict(strides=[2, 2], pads=[1, 1, 1, 1]), (True, False), 11, 12),
    (96, 96, 3, dict(dilations=[2, 2], pads=[2, 2, 2, 2], skip=1), (True, True), 12, 10),
    (3, 3, 3, dict(pads=[1, 1, 1, 1], skip=1), (True, True), 4, 4),
    (64, 64, 3, dict(pads=[1, 1, 1, 1], skip=1), (False, False), 5, 6),
]


@pytest.mark.parametrize("c,m,k,attrs,branches,h,w", CASES)
def test_matches_reference_on_every_path(monkeypatch, c, m, k, attrs, branches, h, w):
    rng = np.random.default_rng(c * 1000 + m * 10 + k + h + w)
    attrs = dict(kernel_shape=[k, k], **attrs)
    p = params(rng, c, m, k, spatial=branches[0], channel=branches[1])
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    want = reference(x, p, attrs)
    for path in KernelLib(LIB_PATH).paths():
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        for threads in (1, 2):
            got = session(model(p, attrs), threads).run(None, {"X": x})[0]
            close(got, want)


def test_reference_evaluator_runs_the_op():
    rng = np.random.default_rng(5)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], skip=1)
    p = params(rng, 16, 16, 3)
    x = rng.standard_normal((1, 16, 6, 7)).astype(np.float32)
    got = ReferenceEvaluator(model(p, attrs), new_ops=ref.custom_ops()).run(None, {"X": x})[0]
    close(got, reference(x, p, attrs))


@pytest.mark.parametrize("from_input", [True, False])
def test_reference_equals_the_pytorch_layer(from_input):
    """The numpy reference (and so the op) computes what scales_edge.nn.ScalesConv2d computes."""
    from scales_edge.export.packing import pack_conv_weight
    from scales_edge.nn import ScalesConv2d

    torch.manual_seed(1)
    c, m = (24, 24) if from_input else (16, 24)
    layer = ScalesConv2d(c, m).eval()
    with torch.no_grad():
        layer.beta.uniform_(-0.3, 0.3)
        layer.alpha.fill_(0.7)
        layer.channel.weight.normal_(0, 1)
        layer.spatial.weight.normal_(0, 0.3)
    cp = layer.core_params()
    p = dict(beta=cp.beta.numpy(), W=pack_conv_weight(cp.weight_sign.numpy()), scale=cp.scale.numpy(),
             bias=cp.bias.numpy(), spatial_weight=layer.spatial.weight.detach().reshape(-1).numpy(),
             spatial_bias=layer.spatial.bias.detach().numpy(),
             channel_weight=layer.channel.weight.detach().reshape(-1).numpy())
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], skip=int(layer.skip),
                 channel_from_output=int(not layer.channel_from_input))
    x = torch.randn(2, c, 9, 11)
    with torch.no_grad():
        want = layer(x).numpy()
    close(reference(x.numpy(), p, attrs), want)
    close(session(model(p, attrs)).run(None, {"X": x.numpy()})[0], want)


def _error(build_and_run, *patterns):
    with pytest.raises(Exception) as info:
        build_and_run()
    for pat in patterns:
        assert pat in str(info.value), f"{pat!r} not in {info.value}"


def test_bad_inputs_and_attributes_are_errors():
    rng = np.random.default_rng(9)
    op = "scales_edge.ScalesConv2d"
    k33 = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    p = params(rng, 16, 16, 3)
    # skip / channel_from_output must be 0 or 1
    _error(lambda: session(model(p, dict(k33, skip=2))), op, "'skip' = 2")
    # spatial weight and bias go together
    q = dict(p)
    del q["spatial_bias"]
    _error(lambda: session(model(q, k33)), op, "'spatial_weight' (5) and 'spatial_bias' (6)")
    # spatial weight of the wrong length
    q = dict(p, spatial_weight=p["spatial_weight"][:7])
    _error(lambda: session(model(q, k33)).run(None, {"X": x}), op, "'spatial_weight' must have shape [C] = [16]")
    # an even channel kernel
    q = dict(p, channel_weight=p["channel_weight"][:4])
    _error(lambda: session(model(q, k33)).run(None, {"X": x}), op, "must be odd")
    # skip with C != M, channel pooling the input with C != M
    p2 = params(rng, 16, 8, 3)
    _error(lambda: session(model(p2, dict(k33, skip=1, channel_from_output=1))).run(None, {"X": x}), op, "skip needs")
    _error(lambda: session(model(p2, k33)).run(None, {"X": x}), op, "needs C == M")
    # a spatial map whose size differs from the conv's output (no padding on a 3x3 conv)
    _error(lambda: session(model(p, dict(kernel_shape=[3, 3]))).run(None, {"X": x}), op, "spatial re-scaling")
    # the process and a good session still work
    close(session(model(p, k33)).run(None, {"X": x})[0], reference(x, p, k33))


def test_domain_versions():
    """ScalesConv2d exists from version 2; BinaryConv2d loads under version 1 and 2."""
    rng = np.random.default_rng(2)
    k33 = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    p = params(rng, 8, 8, 3)
    _error(lambda: session(model(p, k33, version=1)), "ScalesConv2d")
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    core = {n: p[n] for n in ("beta", "W", "scale", "bias")}
    want = ref.binary_conv2d(x, core["beta"], core["W"], core["scale"], core["bias"], **{"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    for version in (1, 2):
        node = helper.make_node("BinaryConv2d", ["X", "beta", "W", "scale", "bias"], ["Y"], domain="scales_edge", **k33)
        graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 8, "H", "W"])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                                  initializer=[numpy_helper.from_array(v, n) for n, v in core.items()])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", version)])
        m.ir_version = 8
        close(session(m).run(None, {"X": x})[0], want)


# ----------------------------------------------------------------------------- version 3: pixel_shuffle

SHUFFLE_CASES = [
    # C, F, r, attrs, branches (spatial, channel), H, W
    (64, 64, 2, dict(skip=1), (True, True), 9, 13),
    (40, 40, 2, dict(skip=1), (True, True), 7, 11),
    (40, 40, 3, dict(skip=1), (True, True), 5, 9),
    (16, 16, 4, dict(skip=1), (True, True), 6, 5),
    (24, 24, 2, dict(skip=1), (False, True), 4, 7),
    (24, 24, 3, dict(skip=1), (True, False), 3, 3),
    (24, 24, 2, dict(), (False, False), 5, 4),
    (16, 8, 2, dict(channel_from_output=1), (True, True), 6, 7),  # C != F: no skip, pool the output
    (8, 12, 3, dict(channel_from_output=1), (False, True), 5, 5),
    (3, 3, 2, dict(skip=1), (True, True), 1, 1),
]


@pytest.mark.parametrize("c,f,r,attrs,branches,h,w", SHUFFLE_CASES)
def test_pixel_shuffle_matches_reference_on_every_path(monkeypatch, c, f, r, attrs, branches, h, w):
    rng = np.random.default_rng(c * 100 + f * 10 + r + h * w)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], pixel_shuffle=r, **attrs)
    p = params(rng, c, f * r * r, 3, spatial=branches[0], channel=branches[1])
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    want = reference(x, p, attrs)
    assert want.shape == (2, f, h * r, w * r)
    for path in KernelLib(LIB_PATH).paths():
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        for threads in (1, 2):
            got = session(model(p, attrs, version=3), threads).run(None, {"X": x})[0]
            close(got, want)


def test_pixel_shuffle_reference_is_version_2_then_depth_to_space():
    """The contract's definition, independently: version 2's op without Cs and skip, a CRD
    depth-to-space written as index arithmetic, then the per-feature Cs and the repeated input."""
    rng = np.random.default_rng(31)
    c, r = 8, 3
    p = params(rng, c, c * r * r, 3)
    x = rng.standard_normal((1, c, 4, 5)).astype(np.float32)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], skip=1)
    core = ref.scales_conv2d(x, p["beta"], p["W"], p["scale"], p["bias"], p["spatial_weight"], p["spatial_bias"],
                             None, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    z = np.empty((1, c, 4 * r, 5 * r), np.float32)
    for m in range(c * r * r):
        f, i, j = m // (r * r), (m % (r * r)) // r, m % r
        z[0, f, i::r, j::r] = core[0, m]
    mean = x.astype(np.float64).mean(axis=(2, 3))[0]
    k = p["channel_weight"]
    cs = np.array([sum(k[t] * (mean[f + t - 2] if 0 <= f + t - 2 < c else 0.0) for t in range(5)) for f in range(c)])
    cs = (1 / (1 + np.exp(-cs.astype(np.float32)))).astype(np.float32)
    skip = np.repeat(np.repeat(x, r, axis=2), r, axis=3)
    want = z * cs[None, :, None, None] + skip
    got = reference(x, p, dict(attrs, pixel_shuffle=r))
    close(got, want)
    close(ReferenceEvaluator(model(p, dict(attrs, pixel_shuffle=r), version=3), new_ops=ref.custom_ops()).run(None, {"X": x})[0], want)


@pytest.mark.parametrize("r,c", [(2, 8), (3, 8), (2, 6)])
def test_pixel_shuffle_equals_the_pytorch_upsampler(r, c):
    """The op computes the PyTorch upsampling layer (conv, shuffle, repeated-input skip)."""
    from scales_edge.export.packing import pack_conv_weight
    from scales_edge.nn import ScalesConv2d

    torch.manual_seed(r)
    feat = 8
    layer = ScalesConv2d(c, feat * r * r, upscale=r).eval()
    with torch.no_grad():
        layer.beta.uniform_(-0.3, 0.3)
        layer.alpha.fill_(0.7)
        layer.channel.weight.normal_(0, 1)
        layer.spatial.weight.normal_(0, 0.3)
    cp = layer.core_params()
    p = dict(beta=cp.beta.numpy(), W=pack_conv_weight(cp.weight_sign.numpy()), scale=cp.scale.numpy(),
             bias=cp.bias.numpy(), spatial_weight=layer.spatial.weight.detach().reshape(-1).numpy(),
             spatial_bias=layer.spatial.bias.detach().numpy(),
             channel_weight=layer.channel.weight.detach().reshape(-1).numpy())
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], skip=int(layer.skip),
                 channel_from_output=int(not layer.channel_from_input), pixel_shuffle=r)
    x = torch.randn(2, c, 7, 6)
    with torch.no_grad():
        want = layer(x).numpy()
    close(reference(x.numpy(), p, attrs), want)
    close(session(model(p, attrs, version=3)).run(None, {"X": x.numpy()})[0], want)


def test_pixel_shuffle_bad_attributes_are_errors():
    rng = np.random.default_rng(12)
    op = "scales_edge.ScalesConv2d"
    k33 = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    p = params(rng, 8, 32, 3)
    _error(lambda: session(model(p, dict(k33, pixel_shuffle=0), version=3)), op, "'pixel_shuffle' = 0")
    # M = 32 is not a multiple of 9
    _error(lambda: session(model(p, dict(k33, pixel_shuffle=3), version=3)).run(None, {"X": x}), op,
           "multiple of 9")
    _error(lambda: session(model(p, dict(k33, pixel_shuffle=2, strides=[2, 2]), version=3)).run(None, {"X": x}),
           op, "strides [1, 1]")
    # skip and pooling the input need C == F (8 -> 2*2*4: F = 4)
    p4 = params(rng, 8, 16, 3)
    _error(lambda: session(model(p4, dict(k33, pixel_shuffle=2, skip=1, channel_from_output=1), version=3))
           .run(None, {"X": x}), op, "skip needs")
    _error(lambda: session(model(p4, dict(k33, pixel_shuffle=2), version=3)).run(None, {"X": x}), op,
           "needs C == F")
    for bad in (dict(pixel_shuffle=0), dict(pixel_shuffle=3)):
        with pytest.raises(ValueError, match="ScalesConv2d"):
            reference(x, p, dict(k33, **bad))
    # and a good one still runs
    close(session(model(p, dict(k33, pixel_shuffle=2, skip=1), version=3)).run(None, {"X": x})[0],
          reference(x, p, dict(k33, pixel_shuffle=2, skip=1)))


def test_version_3_runs_version_2_models_unchanged():
    rng = np.random.default_rng(13)
    k33 = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], skip=1)
    p = params(rng, 8, 8, 3)
    x = rng.standard_normal((1, 8, 5, 6)).astype(np.float32)
    for version in (2, 3):
        close(session(model(p, k33, version=version)).run(None, {"X": x})[0], reference(x, p, k33))
