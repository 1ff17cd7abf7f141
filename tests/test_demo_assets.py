"""The prebuilt demo model the runtime install runs (`scales-edge demo` without PyTorch).

``scales_edge/assets/demo_x4.onnx`` and ``demo_x4_fp32ref.onnx`` must be what exporting the
bundled checkpoint gives today (``scales_edge.demo.export_demo``): the same metadata and the same
outputs, bit for bit, in ONNX Runtime. After the checkpoint or the exporter changes, regenerate
them with ``bash scripts/build-demo-onnx.sh``.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from _opslib import require_installed_library
from scales_edge.cli import app
from scales_edge.demo import DEMO_CHECKPOINT, DEMO_FP32_REFERENCE, DEMO_ONNX, export_demo
from scales_edge.runtime.session import make_session, metadata

require_installed_library()

REGENERATE = "regenerate them with `bash scripts/build-demo-onnx.sh`"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("demo_export")
    export_demo(DEMO_CHECKPOINT, d / DEMO_ONNX.name, d / DEMO_FP32_REFERENCE.name)
    return d


@pytest.mark.parametrize("shipped", [DEMO_ONNX, DEMO_FP32_REFERENCE], ids=lambda p: p.name)
def test_shipped_demo_onnx_is_a_fresh_export_of_the_checkpoint(fresh, shipped):
    assert shipped.is_file(), f"{shipped} is missing: {REGENERATE}"
    new = fresh / shipped.name
    a, b = onnx.load(str(shipped)), onnx.load(str(new))
    assert metadata(a) == metadata(b), f"{shipped.name}: metadata differs from a fresh export: {REGENERATE}"
    rng = np.random.default_rng(7)
    x = rng.random((1, 3, 23, 31), dtype=np.float32)
    x[0, :, :4, :4] = 0.0  # flat corners: activations exactly on thresholds are frequent there
    ya = make_session(a, threads=1).run(None, {"input": x})[0]
    yb = make_session(b, threads=1).run(None, {"input": x})[0]
    assert ya.shape == yb.shape == (1, 3, 92, 124)
    assert np.array_equal(ya, yb), (
        f"{shipped.name}: outputs differ from a fresh export of {DEMO_CHECKPOINT.name} "
        f"(max |diff| {np.abs(ya - yb).max():.3g}): {REGENERATE}"
    )


def test_demo_prebuilt_runs_and_checks_the_ops_against_the_numpy_reference(tmp_path):
    """`demo --prebuilt` (what the runtime install runs): the shipped model, parity against the
    numpy reference of the op domain, quality on the held-out photos, latency."""
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--prebuilt", "--out", str(out), "--runs", "1"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert s["prebuilt"] is True
    assert s["parity"]["against"].startswith("numpy reference")
    assert s["parity"]["passed"]
    assert s["parity"]["min_psnr_db"] == "inf" or s["parity"]["min_psnr_db"] >= 60
    assert (out / "demo_x4.onnx").read_bytes() == DEMO_ONNX.read_bytes()
    q = s["quality"]["mean"]
    assert q["psnr"] > q["bicubic_psnr"]
    assert s["bench"]["speedup_vs_fp32_reference"] > 0


def test_demo_prebuilt_refuses_a_checkpoint(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--prebuilt", "--ckpt", str(DEMO_CHECKPOINT), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "needs PyTorch" in res.output
