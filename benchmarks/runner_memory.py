"""The native runner against `scales-edge upscale` on one image, in the same run: peak RSS, time and
whether the output files are the same bytes (issue 14: the runner's peak RSS on the demo model at
1280x720 input with the default tile <= 600 MB).

Each command runs in its own process, in turn (runner, Python, runner, ...), `--repeats` times per
thread count; peak RSS is the child's ru_maxrss, time its wall clock and CPU (user + system).
Writes benchmarks/results/runner_memory.json; runner/README.md quotes it.

    python benchmarks/runner_memory.py [--model demo.onnx] [--size 1280x720] [--threads 1 2] [--repeats 1]

Without --model the packaged demo checkpoint is exported first (needs the authoring install). The
input is a photo (scikit-image's astronaut) resized to --size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "runner_memory.json"


def run_measured(cmd: list[str]) -> dict:
    """Run `cmd`; its peak RSS (MB), wall and CPU seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return {"peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "system_s": usage.ru_stime, "stdout": out.decode()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--tile", type=int, default=256)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    bindir = Path(sys.executable).parent
    runner = shutil.which("scales-edge-run", path=str(bindir)) or shutil.which("scales-edge-run")
    upscale = shutil.which("scales-edge", path=str(bindir)) or shutil.which("scales-edge")
    if not runner or not upscale:
        raise SystemExit("needs the scales-edge and scales-edge-run commands (pip install a scales-edge wheel)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            model = tmp / "demo.onnx"
            ckpt = REPO / "scales_edge" / "assets" / "demo_srresnet_x4.pth"
            subprocess.run([upscale, "export", str(ckpt), str(model)], check=True, capture_output=True)
        import cv2
        from skimage import data

        src = tmp / f"lr_{w}x{h}.png"
        cv2.imwrite(str(src), cv2.resize(data.astronaut()[..., ::-1], (w, h), interpolation=cv2.INTER_AREA))
        rows = []
        for threads in args.threads:
            for rep in range(args.repeats):
                out_r, out_p = tmp / f"run_{threads}_{rep}.png", tmp / f"py_{threads}_{rep}.png"
                r = run_measured([runner, str(model), "--input", str(src), "--output", str(out_r), "--tile",
                                  str(args.tile), "--threads", str(threads), "-q"])
                p = run_measured([upscale, "upscale", str(src), str(out_p), "--model", str(model), "--tile",
                                  str(args.tile), "--threads", str(threads)])
                report = json.loads(r.pop("stdout"))
                p.pop("stdout")
                same = out_r.read_bytes() == out_p.read_bytes()
                rows.append({"threads": threads, "repeat": rep, "runner": r, "upscale": p, "same_bytes": same,
                             "runner_tiling": report["runner"]["tiling"],
                             "runner_model_ms": report["results"][0]["median_ms"]})
                print(f"threads {threads}: runner {r['peak_rss_mb']:.0f} MB {r['wall_s']:.1f} s (cpu {r['cpu_s']:.1f} s); "
                      f"scales-edge upscale {p['peak_rss_mb']:.0f} MB {p['wall_s']:.1f} s (cpu {p['cpu_s']:.1f} s); "
                      f"same bytes: {same}", flush=True)
        machine = json.loads(subprocess.run([runner, str(model), "--size", "8x8", "--runs", "1", "--warmup", "0", "-q"],
                                            capture_output=True, text=True, check=True).stdout)["machine"]
    result = {
        "schema": "scales-edge.runner-memory/1",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine, "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "model": str(args.model or "demo_srresnet_x4.pth exported"),
        "input": f"{w}x{h} RGB PNG (astronaut)",
        "tile": args.tile,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
