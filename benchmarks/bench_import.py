"""What `import scales_edge` costs in a runtime install (no torch), against ONNX Runtime alone.

A runtime venv is made from the x86 wheel in dist/ (scripts/runtime-venv.sh: the wheel and its
runtime dependencies, no torch) unless it exists in build/bench-import-venv (`--fresh` remakes it).
Each case runs in a fresh interpreter, the cases alternating round by round; a case reports the
wall time of its import statement (perf_counter around it, interpreter start-up excluded) and the
resident set size right after it (VmRSS) and at peak (ru_maxrss). Medians over the rounds; ratios
are of medians from the same run. Cases:

  floor              `pass`: the interpreter alone (its RSS is the floor of every case)
  scales_edge        `import scales_edge` (target: <= 0.3 s, RSS after import <= 80 MB)
  get_library_path   `import scales_edge; scales_edge.get_library_path()`
  onnxruntime        `import onnxruntime`: the baseline the issue measured (0.18 s, 47 MB)
  readme_snippet     `import numpy, onnxruntime, scales_edge` + get_library_path(): README's imports
  cli                `import scales_edge.cli`: what every `scales-edge` command pays before it works
  dev_torch          `import torch` in the development venv (.venv): what `import scales_edge`
                     cost when the package imported torch eagerly (issue 14: 1.8 s, 224 MB)

    python benchmarks/bench_import.py [--rounds 15] [--fresh]   -> benchmarks/results/import.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "build" / "bench-import-venv"
TARGETS = {"seconds": 0.3, "rss_mb": 80.0}

CASES = {
    "floor": "pass",
    "scales_edge": "import scales_edge",
    "get_library_path": "import scales_edge; scales_edge.get_library_path()",
    "onnxruntime": "import onnxruntime",
    "readme_snippet": "import numpy, onnxruntime, scales_edge; scales_edge.get_library_path()",
    "cli": "import scales_edge.cli",
}
DEV_CASES = {"dev_torch": "import torch"}

CHILD = r"""
import resource, sys, time
t0 = time.perf_counter()
exec(sys.argv[1])
dt = time.perf_counter() - t0
rss = 0.0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
print(dt, rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch" in sys.modules)
"""


def runtime_python(fresh: bool) -> Path:
    python = VENV / "bin" / "python"
    if python.exists() and not fresh:
        return python
    wheels = sorted((REPO / "dist").glob("scales_edge-*-py3-none-manylinux_2_28_x86_64.whl"))
    if not wheels:
        sys.exit("bench_import: no x86 wheel in dist/: run `bash scripts/build-wheels.sh x86_64` first")
    if VENV.exists():
        subprocess.run(["rm", "-rf", str(VENV)], check=True)
    subprocess.run(["bash", str(REPO / "scripts" / "runtime-venv.sh"), str(wheels[-1]), str(VENV)], check=True,
                   env={**os.environ, "PYTHON": sys.executable}, stdout=subprocess.DEVNULL)
    return python


def measure(python: Path, code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCALES_EDGE_OPS_LIB")}
    out = subprocess.run([str(python), "-c", CHILD, code], capture_output=True, text=True, cwd="/", env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{python} -c {code!r} failed: {out.stderr.strip().splitlines()[-1:]}")
    dt, rss, peak, torch = out.stdout.split()
    return {"seconds": float(dt), "rss_mb": float(rss), "peak_rss_mb": float(peak), "torch_imported": torch == "True"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--fresh", action="store_true", help="remake the runtime venv from dist/")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "import.json")
    args = ap.parse_args()
    rt = runtime_python(args.fresh)
    dev = REPO / ".venv" / "bin" / "python"
    plan = [(name, rt, code) for name, code in CASES.items()]
    if dev.exists():
        plan += [(name, dev, code) for name, code in DEV_CASES.items()]
    samples: dict[str, list[dict]] = {name: [] for name, _, _ in plan}
    for name, python, code in plan:  # warm the page cache and .pyc files; not recorded
        measure(python, code)
    for _ in range(args.rounds):
        for name, python, code in plan:
            samples[name].append(measure(python, code))
    results = {}
    for name, runs in samples.items():
        results[name] = {
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "min_seconds": min(r["seconds"] for r in runs),
            "median_rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "torch_imported": any(r["torch_imported"] for r in runs),
        }
    se, ort = results["scales_edge"], results["onnxruntime"]
    verdict = {
        "import_seconds": se["median_seconds"],
        "import_seconds_target": TARGETS["seconds"],
        "rss_after_import_mb": se["median_rss_mb"],
        "rss_target_mb": TARGETS["rss_mb"],
        "met": se["median_seconds"] <= TARGETS["seconds"] and se["median_rss_mb"] <= TARGETS["rss_mb"]
        and not se["torch_imported"],
        "seconds_ratio_vs_onnxruntime": se["median_seconds"] / ort["median_seconds"],
        "rss_ratio_vs_onnxruntime": se["median_rss_mb"] / ort["median_rss_mb"],
    }
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    versions = subprocess.run([str(rt), "-c", "import onnxruntime, numpy, scales_edge; "
                               "print(onnxruntime.__version__, numpy.__version__, scales_edge.__version__)"],
                              capture_output=True, text=True, cwd="/").stdout.split()
    payload = {
        "what": "import cost of scales_edge in a runtime install without torch (benchmarks/bench_import.py)",
        "rounds": args.rounds,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                    "python": platform.python_version()},
        "versions": dict(zip(("onnxruntime", "numpy", "scales_edge"), versions)),
        "cases": {name: {"code": code, **results[name]} for name, _, code in plan},
        "targets": verdict,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, args.out)
    print(f"{'case':18} {'median s':>9} {'RSS MB':>7} {'peak MB':>8}")
    for name, r in results.items():
        print(f"{name:18} {r['median_seconds']:9.3f} {r['median_rss_mb']:7.1f} {r['median_peak_rss_mb']:8.1f}"
              f"{'  (torch imported)' if r['torch_imported'] else ''}")
    print(f"import scales_edge: {se['median_seconds']:.3f} s (target <= {TARGETS['seconds']} s), "
          f"{se['median_rss_mb']:.1f} MB after import (target <= {TARGETS['rss_mb']:.0f} MB): "
          f"{'met' if verdict['met'] else 'NOT met'}; vs onnxruntime alone x{verdict['seconds_ratio_vs_onnxruntime']:.2f} "
          f"time, x{verdict['rss_ratio_vs_onnxruntime']:.2f} RSS; wrote {args.out}")


if __name__ == "__main__":
    main()
