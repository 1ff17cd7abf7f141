#!/usr/bin/env bash
# Regenerate the prebuilt demo model that the runtime install (no PyTorch) runs in `scales-edge
# demo`: scales_edge/assets/demo_x4.onnx and demo_x4_fp32ref.onnx, exported from the bundled
# checkpoint scales_edge/assets/demo_srresnet_x4.pth exactly as `scales-edge demo` exports it
# (scales_edge.demo.export_demo). Run it after the checkpoint or the exporter changes;
# tests/test_demo_assets.py fails until then. Sets up .venv first and reinstalls the package
# afterwards, so the installed copy ships the new files. Deterministic: the same checkpoint, torch
# and exporter give the same bytes.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SCALES_EDGE_VENV:-.venv}/bin/activate"
# Run from / so that the installed package (with its export and runtime parts) is imported.
(cd / && python - "${repo}/scales_edge/assets" <<'PY'
import os
import sys
import tempfile
from pathlib import Path

from scales_edge.demo import export_demo

assets = Path(sys.argv[1])
names = ("demo_x4.onnx", "demo_x4_fp32ref.onnx")
with tempfile.TemporaryDirectory(dir=assets) as tmp:
    export_demo(assets / "demo_srresnet_x4.pth", *(Path(tmp) / n for n in names))
    for n in names:
        os.replace(Path(tmp) / n, assets / n)
        print(f"build-demo-onnx: {assets / n} ({(assets / n).stat().st_size:,} bytes)")
PY
)
rm -f "${SCALES_EDGE_VENV:-.venv}/.scales-edge-installed"  # reinstall even if git sees no change yet
bash scripts/setup.sh
