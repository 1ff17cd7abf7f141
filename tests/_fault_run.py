"""The runner of tests/_faults.py: cases in worker processes (``_fault_worker.py``) that report
each case before running it, so a crash or a hang is recorded against its case and a new worker
goes on; :func:`sweep` runs and judges a set of cases under one kernel path."""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from _faults import Case, expected, judge

WORKER = Path(__file__).with_name("_fault_worker.py")


def run_cases(cases: list[Case], kernel: str | None | list[str | None], timeout: float = 120.0,
              memory_limit: int = 6 << 30) -> list[tuple[str, Any]]:
    """Each case's outcome, ``("ok", output)``, ``("error", message)``, ``("crash", how)`` or
    ``("timeout", seconds)``, running them in worker processes under kernel path ``kernel`` (None:
    the default; a list: one per case)."""
    kernels = kernel if isinstance(kernel, list) else [kernel] * len(cases)
    env = dict(os.environ)
    env.pop("SCALES_EDGE_KERNEL", None)
    env["SCALES_EDGE_FAULT_MEMORY"] = str(memory_limit)
    results: dict[int, tuple[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="scales-edge-faults-") as tmp:
        cases_path, results_path = Path(tmp) / "cases.pkl", Path(tmp) / "results.pkl"
        payload = [dict(model=c.model().SerializeToString(), feeds=c.feeds(), mode=c.mode, threads=1 + i % 2,
                        kernel=k) for i, (c, k) in enumerate(zip(cases, kernels))]
        cases_path.write_bytes(pickle.dumps(payload))
        start = 0
        while start < len(cases):
            proc = subprocess.Popen([sys.executable, str(WORKER), str(cases_path), str(results_path), str(start)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            current, timed_out = start, False
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                events = sel.select(max(0.0, deadline - time.monotonic()))
                if not events:
                    timed_out = True
                    proc.kill()
                    break
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        current = int(line)
                        deadline = time.monotonic() + timeout
            rc = proc.wait()
            sel.close()
            proc.stdout.close()
            results.update(_read_results(results_path))
            if rc == 0 and not timed_out:
                break
            if current not in results:
                results[current] = ("timeout", timeout) if timed_out else ("crash", _how(rc))
            start = current + 1
    return [results.get(i, ("crash", "never ran")) for i in range(len(cases))]


def run_in_process(case: Case, kernel: str | None = None) -> tuple[str, Any]:
    """What the worker does, here (for cases known not to crash)."""
    from _fault_worker import run_one

    return run_one(dict(model=case.model().SerializeToString(), feeds=case.feeds(), mode=case.mode, threads=1,
                        kernel=kernel))


def _read_results(path: Path) -> dict[int, tuple[str, Any]]:
    out = {}
    if not path.exists():
        return out
    with open(path, "rb") as f:
        while True:
            try:
                i, res = pickle.load(f)
            except (EOFError, pickle.UnpicklingError):
                break
            out[i] = res
    return out


def _how(rc: int) -> str:
    if rc < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


# ---------------------------------------------------------------------------- the sweep


@dataclass
class Report:
    kernel: str
    verdicts: list[tuple[Case, str, str]]

    def failures(self) -> list[tuple[Case, str, str]]:
        return [v for v in self.verdicts if v[1] not in ("pass", "refused-extreme")]

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v[1] == verdict)

    def summary(self) -> str:
        kinds = ("pass", "crash", "timeout", "wrong", "refused", "message", "refused-extreme")
        text = f"{self.kernel}: {len(self.verdicts)} runs, " + ", ".join(f"{k} {self.count(k)}" for k in kinds)
        return text


def sweep(cases: list[Case], kernel: str | None) -> Report:
    """Run and judge the plain-ORT cases under kernel path ``kernel``, or with ``None`` the
    ``make_session`` cases under the default path (the contract checks do not depend on it)."""
    if kernel is None:  # every case through make_session, which must judge them alike
        todo = [c for c in cases if c.mode == "scales"]
        todo += [replace(c, mode="scales") for c in cases if c.mode == "ort" and c.expect != "either"]
    else:
        todo = [c for c in cases if c.mode == "ort"]
    wants = [expected(c) for c in todo]
    gots = run_cases(todo, kernel)
    return Report(kernel or "make_session", [(c, *judge(c, w, g)) for c, w, g in zip(todo, wants, gots)])
