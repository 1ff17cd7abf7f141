"""Latency benchmark of ONNX models in ONNX Runtime (with the scales-edge ops registered).

Each model gets a warm-up, then ``runs`` timed runs on the same random input; with several models
(a model and its baseline) the timed runs alternate between them in one process, so both see the
same machine state and the ratio of their medians is meaningful on a noisy machine. With
``profile=True`` each model then runs again in its own profiled session (:mod:`.profiling`), after
the timed runs, so profiling overhead never enters the latency numbers.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .library import kernel_choices
from .memory import check_run_fits
from .profiling import profile_model
from .session import load_model, make_session, metadata

JSON_SCHEMA = "scales-edge.bench/1"


@dataclass
class BenchResult:
    model: str
    file_bytes: int
    input_shape: list[int]
    output_shape: list[int]
    threads: int
    runs: int
    warmup: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    megapixels_per_s: float  # output megapixels per second at the median
    profile: dict[str, Any] | None = None  # Profile.to_dict() when profiled
    # Median CPU time of the calling thread per run (ms): at 1 thread ONNX Runtime runs the graph on
    # it, so on a shared machine this leaves out the time the process waited for a core.
    cpu_median_ms: float | None = None
    # The kernel path each scales_edge op node ran (library.kernel_choices(), for this model)
    kernels: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _stats(times: list[float]) -> dict[str, float]:
    a = np.asarray(times) * 1e3
    return {
        "median_ms": float(np.median(a)),
        "p10_ms": float(np.percentile(a, 10)),
        "p90_ms": float(np.percentile(a, 90)),
        "min_ms": float(a.min()),
        "mean_ms": float(a.mean()),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info() -> dict[str, object]:
    import onnxruntime as ort

    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    model = ""
    try:
        model = next(
            (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")),
            "",
        )
    except OSError:
        pass
    interesting = ["avx2", "avx512f", "avx512bw", "avx512_vpopcntdq", "avx512_vnni", "amx_int8", "asimd", "neon"]
    return {
        "machine": platform.machine(),
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "cpu_flags": [f for f in interesting if f in flags],
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def _forced_kernel(path: str | None):
    """SCALES_EDGE_KERNEL=path while a session is created (the ops read it then); None: unchanged."""
    if path is None:
        yield
        return
    old = os.environ.get("SCALES_EDGE_KERNEL")
    os.environ["SCALES_EDGE_KERNEL"] = path
    try:
        yield
    finally:
        if old is None:
            del os.environ["SCALES_EDGE_KERNEL"]
        else:
            os.environ["SCALES_EDGE_KERNEL"] = old


def benchmark(
    models: Sequence[str | os.PathLike],
    size: tuple[int, int] = (180, 320),
    threads: int = 1,
    runs: int = 20,
    warmup: int = 3,
    seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
    profile: bool = False,
    kernel_paths: Sequence[str | None] | None = None,
) -> list[BenchResult]:
    """Benchmark ``models`` (alternating) on one random ``[1, C, H, W]`` input; ``size`` is (H, W).

    ``kernel_paths``: per model, the kernel path its session forces (``SCALES_EDGE_KERNEL`` while
    it is created; None: the environment's setting), so one model can be timed on every path.

    ``profile``: afterwards, run each model ``warmup + runs`` more times in a profiled session and
    attach the kernel time per op type and per group (:class:`.profiling.Profile`).

    With several models, the sessions' intra-op threads do not spin between runs: each session
    has its own pool, and threads left spinning by the model that just ran would take the cores
    from the next one (at 2 threads that made ORT's own FP32 Conv 1.4x slower than at 1 thread)."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    if kernel_paths is not None and len(kernel_paths) != len(models):
        raise ValueError("kernel_paths needs one entry per model")
    sessions = []
    for i, m in enumerate(models):
        proto = load_model(m)
        path = kernel_paths[i] if kernel_paths is not None else None
        with _forced_kernel(path):
            sess = make_session(m, threads=threads, spin=len(models) == 1)
        sessions.append((str(m), Path(m).stat().st_size, sess, metadata(proto)))
    rng = np.random.default_rng(seed)
    feeds = []
    for name, _, sess, meta in sessions:
        inp = sess.get_inputs()[0]
        channels = inp.shape[1] if isinstance(inp.shape[1], int) else 3
        check_run_fits(meta, channels, *size, what=name)  # before allocating anything
        shape = (1, channels, *size)
        if inp.type == "tensor(uint8)":  # quantized baselines take uint8 directly
            feeds.append({inp.name: rng.integers(0, 256, shape, dtype=np.uint8)})
        else:
            feeds.append({inp.name: rng.random(shape, dtype=np.float32)})
    out_shapes = []
    kernels: list[list[dict[str, Any]]] = []
    total = len(sessions) * (warmup + runs) * (2 if profile else 1)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_step:
            on_step(done, total)

    for (_, _, sess, _), feed in zip(sessions, feeds):
        out = None
        before = len(kernel_choices())  # each op chooses its path in its first run
        for _ in range(warmup):
            out = sess.run(None, feed)[0]
            step()
        if out is None:
            out = sess.run(None, feed)[0]
        out_shapes.append(list(out.shape))
        kernels.append(kernel_choices()[before:])
    times: list[list[float]] = [[] for _ in sessions]
    cpu: list[list[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for i, ((_, _, sess, _), feed) in enumerate(zip(sessions, feeds)):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            sess.run(None, feed)
            times[i].append(time.perf_counter() - t0)
            cpu[i].append(time.thread_time() - c0)
            step()
    profiles: list[dict[str, Any] | None] = [None] * len(sessions)
    if profile:
        sess = None
        sessions = [(name, nbytes, None, meta) for name, nbytes, _, meta in sessions]  # free the timed sessions
        for i, ((name, _, _, _), feed) in enumerate(zip(sessions, feeds)):
            profiles[i] = profile_model(name, feed, threads, runs, warmup, on_run=step).to_dict()
    results = []
    for (name, nbytes, _, _), feed, shape, t, c, prof, kern in zip(
        sessions, feeds, out_shapes, times, cpu, profiles, kernels
    ):
        st = _stats(t)
        mp = (shape[-1] * shape[-2]) / 1e6 if len(shape) == 4 else 0.0
        results.append(
            BenchResult(
                model=name,
                file_bytes=nbytes,
                input_shape=list(next(iter(feed.values())).shape),
                output_shape=shape,
                threads=threads,
                runs=runs,
                warmup=warmup,
                megapixels_per_s=mp / (st["median_ms"] / 1e3),
                profile=prof,
                cpu_median_ms=float(np.median(c) * 1e3) if threads == 1 else None,
                kernels=kern,
                **st,
            )
        )
    return results
