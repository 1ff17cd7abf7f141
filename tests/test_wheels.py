"""The portable wheels of scripts/build-wheels.sh, and the runtime install (no PyTorch) they give.

* each wheel is ``py3-none-manylinux_2_28_<arch>`` and its ELF files stay within that policy
  (GLIBC <= 2.28; GLIBCXX <= 3.4.25 and CXXABI <= 1.3.11, i.e. the libstdc++ of GCC 8), checked by
  scripts/check_wheel.py; pip accepts it for every Python 3;
* the x86-64 wheel's op library loads and computes in a Debian 11 userland (its dynamic loader,
  glibc 2.31 and GCC 10's libstdc++, the root build-wheels.sh builds against), driven by
  tests/cpp/ort_driver.c through ONNX Runtime's C API, with the same output as this machine's
  ONNX Runtime; as docs/arm.md's aarch64 check does for the board side. (No GCC 8 userland is
  reachable from this machine's package registries; the GCC 8 bound is the symbol check above.)
* the aarch64 wheel's op library does the same under qemu-aarch64 in Debian 11's arm64 userland;
* a fresh venv with the x86 wheel and the runtime dependencies only (scripts/runtime-venv.sh:
  binary wheels, no compiler, no torch) runs the README snippet, ``upscale``, ``bench``,
  ``validate --images``, ``info`` and ``demo``; the authoring commands say in one line (exit 2)
  that they need ``scales-edge[torch]``.

The wheels come from ``bash scripts/build-wheels.sh`` (scripts/test.sh runs it before pytest); a
missing wheel or root skips these tests, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from scales_edge.demo import DEMO_CHECKPOINT, DEMO_ONNX
from scales_edge.runtime.validate import image_psnr

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
X86_ROOT = REPO / ".cache" / "x86_64" / "sysroot-bullseye"
ARM_ENV = REPO / ".cache" / "arm" / "env.sh"
DRIVER = REPO / "tests" / "cpp" / "ort_driver.c"
SKIP_ARM = os.environ.get("SCALES_EDGE_SKIP_ARM") == "1"

_spec = importlib.util.spec_from_file_location("check_wheel", REPO / "scripts" / "check_wheel.py")
check_wheel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_wheel)


def _missing(reason: str, arch: str = "x86_64"):
    if os.environ.get("CI") and not (arch == "aarch64" and SKIP_ARM):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _wheel(arch: str) -> Path:
    found = sorted(DIST.glob(f"scales_edge-*-py3-none-manylinux_2_28_{arch}.whl"))
    if not found:
        _missing(f"no {arch} wheel in dist/: run `bash scripts/build-wheels.sh {arch}`", arch)
    return found[-1]


def _ort_headers() -> Path:
    for d in (os.environ.get("ONNXRUNTIME_INCLUDE_DIR"), REPO / "third_party" / "ort-headers" / "include",
              "/usr/include/onnxruntime"):
        if d and (Path(d) / "onnxruntime_c_api.h").is_file():
            return Path(d)
    _missing("no ONNX Runtime headers: run `bash scripts/fetch-ort-headers.sh`")


def _extract_ops(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        lib = dest / "libscales_edge_ops.so"
        lib.write_bytes(z.read("scales_edge/libscales_edge_ops.so"))
    return lib


def _build_driver(cc: str, root: Path, triple: str, out: Path) -> Path:
    """tests/cpp/ort_driver.c built against ``root``'s glibc (C only: no libstdc++ of its own)."""
    gcc_inc = subprocess.run([cc, "-print-file-name=include"], capture_output=True, text=True, check=True).stdout.strip()
    cmd = [cc, "-O1", "-std=c11", "-Wall", "-Wextra", "-Werror", "-nostdinc", "-isystem", gcc_inc,
           "-isystem", f"{root}/usr/include/{triple}", "-isystem", f"{root}/usr/include", "-isystem", str(_ort_headers()),
           f"--sysroot={root}", f"-B{root}/usr/lib/{triple}/", f"-L{root}/usr/lib/{triple}", f"-L{root}/lib/{triple}",
           str(DRIVER), "-o", str(out), "-ldl"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"building {DRIVER.name}:\n{res.stderr[-3000:]}"
    return out


def _input(tmp_path: Path, shape=(1, 3, 12, 16)) -> tuple[np.ndarray, Path]:
    x = np.random.default_rng(5).random(shape, dtype=np.float32)
    path = tmp_path / "x.f32"
    x.tofile(path)
    return x, path


def _ort_reference(lib: Path, model: Path, x: np.ndarray) -> np.ndarray:
    """This machine's ONNX Runtime (Python) with the same op library, one thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.register_custom_ops_library(str(lib))
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _driver_output(out: subprocess.CompletedProcess, path: Path) -> np.ndarray:
    assert out.returncode == 0, f"ort_driver failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    shape = tuple(int(v) for v in re.search(r"^shape ([\d ]+)$", out.stdout, re.M).group(1).split())
    return np.fromfile(path, dtype=np.float32).reshape(shape)


def _max_version(lib: Path, family: str, section: str) -> tuple[int, ...]:
    """The highest ``family`` version a shared library defines (section "definition") or needs."""
    text = subprocess.run(["readelf", "-V", str(lib)], capture_output=True, text=True, check=True).stdout
    part = text.split(f"Version {section} section", 1)[1].split("Version ", 1)[0] if f"Version {section} section" in text else ""
    vs = [tuple(int(p) for p in v.split(".")) for v in re.findall(rf"{family}_([0-9.]+[0-9])", part)]
    return max(vs) if vs else (0,)


# ----------------------------------------------------------------------------------- the wheels


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_wheel_is_py3_none_manylinux_2_28(arch, tmp_path):
    wheel = _wheel(arch)
    problems, report = check_wheel.check(wheel, arch)
    assert not problems, problems
    needs = report["scales_edge/libscales_edge_ops.so"]["versions"]
    print(f"{wheel.name}: libscales_edge_ops.so needs {needs}")
    assert tuple(map(int, needs["GLIBCXX"].split("."))) <= (3, 4, 25)  # libstdc++ of GCC 8
    assert tuple(map(int, needs["GLIBC"].split("."))) <= (2, 28)
    # One wheel for every Python 3: pip takes it for other interpreters than the one that built it.
    for version in ("3.10", "3.12", "3.13"):
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--ignore-installed",
             "--only-binary=:all:", "--python-version", version, "--platform", f"manylinux_2_28_{arch}",
             "--target", str(tmp_path / "t"), str(wheel)],
            capture_output=True, text=True)
        assert res.returncode == 0, f"pip refuses {wheel.name} for Python {version}:\n{res.stderr[-1500:]}"


def test_check_wheel_rejects_a_gcc11_library(tmp_path):
    """The bound has teeth: a copy of the wheel whose library is this machine's native build (GCC
    12's libstdc++, GLIBCXX_3.4.29 when a kernel needs it) is refused, or the native build really
    is within the bound."""
    from scales_edge import get_library_path

    native = Path(get_library_path())
    bad = tmp_path / _wheel("x86_64").name
    with zipfile.ZipFile(_wheel("x86_64")) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = native.read_bytes() if item.filename == "scales_edge/libscales_edge_ops.so" else src.read(item)
            dst.writestr(item, data)
    problems, _ = check_wheel.check(bad, "x86_64")
    if _max_version(native, "GLIBCXX", "needs") > (3, 4, 25):
        assert any("GLIBCXX" in p for p in problems), problems
    else:
        assert not problems


def test_x86_wheel_runs_in_a_debian11_userland(tmp_path):
    """The x86 wheel's op library in ONNX Runtime under Debian 11's ld.so, glibc and libstdc++
    (GCC 10: older than the GCC 11 libstdc++ a build against this machine's compiler needs)."""
    wheel = _wheel("x86_64")
    loader = X86_ROOT / "lib64" / "ld-linux-x86-64.so.2"
    if not (X86_ROOT / ".packages").is_file() or not loader.exists():
        _missing(f"no Debian 11 amd64 root in {X86_ROOT}: run `bash scripts/build-wheels.sh x86_64`")
    root_libstdcxx = X86_ROOT / "usr" / "lib" / "x86_64-linux-gnu" / "libstdc++.so.6"
    assert _max_version(root_libstdcxx, "GLIBCXX", "definition") < (3, 4, 29), "the root's libstdc++ is not older than GCC 11's"
    lib = _extract_ops(wheel, tmp_path)
    driver = _build_driver(shutil.which("gcc") or "cc", X86_ROOT, "x86_64-linux-gnu", tmp_path / "ort_driver")
    import onnxruntime

    ort_lib = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))[0]
    x, xin = _input(tmp_path)
    libs = f"{X86_ROOT}/lib/x86_64-linux-gnu:{X86_ROOT}/usr/lib/x86_64-linux-gnu"
    cmd = [str(loader), "--library-path", libs, str(driver), str(ort_lib), str(lib), str(DEMO_ONNX), str(xin),
           *map(str, x.shape), str(tmp_path / "y.f32")]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    y = _driver_output(subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300), tmp_path / "y.f32")
    # It really ran there: the process mapped the root's libstdc++, not this machine's.
    maps = subprocess.run([str(loader), "--library-path", libs, "--list", str(ort_lib)], capture_output=True, text=True)
    assert str(root_libstdcxx.parent) in maps.stdout, maps.stdout
    assert np.array_equal(y, _ort_reference(lib, DEMO_ONNX, x))


def test_aarch64_wheel_runs_under_qemu(tmp_path):
    """The aarch64 wheel's op library in the aarch64 ONNX Runtime under qemu, Debian 11's arm64
    userland; the same model as x86 ONNX Runtime to float rounding (PSNR >= 60 dB, as
    tests/test_arm.py: the FP layers round differently on the two ISAs)."""
    wheel = _wheel("aarch64")
    if not ARM_ENV.is_file() or shutil.which("aarch64-linux-gnu-gcc") is None:
        _missing("no aarch64 toolchain / emulation: run `bash scripts/arm-setup.sh`", "aarch64")
    env_sh = dict(re.findall(r'^export (\w+)="(.*)"$', ARM_ENV.read_text(), re.M))
    root = Path(env_sh["SCALES_EDGE_AARCH64_SYSROOT"])
    if env_sh.get("SCALES_EDGE_AARCH64_COMPAT") != "1":
        _missing("the aarch64 root is not Debian 11's (ARM_SYSROOT_SUITE)", "aarch64")
    lib = _extract_ops(wheel, tmp_path)
    driver = _build_driver("aarch64-linux-gnu-gcc", root, "aarch64-linux-gnu", tmp_path / "ort_driver")
    x, xin = _input(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("SCALES_EDGE_OPS_LIB", "SCALES_EDGE_KERNEL")}
    cmd = [env_sh["SCALES_EDGE_QEMU"], "-L", str(root), str(driver), env_sh["SCALES_EDGE_ORT_AARCH64_LIB"], str(lib),
           str(DEMO_ONNX), str(xin), *map(str, x.shape), str(tmp_path / "y.f32")]
    y = _driver_output(subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900), tmp_path / "y.f32")
    from scales_edge import get_library_path

    ref = _ort_reference(Path(get_library_path()), DEMO_ONNX, x)
    assert y.shape == ref.shape
    assert image_psnr(y, ref) >= 60.0


# ----------------------------------------------------------------------------------- runtime install


class RuntimeVenv:
    def __init__(self, root: Path):
        self.root = root
        self.python = root / "bin" / "python"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SCALES_EDGE_OPS_LIB")}
        self.env["PATH"] = f"{root / 'bin'}:{self.env.get('PATH', '')}"

    def run(self, args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=self.env, timeout=timeout)

    def cli(self, *args, cwd: Path) -> subprocess.CompletedProcess:
        return self.run([self.root / "bin" / "scales-edge", *args], cwd)


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> RuntimeVenv:
    wheel = _wheel("x86_64")
    root = tmp_path_factory.mktemp("runtime") / "venv"
    res = subprocess.run(["bash", str(REPO / "scripts" / "runtime-venv.sh"), str(wheel), str(root)],
                         capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return RuntimeVenv(root)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two HR photo crops (96 px, from the sample photos of this venv's scikit-image/matplotlib)."""
    from scales_edge.data import sample_photos

    found = sample_photos()
    d = tmp_path_factory.mktemp("hr")
    for name in [n for n in ("coffee", "astronaut", "grace_hopper") if n in found][:2]:
        img = cv2.imread(str(found[name]), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        assert cv2.imwrite(str(d / f"{name}.png"), img[h // 3 : h // 3 + 96, w // 3 : w // 3 + 96])
    return d


def test_runtime_install_has_no_torch(rt, tmp_path):
    code = ("import importlib.util, sys, scales_edge; p = scales_edge.get_library_path(); "
            "print(importlib.util.find_spec('torch') is None, 'torch' in sys.modules, p)")
    res = rt.run([rt.python, "-c", code], tmp_path)
    assert res.returncode == 0, res.stderr
    no_torch, imported, lib = res.stdout.split()
    assert (no_torch, imported) == ("True", "False")
    assert Path(lib).is_relative_to(rt.root), lib


def test_readme_snippet_runs_in_the_runtime_install(rt, tmp_path):
    """README's "Using the op library" code, on the shipped demo model, gives what this machine's
    development install gives."""
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(import numpy as np\nimport onnxruntime as ort\nimport scales_edge\n.*?)```", readme, re.S)
    assert snippet, "README lost its ONNX Runtime snippet"
    shutil.copyfile(DEMO_ONNX, tmp_path / "model.onnx")
    code = snippet.group(1) + "\nnp.random.seed(0)\nnp.save('sr.npy', sess.run(None, {'input': lr[:, :, :20, :24]})[0])\n"
    res = rt.run([rt.python, "-c", code], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    sr = np.load(tmp_path / "sr.npy")
    assert sr.shape == (1, 3, 80, 96)


def test_runtime_commands_work_without_torch(rt, tmp_path, photos):
    model = tmp_path / "demo_x4.onnx"
    shutil.copyfile(DEMO_ONNX, model)
    res = rt.cli("info", model, "--json", "info.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["arch"] == "srresnet" and info["scale"] == 4 and info["custom_ops"] > 0

    src = photos / sorted(os.listdir(photos))[0]
    res = rt.cli("upscale", src, tmp_path / "sr.png", "-m", model, "--tile", "32", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    sr = cv2.imread(str(tmp_path / "sr.png"), cv2.IMREAD_UNCHANGED)
    assert sr.shape == (384, 384, 3)
    # the same bytes as the development install's upscale (the wheel's library is the same C++,
    # built against another libstdc++)
    from scales_edge.runtime.infer import Upscaler

    ref = Upscaler(str(model), threads=1).upscale_image(cv2.imread(str(src), cv2.IMREAD_UNCHANGED), tile=32)
    assert np.array_equal(sr, ref)

    res = rt.cli("bench", model, "--runs", "2", "--warmup", "1", "--size", "64x48", "--json", "b.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "b.json").read_text())["results"][0]["median_ms"] > 0

    res = rt.cli("validate", model, "--images", photos, "--json", "q.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    q = json.loads((tmp_path / "q.json").read_text())
    assert len(q["images"]) == 2 and q["mean"]["psnr"] > 20


def test_demo_runs_the_prebuilt_model_without_torch(rt, tmp_path):
    res = rt.cli("demo", "--out", tmp_path / "demo", "--runs", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert s["prebuilt"] is True and s["parity"]["passed"]
    assert s["parity"]["against"].startswith("numpy reference")
    # no scikit-image in the runtime install: the photo step says so instead of failing
    assert s["quality"] is None and "scikit-image" in s["quality_skipped"]
    assert s["bench"]["speedup_vs_fp32_reference"] > 0


@pytest.mark.parametrize("args", [
    ["export", "CKPT", "out.onnx"],
    ["validate", "MODEL", "--ckpt", "CKPT"],
    ["info", "CKPT"],
    ["train", "HR", "--out", "run", "--iters", "1"],
    ["evaluate", "CKPT", "--images", "HR"],
    ["demo", "--ckpt", "CKPT", "--out", "d"],
    ["archs"],
], ids=lambda a: a[0] + ("-ckpt" if "--ckpt" in a else ""))
def test_authoring_commands_name_the_extra(rt, tmp_path, photos, args):
    shutil.copyfile(DEMO_ONNX, tmp_path / "m.onnx")
    subs = {"CKPT": str(DEMO_CHECKPOINT), "MODEL": str(tmp_path / "m.onnx"), "HR": str(photos)}
    res = rt.cli(*[subs.get(a, a) for a in args], cwd=tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1 and "scales-edge[torch]" in lines[0], res.stderr
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "run").exists()


def test_transformer_tiles_without_torch_and_info_names_onnxsim(rt, tmp_path, photos):
    """A window-attention model tiles in the runtime install (its receptive radius comes from the
    export's metadata, not from the model zoo) exactly as in the development install; `info` on it
    needs onnxsim (to fold the window arithmetic) and says so."""
    torch = pytest.importorskip("torch")
    from scales_edge import build_model
    from scales_edge.export import export_onnx
    from scales_edge.runtime.infer import Upscaler

    torch.manual_seed(0)
    model = build_model("swinir_light", scale=2, binary="scales", embed_dim=12, depths=[1], num_heads=2, window_size=4)
    onnx_path = tmp_path / "swin.onnx"
    export_onnx(model, onnx_path)
    src = photos / sorted(os.listdir(photos))[0]
    img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)[:40, :44]
    cv2.imwrite(str(tmp_path / "lr.png"), img)
    res = rt.cli("upscale", tmp_path / "lr.png", tmp_path / "sr.png", "-m", onnx_path, "--tile", "16", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ref = Upscaler(str(onnx_path), threads=1).upscale_image(img, tile=16)
    assert np.array_equal(cv2.imread(str(tmp_path / "sr.png"), cv2.IMREAD_UNCHANGED), ref)
    res = rt.cli("info", onnx_path, cwd=tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "onnxsim" in lines[0], res.stderr
