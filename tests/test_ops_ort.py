"""The scales_edge custom ops inside ONNX Runtime: hand-built ONNX models (opset 17 + domain
scales_edge v1) run with libscales_edge_ops.so registered must match the numpy reference
(runtime/reference.py) and onnx.reference.ReferenceEvaluator; malformed models must raise an ORT
error naming the op and the problem while the process stays usable; sessions must be thread-safe
and deterministic across intra-op thread counts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from _opslib import KernelLib, load_reference, require_library

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

LIB_PATH = require_library()

ref = load_reference()
OP_ERRORS = (Exception,)  # onnxruntime raises its own pybind exception types


@pytest.fixture(autouse=True)
def _no_kernel_env(monkeypatch):
    monkeypatch.delenv("SCALES_EDGE_KERNEL", raising=False)


# --------------------------------------------------------------------------- model builders


def _model(nodes, inputs, outputs, initializers, domain_version=1):
    graph = helper.make_graph(nodes, "scales_edge_test", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("scales_edge", domain_version)])
    model.ir_version = 8
    return model


def conv_params(rng, c, m, kh, kw=None):
    kw = kh if kw is None else kw
    beta = rng.uniform(-0.3, 0.3, c).astype(np.float32)
    wp = ref.pack_bits(np.where(rng.random((m, c, kh, kw)) < 0.5, 1, -1).astype(np.int8), axis=1)
    scale = rng.uniform(0.01, 0.2, m).astype(np.float32)
    bias = rng.uniform(-1.0, 1.0, m).astype(np.float32)
    return beta, wp, scale, bias


def conv_model(beta, wp, scale, bias, attrs, *, const=True, bias_mode="input", x_shape=None,
               domain_version=1):
    """bias_mode: "input" (5 inputs), "none" (4 inputs), "empty" (5th input named "")."""
    c = beta.shape[0]
    names = ["X", "beta", "W", "scale"]
    values = {"beta": beta, "W": wp, "scale": scale}
    if bias_mode == "input":
        names.append("bias")
        values["bias"] = bias
    elif bias_mode == "empty":
        names.append("")
    node = helper.make_node("BinaryConv2d", names, ["Y"], domain="scales_edge", **attrs)
    x_shape = ["N", c, "H", "W"] if x_shape is None else x_shape
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    inits = []
    for name, v in values.items():
        if const:
            inits.append(numpy_helper.from_array(v, name))
        else:
            et = TensorProto.UINT64 if v.dtype == np.uint64 else TensorProto.FLOAT
            dims = [f"{name}_{i}" for i in range(v.ndim)]  # symbolic: the op checks them
            inputs.append(helper.make_tensor_value_info(name, et, dims))
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    return _model([node], inputs, outputs, inits, domain_version)


def linear_model(beta, wp, scale, bias, *, const=True, rank=2, with_bias=True, x_shape=None):
    k = beta.shape[0]
    names = ["X", "beta", "W", "scale"] + (["bias"] if with_bias else [])
    values = {"beta": beta, "W": wp, "scale": scale}
    if with_bias:
        values["bias"] = bias
    node = helper.make_node("BinaryLinear", names, ["Y"], domain="scales_edge")
    if x_shape is None:
        x_shape = [f"d{i}" for i in range(rank - 1)] + [k]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    inits = []
    for name, v in values.items():
        if const:
            inits.append(numpy_helper.from_array(v, name))
        else:
            et = TensorProto.UINT64 if v.dtype == np.uint64 else TensorProto.FLOAT
            dims = [f"{name}_{i}" for i in range(v.ndim)]  # symbolic: the op checks them
            inputs.append(helper.make_tensor_value_info(name, et, dims))
    return _model([node], inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)


def session(model, threads=1):
    so = ort.SessionOptions()
    so.register_custom_ops_library(str(LIB_PATH))
    so.intra_op_num_threads = threads
    so.log_severity_level = 4  # the expected errors below need not be logged too
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _attrs_to_kwargs(attrs):
    return dict(kernel_shape=attrs["kernel_shape"], strides=attrs.get("strides"),
                pads=attrs.get("pads"), dilations=attrs.get("dilations"))


# --------------------------------------------------------------------------- correctness

CONV_CASES = [
    # C, M, kernel, attrs (besides kernel_shape), bias mode
    (64, 64, 3, dict(pads=[1, 1, 1, 1]), "input"),
    (3, 5, 3, dict(pads=[1, 1, 1, 1]), "none"),
    (70, 17, 3, dict(strides=[2, 2], pads=[1, 0, 2, 1]), "input"),
    (130, 9, 3, dict(dilations=[2, 2], pads=[2, 2, 2, 2]), "empty"),
    (1, 1, 1, dict(), "input"),
    (300, 33, 1, dict(strides=[2, 1]), "none"),
    (65, 8, 3, dict(strides=[1, 2], dilations=[2, 1], pads=[0, 3, 1, 0]), "input"),
]


@pytest.mark.parametrize("c,m,k,attrs,bias_mode", CONV_CASES)
def test_conv_matches_reference(c, m, k, attrs, bias_mode):
    rng = np.random.default_rng(c * 1000 + m)
    beta, wp, scale, bias = conv_params(rng, c, m, k)
    attrs = dict(kernel_shape=[k, k], **attrs)
    model = conv_model(beta, wp, scale, bias, attrs, bias_mode=bias_mode)
    sess = session(model)
    evaluator = ReferenceEvaluator(model, new_ops=ref.custom_ops())
    for shape in [(1, c, 7, 9), (2, c, 11, 5), (1, c, 13, 13)]:  # dynamic N, H, W
        x = rng.standard_normal(shape).astype(np.float32)
        x[0, 0, 0, :2] = beta[0]  # exactly on the threshold
        want = ref.binary_conv2d(x, beta, wp, scale, bias if bias_mode == "input" else None,
                                 **_attrs_to_kwargs(attrs))
        got = sess.run(None, {"X": x})[0]
        assert got.shape == want.shape
        close(got, want)
        close(evaluator.run(None, {"X": x})[0], want)


def test_conv_accumulators_are_exact_through_ort():
    """With scale 1 and bias 0 the float output is the integer accumulator itself."""
    rng = np.random.default_rng(11)
    c, m = 100, 12
    beta, wp, _, _ = conv_params(rng, c, m, 3)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    model = conv_model(beta, wp, np.ones(m, np.float32), np.zeros(m, np.float32), attrs)
    x = rng.standard_normal((2, c, 9, 7)).astype(np.float32)
    x[0, :, 3, 3] = np.nan
    got = session(model).run(None, {"X": x})[0]
    want = ref.binary_conv2d_acc(x, beta, wp, **_attrs_to_kwargs(attrs))
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_conv_weights_as_graph_inputs():
    rng = np.random.default_rng(12)
    c, m = 70, 20
    beta, wp, scale, bias = conv_params(rng, c, m, 3)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    sess = session(conv_model(beta, wp, scale, bias, attrs, const=False))
    x = rng.standard_normal((1, c, 6, 8)).astype(np.float32)
    got = sess.run(None, {"X": x, "beta": beta, "W": wp, "scale": scale, "bias": bias})[0]
    close(got, ref.binary_conv2d(x, beta, wp, scale, bias, **_attrs_to_kwargs(attrs)))
    # Different weights through the same session.
    beta2, wp2, scale2, bias2 = conv_params(rng, c, m, 3)
    got2 = sess.run(None, {"X": x, "beta": beta2, "W": wp2, "scale": scale2, "bias": bias2})[0]
    close(got2, ref.binary_conv2d(x, beta2, wp2, scale2, bias2, **_attrs_to_kwargs(attrs)))


@pytest.mark.parametrize("k,m,rank,with_bias", [(64, 10, 2, True), (1, 1, 2, False),
                                                (300, 33, 3, True), (129, 64, 4, False)])
def test_linear_matches_reference(k, m, rank, with_bias):
    rng = np.random.default_rng(k + m)
    beta = rng.uniform(-0.3, 0.3, k).astype(np.float32)
    wp = ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1), axis=-1)
    scale = rng.uniform(0.01, 0.2, m).astype(np.float32)
    bias = rng.uniform(-1, 1, m).astype(np.float32)
    model = linear_model(beta, wp, scale, bias, rank=rank, with_bias=with_bias)
    sess = session(model)
    evaluator = ReferenceEvaluator(model, new_ops=ref.custom_ops())
    leads = {2: [(1,), (5,)], 3: [(1, 1), (3, 2)], 4: [(2, 2, 3), (1, 1, 1)]}[rank]
    for lead in leads:  # dynamic leading dims
        x = rng.standard_normal(lead + (k,)).astype(np.float32)
        want = ref.binary_linear(x, beta, wp, scale, bias if with_bias else None)
        got = sess.run(None, {"X": x})[0]
        assert got.shape == x.shape[:-1] + (m,)
        close(got, want)
        close(evaluator.run(None, {"X": x})[0], want)


def test_linear_weights_as_graph_inputs():
    rng = np.random.default_rng(13)
    k, m = 100, 7
    beta = rng.uniform(-0.3, 0.3, k).astype(np.float32)
    wp = ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1), axis=-1)
    scale = rng.uniform(0.01, 0.2, m).astype(np.float32)
    bias = rng.uniform(-1, 1, m).astype(np.float32)
    sess = session(linear_model(beta, wp, scale, bias, const=False))
    x = rng.standard_normal((4, k)).astype(np.float32)
    got = sess.run(None, {"X": x, "beta": beta, "W": wp, "scale": scale, "bias": bias})[0]
    close(got, ref.binary_linear(x, beta, wp, scale, bias))


# --------------------------------------------------------------------------- errors

def _expect_error(build_and_run, *patterns):
    with pytest.raises(OP_ERRORS) as info:
        build_and_run()
    msg = str(info.value)
    for p in patterns:
        assert p in msg, f"expected {p!r} in error message: {msg}"
    return msg


def _still_alive():
    rng = np.random.default_rng(0)
    beta, wp, scale, bias = conv_params(rng, 8, 4, 3)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    got = session(conv_model(beta, wp, scale, bias, attrs)).run(None, {"X": x})[0]
    close(got, ref.binary_conv2d(x, beta, wp, scale, bias, **_attrs_to_kwargs(attrs)))


def test_malformed_models_raise_and_process_survives():
    rng = np.random.default_rng(21)
    c, m = 64, 8
    beta, wp, scale, bias = conv_params(rng, c, m, 3)
    k33 = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, c, 6, 6)).astype(np.float32)
    op = "scales_edge.BinaryConv2d"

    # Wrong packed-weight size (constant W: caught at session creation).
    wp_big = np.zeros((m, 3, 3, 2), np.uint64)
    _expect_error(lambda: session(conv_model(beta, wp_big, scale, bias, k33)), op, "ceil(C/64)")
    # ... and as a graph input (caught at run time).
    sess = session(conv_model(beta, wp, scale, bias, k33, const=False))
    _expect_error(lambda: sess.run(None, {"X": x, "beta": beta, "W": wp_big, "scale": scale,
                                          "bias": bias}), op, "packed-weight size mismatch")
    # Channels of X and beta disagree.
    sess = session(conv_model(beta, wp, scale, bias, k33, x_shape=["N", "C", "H", "W"]))
    x65 = rng.standard_normal((1, c + 1, 6, 6)).astype(np.float32)
    _expect_error(lambda: sess.run(None, {"X": x65}), op, "'beta'", "C = 65")
    # 3-D input.
    sess = session(conv_model(beta, wp, scale, bias, k33, x_shape=["C", "H", "W"]))
    _expect_error(lambda: sess.run(None, {"X": x[0]}), op, "'X' must be 4-D", "3-D")
    # group = 2, auto_pad, kernel_shape inconsistent with W, missing kernel_shape.
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias, dict(k33, group=2))),
                  op, "'group' = 2 is not supported")
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias,
                                             dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER"))),
                  op, "'auto_pad' is not supported")
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias, dict(kernel_shape=[1, 1]))),
                  op, "differ from kernel_shape")
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias, dict(pads=[1, 1, 1, 1]))),
                  op, "'kernel_shape' is required")
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias, dict(k33, strides=[0, 1]))),
                  op, "'strides'")
    _expect_error(lambda: session(conv_model(beta, wp, scale, bias, dict(k33, pads=[1, 1]))),
                  op, "'pads' must have 4 values")
    # scale of the wrong length (constant and per call).
    _expect_error(lambda: session(conv_model(beta, wp, scale[:5], bias, k33)), op, "'scale'", "[M]")
    sess = session(conv_model(beta, wp, scale, bias, k33, const=False))
    _expect_error(lambda: sess.run(None, {"X": x, "beta": beta, "W": wp, "scale": scale,
                                          "bias": bias[:3]}), op, "'bias' must have shape [M] = [8]")
    # Input too small for the kernel.
    sess = session(conv_model(beta, wp, scale, bias, dict(kernel_shape=[3, 3])))
    _expect_error(lambda: sess.run(None, {"X": x[:, :, :2, :2]}), op, "output would be empty")
    # The same session still serves valid inputs.
    got = sess.run(None, {"X": x})[0]
    close(got, ref.binary_conv2d(x, beta, wp, scale, bias, kernel_shape=[3, 3]))

    # BinaryLinear.
    lop = "scales_edge.BinaryLinear"
    kb = rng.uniform(-0.3, 0.3, 70).astype(np.float32)
    lw = ref.pack_bits(np.where(rng.random((5, 70)) < 0.5, 1, -1), axis=-1)
    ls = np.ones(5, np.float32)
    _expect_error(lambda: session(linear_model(kb, np.zeros((5, 1), np.uint64), ls, None,
                                               with_bias=False)), lop, "ceil(K/64)")
    sess = session(linear_model(kb, lw, ls, None, with_bias=False, x_shape=["R", "K"]))
    _expect_error(lambda: sess.run(None, {"X": np.zeros((2, 71), np.float32)}), lop, "'beta'",
                  "K = 71")
    _still_alive()


def test_bad_kernel_path_env_is_an_error_not_a_crash(monkeypatch):
    rng = np.random.default_rng(3)
    beta, wp, scale, bias = conv_params(rng, 8, 4, 3)
    model = conv_model(beta, wp, scale, bias, dict(kernel_shape=[3, 3]))
    monkeypatch.setenv("SCALES_EDGE_KERNEL", "quantum")
    _expect_error(lambda: session(model), "scales_edge.BinaryConv2d", "SCALES_EDGE_KERNEL",
                  "'quantum' is unknown")
    lib = KernelLib(LIB_PATH)
    for p in [p for p in lib.compiled_paths() if p not in lib.paths()]:
        monkeypatch.setenv("SCALES_EDGE_KERNEL", p)
        _expect_error(lambda: session(model), "scales_edge.BinaryConv2d", "not supported by this CPU")
    monkeypatch.delenv("SCALES_EDGE_KERNEL")
    _still_alive()


def test_every_path_through_ort(monkeypatch):
    rng = np.random.default_rng(4)
    beta, wp, scale, bias = conv_params(rng, 96, 24, 3)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 2])
    x = rng.standard_normal((2, 96, 9, 10)).astype(np.float32)
    want = ref.binary_conv2d(x, beta, wp, scale, bias, **_attrs_to_kwargs(attrs))
    for path in KernelLib(LIB_PATH).paths():
        monkeypatch.setenv("SCALES_EDGE_KERNEL", path)
        got = session(conv_model(beta, wp, scale, bias, attrs)).run(None, {"X": x})[0]
        close(got, want)


def test_negotiated_api_version():
    session(linear_model(np.zeros(3, np.float32), np.zeros((1, 1), np.uint64),
                         np.ones(1, np.float32), None, with_bias=False))
    version = KernelLib(LIB_PATH).ort_api_version()
    major, minor = (int(v) for v in ort.__version__.split(".")[:2])
    assert version >= 17
    if major == 1:  # highest version both the runtime (1.minor) and the headers (ORT 1.21) know
        assert version == min(minor, 21)
    print(f"onnxruntime {ort.__version__}: negotiated ORT C API version {version}")


# --------------------------------------------------------------------------- threading


def _threading_model(rng):
    beta, wp, scale, bias = conv_params(rng, 64, 32, 3)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return conv_model(beta, wp, scale, bias, attrs), (beta, wp, scale, bias, attrs)


def test_concurrent_runs_on_one_session_match_sequential():
    rng = np.random.default_rng(31)
    model, _ = _threading_model(rng)
    sess = session(model, threads=2)
    inputs = [rng.standard_normal((1, 64, 17 + i, 23 - i)).astype(np.float32) for i in range(4)]
    sequential = [sess.run(None, {"X": x})[0] for x in inputs]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(inputs))

    def worker(i):
        try:
            barrier.wait()
            for _ in range(15):
                got = sess.run(None, {"X": inputs[i]})[0]
                np.testing.assert_array_equal(got, sequential[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_intra_op_threads_do_not_change_results():
    rng = np.random.default_rng(32)
    model, (beta, wp, scale, bias, attrs) = _threading_model(rng)
    x = rng.standard_normal((2, 64, 31, 29)).astype(np.float32)
    y1 = session(model, threads=1).run(None, {"X": x})[0]
    y2 = session(model, threads=2).run(None, {"X": x})[0]
    np.testing.assert_array_equal(y1, y2)
    close(y1, ref.binary_conv2d(x, beta, wp, scale, bias, **_attrs_to_kwargs(attrs)))

    k, m = 200, 40
    lb = rng.uniform(-0.3, 0.3, k).astype(np.float32)
    lw = ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1), axis=-1)
    ls = rng.uniform(0.01, 0.2, m).astype(np.float32)
    lmodel = linear_model(lb, lw, ls, None, with_bias=False)
    xl = rng.standard_normal((300, k)).astype(np.float32)
    np.testing.assert_array_equal(session(lmodel, 1).run(None, {"X": xl})[0],
                                  session(lmodel, 2).run(None, {"X": xl})[0])
