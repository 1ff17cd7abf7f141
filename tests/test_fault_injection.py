"""Fault injection of the scales_edge ops (issue 16): generated malformed and extreme models run in
worker processes on every kernel path this machine has, in a plain ONNX Runtime session with the
op library and through ``make_session``; none may crash, none may give another answer than the
numpy reference, every refusal is one line naming the op or the domain (tests/_faults.py: cases,
op table, oracle; _fault_gen.py: the families; _fault_run.py: the crash-proof runner).

The default run takes a sample that keeps every (op, family); the sweep (``pytest -m fault_sweep``,
run by scripts/test.sh) takes two larger seeds. Besides: the op contract's pieces agree (the
library's domain version, the reference, the contract table, the fuzz table), and the named cases
of the issue are refused in the words the issue asks for.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import _fault_gen as G
import _fault_run as R
import _faults as F
from _opslib import KernelLib, load_reference, require_library

LIB = require_library()
PATHS = KernelLib(LIB).paths()  # the kernel paths this CPU runs, e.g. portable, avx2, avx512
ref = load_reference()
contract = F.contract
RUNS = [*PATHS, None]  # None: the make_session cases (runtime/contract.py), default path
RUN_IDS = [*PATHS, "make_session"]


def _assert_clean(report: R.Report) -> None:
    bad = report.failures()
    lines = [f"{v}: {c.id} ({c.note}): {d[:300]}" for c, v, d in bad[:40]]
    assert not bad, report.summary() + "\n" + "\n".join(lines)


# ---------------------------------------------------------------------------- the generated cases

FAST_CASES = G.sample(G.generate(seed=0), every=8)


@pytest.mark.parametrize("kernel", RUNS, ids=RUN_IDS)
def test_fault_sample(kernel):
    report = R.sweep(FAST_CASES, kernel)
    assert report.verdicts
    _assert_clean(report)


@pytest.mark.fault_sweep
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kernel", RUNS, ids=RUN_IDS)
def test_fault_sweep(kernel, seed, record_property):
    cases = G.generate(seed=seed, scale=3)
    report = R.sweep(cases, kernel)
    record_property("summary", report.summary())
    print(f"\n[fault sweep seed {seed}] {report.summary()}")
    _assert_clean(report)


def test_the_generator_covers_every_op_and_family():
    """Every op of the contract table has a fuzz entry and a reference (a new op is a table entry
    in each), and each op gets every family that applies to it; the sweep is >= 500 models."""
    assert set(F.FUZZ) == set(contract.OPS) == {c.__name__ for c in ref.custom_ops()}
    cases = G.generate(seed=1, scale=3) + G.generate(seed=2, scale=3)
    assert len(cases) >= 500
    families = {(c.op, c.family) for c in cases}
    for op, spec in contract.OPS.items():
        wanted = {"valid", "values", "attr-name", "input", "x", "version"}
        if spec.attributes:
            wanted |= {"attr-value"}
        if F.FUZZ[op].sizes:  # the convolutions' size attributes at their extremes
            wanted |= {"geometry"}
        assert {f for o, f in families if o == op} >= wanted, op
    sample = {(c.op, c.family) for c in FAST_CASES}
    assert sample == {(c.op, c.family) for c in G.generate(seed=0)}


def test_the_oracle_visits_only_taps_inside_the_input():
    """taps_acc (used where the reference's zero-padded copy cannot be allocated) equals the
    reference's accumulators on ordinary geometry."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        attrs, params, x = F.FUZZ["BinaryConv2d"].base(rng)
        want = ref.binary_conv2d_acc(x, params["beta"], params["W"], **F._conv_kwargs(attrs))
        with F._taps_reference():
            got = ref.binary_conv2d_acc(x, params["beta"], params["W"], **F._conv_kwargs(attrs))
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def scratch_case_runs():
    """Issue 16.1's model on every path, in one worker (restarted after a crash)."""
    case = G.avx2_scratch_case()
    return case, dict(zip(PATHS, R.run_cases([case] * len(PATHS), list(PATHS))))


@pytest.mark.parametrize("kernel", PATHS)
def test_avx2_scratch_overflow_case(kernel, scratch_case_runs):
    """Issue 16.1's model: the AVX2 conv's row scratch size wrapped to 0 and the kernel wrote
    through it (SIGSEGV); the other paths give the exact accumulators."""
    case, runs = scratch_case_runs
    want = F.expected(case)
    assert want[0] == "ok" and want[1].shape == (1, 4, 1, 1) and np.all(want[1] == np.round(want[1]))
    assert F.judge(case, want, runs[kernel]) == ("pass", ""), runs[kernel]


# ---------------------------------------------------------------------------- the contract's pieces


def test_one_domain_version_everywhere():
    """The library's kDomainVersion is what the loaders accept and the reference implements."""
    from scales_edge.runtime.library import library_domain_version

    assert library_domain_version() == ref.DOMAIN_VERSION == contract.newest_version()
    assert contract.supported_versions() == tuple(range(1, ref.DOMAIN_VERSION + 1))
    assert max(s.since for s in contract.OPS.values()) <= ref.DOMAIN_VERSION


def _conv_case(rng=None) -> F.Case:
    rng = rng or np.random.default_rng(0)
    attrs, params, x = F.FUZZ["BinaryConv2d"].base(rng)
    return F.Case("BinaryConv2d", "named", "", attrs, params, x)


@pytest.mark.parametrize("version", ["newest+1", 100, None])
def test_make_session_and_info_refuse_versions_alike(tmp_path, version):
    from scales_edge.info import model_info
    from scales_edge.runtime import ModelError, make_session

    v = contract.newest_version() + 1 if version == "newest+1" else version
    case = _conv_case()
    case.version = v
    path = tmp_path / "m.onnx"
    onnx.save(case.model(), path)
    with pytest.raises(ModelError) as session_err:
        make_session(path)
    with pytest.raises(ModelError) as info_err:
        model_info(path)
    msg = str(session_err.value)
    assert msg == str(info_err.value) and "\n" not in msg
    assert f"versions {contract.versions_text()}" in msg
    assert (f"version {v}" in msg) if v is not None else "no opset_import" in msg


# The misspellings issue 16 names, refused by the op library itself (a plain ORT session).
ISSUE_TYPOS = [("BinaryConv2d", "stride", "strides"), ("BinaryConv2d", "pad", "pads"),
               ("BinaryConv2d", "dilation", "dilations"), ("ScalesConv2d", "skips", "skip"),
               ("BinaryLinear", "kernel_shape", None)]


@pytest.mark.parametrize("op,name,meant", ISSUE_TYPOS)
def test_misspelt_attributes_are_refused_by_the_library(tmp_path, op, name, meant):
    from scales_edge.info import model_info
    from scales_edge.runtime import ModelError, make_session

    attrs, params, x = F.FUZZ[op].base(np.random.default_rng(5))
    attrs[name] = [2, 2] if name != "skips" else 1
    case = F.Case(op, "named", "", attrs, params, x)
    got = R.run_in_process(case)
    assert got[0] == "error", got
    hint = f" (did you mean '{meant}'?)" if meant else ""
    expected_text = f"scales_edge.{op}: unknown attribute '{name}'{hint}; {op} takes "
    assert expected_text in got[1] and "\n" not in got[1].strip()
    assert expected_text in contract.unknown_attribute_message(op, name)
    path = tmp_path / "m.onnx"
    onnx.save(case.model(), path)
    for call in (make_session, model_info):  # the loaders and `info` say the same
        with pytest.raises(ModelError, match=expected_text.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
            call(path)


def test_make_session_refuses_what_plain_ort_cannot_see(tmp_path):
    """An attribute name far from every real one passes the library (ORT lists no attributes to
    a kernel) and is refused by make_session, which reads the model."""
    from scales_edge.runtime import ModelError, make_session

    case = _conv_case()
    case.attrs["color_mode"] = 3
    assert R.run_in_process(case)[0] == "ok"
    with pytest.raises(ModelError, match="unknown attribute 'color_mode'; BinaryConv2d takes kernel_shape"):
        make_session(case.model())


def test_contract_checks_subgraphs_and_input_counts():
    case = _conv_case()
    m = case.model()
    m.graph.node[0].attribute.append(helper.make_attribute("stride", [1, 1]))
    inner = helper.make_graph([m.graph.node[0]], "body", [], [helper.make_tensor_value_info("Y", 1, None)])
    outer = helper.make_node("If", ["cond"], ["Z"], then_branch=inner, else_branch=inner)
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    del m2.graph.node[:]
    m2.graph.node.append(outer)
    with pytest.raises(contract.ContractError, match="unknown attribute 'stride'"):
        contract.check_model(m2)
    m3 = case.model()
    m3.graph.node[0].input.extend(["a", "b"])
    with pytest.raises(contract.ContractError, match=r"expects 4 to 5 inputs \(X, beta, W, scale\[, bias\]\), got [67]"):
        contract.check_model(m3)


def test_scales_conv_skip_after_the_output_pooled_channel_branch():
    """Found by the sweep: with channel_from_output = 1 and skip = 1 the library pooled and scaled
    conv * S + X instead of conv * S (docs/ops.md: Y = conv * S * Cs + X), on every path."""
    rng = np.random.default_rng(7)
    c = 8
    params = F._conv_params(rng, c, c, [3, 3], bias=True)
    params.update(spatial_weight=rng.normal(0, 0.3, c).astype(np.float32),
                  spatial_bias=rng.normal(0, 0.5, 1).astype(np.float32),
                  channel_weight=rng.normal(0, 1.0, 3).astype(np.float32))
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "skip": 1, "channel_from_output": 1}
    case = F.Case("ScalesConv2d", "named", "", attrs, params, rng.standard_normal((2, c, 6, 5)).astype(np.float32))
    want = F.expected(case)
    for kernel in PATHS:
        assert F.judge(case, want, R.run_in_process(case, kernel)) == ("pass", ""), kernel


def test_an_attribute_added_by_a_later_version_is_refused_under_an_earlier_one(monkeypatch):
    """OpSpec.added: the loaders refuse an attribute the imported version does not have yet."""
    from dataclasses import replace

    spec = contract.OPS["ScalesConv2d"]
    monkeypatch.setitem(contract.OPS, "ScalesConv2d", replace(spec, added={"skip": spec.since + 1}))
    attrs, params, x = F.FUZZ["ScalesConv2d"].base(np.random.default_rng(1))
    attrs["skip"] = 0
    case = F.Case("ScalesConv2d", "named", "", attrs, params, x, version=spec.since)
    with pytest.raises(contract.ContractError, match=f"attribute 'skip' exists from scales_edge version {spec.since + 1}"):
        contract.check_model(case.model())


def test_pixel_shuffle_needs_version_3():
    """The real case of OpSpec.added: version 3's pixel_shuffle under version 2 is refused by the
    loaders; the node's own version (the default) is 3."""
    attrs, params, x = F.FUZZ["ScalesConv2d"].base(np.random.default_rng(3))
    attrs["pixel_shuffle"] = 1
    assert F.Case("ScalesConv2d", "named", "", dict(attrs), params, x).model().opset_import[1].version == 3
    case = F.Case("ScalesConv2d", "named", "", attrs, params, x, version=2)
    with pytest.raises(contract.ContractError, match="attribute 'pixel_shuffle' exists from scales_edge version 3"):
        contract.check_model(case.model())
