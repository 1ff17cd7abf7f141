"""Check a built scales-edge wheel against the platform policy it claims (scripts/build-wheels.sh).

The policy is manylinux_2_28 (the one ONNX Runtime's own Linux wheels use): every ELF file in the
wheel may need at most

    GLIBC_2.28, GLIBCXX_3.4.25 and CXXABI_1.3.11 (libstdc++ of GCC 8), GCC_7.0.0 (libgcc_s),

and only the system libraries that policy allows (libc, libm, libgcc_s, libstdc++, libpthread,
libdl, librt, the dynamic loader) plus libonnxruntime.so.1, which the onnxruntime dependency
installs. The tag must be ``py3-none-manylinux_2_28_<arch>``: the op library (and the runner) link
neither Python nor libonnxruntime's Python module, so one wheel serves every Python 3. This is the
same rule auditwheel applies (build-wheels.sh runs it too), written out so that a test can state
the bound and check it without auditwheel installed.

Usage: python scripts/check_wheel.py WHEEL [--arch x86_64|aarch64] [--auditwheel]
       (exit 1 with the problems; --auditwheel also runs `auditwheel show --json`, which reads
       wheels of any architecture, and requires its symbol policy to be manylinux_2_28 or older
       and no external library but libonnxruntime)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

POLICY = "manylinux_2_28"
MAX_VERSIONS = {"GLIBC": (2, 28), "GLIBCXX": (3, 4, 25), "CXXABI": (1, 3, 11), "GCC": (7, 0, 0)}
ALLOWED_NEEDED = re.compile(
    r"^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libstdc\+\+\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1"
    r"|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libonnxruntime\.so\.1)$"
)
ELF_MACHINE = {62: "x86_64", 183: "aarch64"}


def elf_machine(data: bytes) -> str | None:
    """The architecture of an ELF file (64-bit little-endian only), or None if it is not one."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    return ELF_MACHINE.get(int.from_bytes(data[18:20], "little"), f"machine {int.from_bytes(data[18:20], 'little')}")


def needs(path: Path) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """(DT_NEEDED libraries, highest needed version per symbol-version family) from readelf, which
    reads ELF files of any architecture."""
    readelf = shutil.which("readelf") or shutil.which("aarch64-linux-gnu-readelf")
    if readelf is None:
        raise SystemExit("check_wheel: readelf not found (apt-get install binutils)")
    dyn = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    ver = subprocess.run([readelf, "-V", str(path)], capture_output=True, text=True, check=True).stdout
    section = ver.split("Version needs section", 1)[1] if "Version needs section" in ver else ""
    highest: dict[str, tuple[int, ...]] = {}
    for family, number in re.findall(r"Name: ([A-Z]+)_([0-9][0-9.]*)", section):
        v = tuple(int(p) for p in number.strip(".").split("."))
        highest[family] = max(highest.get(family, v), v)
    return needed, highest


def check(wheel: Path, arch: str | None = None) -> tuple[list[str], dict[str, dict]]:
    """Problems found (empty: compliant) and, per ELF file, what it needs."""
    problems: list[str] = []
    report: dict[str, dict] = {}
    m = re.match(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$", wheel.name)
    if not m:
        return [f"{wheel.name}: not a wheel file name"], report
    if arch is None:
        arch = next((a for a in ELF_MACHINE.values() if m["plat"].endswith(a)), m["plat"])
    want = f"py3-none-{POLICY}_{arch}"
    tag = f"{m['py']}-{m['abi']}-{m['plat']}"
    if tag != want:
        problems.append(f"{wheel.name}: tag {tag}, expected {want}")
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        wheel_meta = next((n for n in z.namelist() if n.endswith(".dist-info/WHEEL")), None)
        tags = re.findall(r"^Tag: (\S+)$", z.read(wheel_meta).decode(), re.M) if wheel_meta else []
        if tags != [want]:
            problems.append(f"{wheel.name}: WHEEL metadata tags {tags}, expected [{want}]")
        elves = 0
        for name in z.namelist():
            data = z.read(name)
            machine = elf_machine(data)
            if machine is None:
                continue
            elves += 1
            if machine != arch:
                problems.append(f"{name}: an {machine} ELF file in an {arch} wheel")
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            needed, highest = needs(path)
            report[name] = {"needed": needed, "versions": {k: ".".join(map(str, v)) for k, v in sorted(highest.items())}}
            for lib in needed:
                if not ALLOWED_NEEDED.match(lib):
                    problems.append(f"{name}: needs {lib}, which {POLICY} does not provide")
            for family, v in highest.items():
                limit = MAX_VERSIONS.get(family)
                if limit is not None and v > limit:
                    problems.append(
                        f"{name}: needs {family}_{'.'.join(map(str, v))}, above {POLICY}'s "
                        f"{family}_{'.'.join(map(str, limit))}"
                    )
        if not any(Path(n).name == "libscales_edge_ops.so" for n in z.namelist()):
            problems.append(f"{wheel.name}: no scales_edge/libscales_edge_ops.so inside")
        if elves == 0:
            problems.append(f"{wheel.name}: no ELF file inside")
    return problems, report


def auditwheel_problems(wheel: Path) -> list[str]:
    """What ``auditwheel show`` finds against the policy: a symbol policy newer than
    manylinux_2_28, or an external library other than libonnxruntime."""
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", "--json", str(wheel)], capture_output=True, text=True)
    if out.returncode != 0:
        return [f"auditwheel show failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}"]
    info = json.loads(out.stdout)
    problems = []
    sym = info.get("sym_tag") or ""
    m = re.match(r"^manylinux_(\d+)_(\d+)_", sym)
    if not m or (int(m[1]), int(m[2])) > (2, 28):
        problems.append(f"auditwheel: the symbol versions need {sym or 'an unknown policy'}, not {POLICY} or older")
    external = sorted(lib for lib in info.get("external_libs") or {} if not lib.startswith("libonnxruntime.so"))
    if external:
        problems.append(f"auditwheel: needs libraries outside the policy: {', '.join(external)}")
    print(f"check_wheel: auditwheel show: symbol policy {sym}, overall {info.get('overall_tag')}, "
          f"external libraries {sorted(info.get('external_libs') or {}) or 'none'}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path, nargs="+")
    ap.add_argument("--arch", choices=sorted(set(ELF_MACHINE.values())))
    ap.add_argument("--auditwheel", action="store_true", help="also check with auditwheel show")
    args = ap.parse_args(argv)
    bad = 0
    for wheel in args.wheel:
        problems, report = check(wheel, args.arch)
        if args.auditwheel:
            problems += auditwheel_problems(wheel)
        for name, r in report.items():
            print(f"check_wheel: {wheel.name}: {name}: needs {', '.join(r['needed'])}; "
                  f"versions {', '.join(f'{k} {v}' for k, v in r['versions'].items())}")
        for p in problems:
            print(f"check_wheel: error: {p}", file=sys.stderr)
        if problems:
            bad += 1
        else:
            bound = ", ".join(f"{k} <= {'.'.join(map(str, v))}" for k, v in MAX_VERSIONS.items())
            print(f"check_wheel: {wheel.name}: complies with {POLICY} ({bound})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
