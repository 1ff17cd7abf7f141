"""The deployment side never imports the authoring side (style.md: Layers a newcomer can see).

Every runtime module is imported in a fresh interpreter where ``import torch`` fails
(``sys.modules['torch'] = None``); none may need torch, and none may pull in the authoring
packages (``scales_edge.nn``, ``models``, ``training``, ``export``, ``checkpoints``). This checks
module-level imports; tests/test_wheels.py runs the runtime commands in a venv with no torch at all.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys


import scales_edge
import scales_edge.cli
import scales_edge.runtime

AUTHORING = ("scales_edge.nn", "scales_edge.models", "scales_edge.training", "scales_edge.export",
             "scales_edge.checkpoints")
# The torch-free modules of the package (the CLI's command modules import torch only inside commands).
RUNTIME_TOP = ("scales_edge", "scales_edge.errors", "scales_edge.fileio", "scales_edge.data", "scales_edge.metrics",
               "scales_edge.quality", "scales_edge.info", "scales_edge.demo")


def _runtime_modules() -> list[str]:
    mods = list(RUNTIME_TOP)
    for pkg in (scales_edge.runtime, scales_edge.cli):
        mods.append(pkg.__name__)
        mods += [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    return mods


PROBE = """
import importlib, json, sys, traceback
sys.modules["torch"] = None  # any `import torch` now raises ModuleNotFoundError
report = {}
for name in json.loads(sys.argv[1]):
    before = set(sys.modules)
    try:
        importlib.import_module(name)
        error = None
    except BaseException:
        error = traceback.format_exc(limit=-3)
    report[name] = {"error": error, "new": sorted(set(sys.modules) - before)}
print(json.dumps(report))
"""


def test_the_runtime_module_list_is_complete():
    """A new runtime module is covered without editing this test (the walk finds it)."""
    mods = _runtime_modules()
    assert "scales_edge.runtime.validate" in mods and "scales_edge.runtime.tiling" in mods
    assert "scales_edge.cli.upscale" in mods and "scales_edge.cli.common" in mods


def test_runtime_modules_import_without_torch_or_authoring():
    """One interpreter imports the modules in turn; what each one adds to sys.modules is its own."""
    mods = _runtime_modules()
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(mods)], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(mods)
    failed = {m: r["error"] for m, r in report.items() if r["error"]}
    assert not failed, "runtime modules that need torch (or fail) at import:\n" + "\n".join(
        f"{m}:\n{e}" for m, e in failed.items())
    pulled = {m: [n for n in r["new"] if n.startswith(AUTHORING)] for m, r in report.items()}
    pulled = {m: v for m, v in pulled.items() if v}
    assert not pulled, f"runtime modules that pull in the authoring side: {pulled}"


def test_the_probe_catches_a_torch_import(tmp_path):
    """The probe itself: a module that imports torch is reported, one that imports an authoring
    package is too (so the test above cannot pass vacuously)."""
    (tmp_path / "uses_torch.py").write_text("import torch\n")
    (tmp_path / "uses_models.py").write_text("import scales_edge.nn\n")
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(["uses_torch", "uses_models"])],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "ModuleNotFoundError" in report["uses_torch"]["error"]
    assert report["uses_models"]["error"] or any(n.startswith(AUTHORING) for n in report["uses_models"]["new"])
def test_import_scales_edge_loads_neither_onnx_nor_onnxruntime():
    """`import scales_edge` and get_library_path() cost what the runtime costs: nothing heavy (the
    README snippet imports onnxruntime itself). benchmarks/bench_import.py measures the time/RSS."""
    code = ("import sys, scales_edge; scales_edge.get_library_path(); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
