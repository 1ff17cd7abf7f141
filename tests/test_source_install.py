"""Source installs that just work: the sdist builds a wheel on a machine with no ONNX Runtime
headers (CMake fetches Debian 13's libonnxruntime-dev itself, as scripts/fetch-ort-headers.sh does),
and when that cannot work the build stops with one message that names what a pip user can do.

The sdist is built from this tree with `python -m build --sdist` (the [test] extra has `build`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What CMake would otherwise find: the environment variable and the checkout's fetched copy are not
# in the unpacked sdist's reach; /usr/include/onnxruntime must not be there either.
NO_HEADERS_ENV = {k: v for k, v in os.environ.items() if k not in ("ONNXRUNTIME_INCLUDE_DIR", "CMAKE_ARGS")}

pytestmark = pytest.mark.skipif(Path("/usr/include/onnxruntime/onnxruntime_cxx_api.h").exists(),
                                reason="system ORT headers installed: the no-headers path cannot be exercised")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tuple[Path, Path]:
    """(the sdist, its unpacked tree)."""
    out = tmp_path_factory.mktemp("sdist")
    res = subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(out), str(REPO)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    archive = next(out.glob("scales_edge-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(out / "tree", filter="data")
    tree = next((out / "tree").iterdir())
    return archive, tree


def test_sdist_has_what_the_build_needs_and_no_fetched_headers(sdist):
    _, tree = sdist
    for f in ("CMakeLists.txt", "ops/CMakeLists.txt", "scripts/fetch-ort-headers.sh", "cmake/debian-sysroot.cmake",
              "export/onnx_export.py", "runtime/library.py", "scales_edge/assets/demo_x4.onnx"):
        assert (tree / f).is_file(), f"the sdist lacks {f}"
    assert not (tree / "third_party").exists(), "the sdist carries fetched headers (third_party/ is gitignored)"


def test_configure_without_headers_names_what_a_pip_user_can_do(sdist, tmp_path):
    _, tree = sdist
    src = tmp_path / "src"
    shutil.copytree(tree, src)
    env = {**NO_HEADERS_ENV, "ORT_HEADERS_MIRROR": "http://127.0.0.1:9/debian"}  # nothing listens there
    res = subprocess.run(["cmake", "-S", str(src), "-B", str(tmp_path / "b")], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode != 0
    text = " ".join(res.stderr.split())
    assert "fetching them from Debian 13's libonnxruntime-dev failed: fetch-ort-headers: error:" in text, res.stderr
    assert "ONNXRUNTIME_INCLUDE_DIR=/path/to/onnxruntime/include pip install ." in text, res.stderr
    res = subprocess.run(["cmake", "-S", str(src), "-B", str(tmp_path / "c"), "-DSCALES_EDGE_FETCH_ORT_HEADERS=OFF"],
                         capture_output=True, text=True, env=NO_HEADERS_ENV, timeout=600)
    assert res.returncode != 0 and "SCALES_EDGE_FETCH_ORT_HEADERS=OFF" in res.stderr


def test_wheel_from_the_sdist_fetches_the_headers_itself(sdist, tmp_path):
    """`pip wheel scales_edge-*.tar.gz` with no headers anywhere: the build fetches them and the
    wheel holds the op library."""
    archive, _ = sdist
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(archive)],
                         capture_output=True, text=True, env={**NO_HEADERS_ENV, "CMAKE_BUILD_PARALLEL_LEVEL": "2"},
                         timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "fetching Debian 13's libonnxruntime-dev" in res.stdout + res.stderr
    wheel = next(tmp_path.glob("scales_edge-*.whl"))
    assert "-py3-none-" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        assert "scales_edge/libscales_edge_ops.so" in z.namelist()
