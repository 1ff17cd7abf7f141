"""What every ``scales-edge`` command shares: the Typer app, the one-line error contract
(:func:`command`), and the small parsers and checks several commands use.

Every command reports a problem with its input (a missing or unreadable file, a non-image, a model
scales-edge did not export, a scale that disagrees with the model, an image too small for it) as
one line ``error: ...`` on stderr and exit code 2; ``scales-edge --debug CMD ...`` shows the
traceback instead. This module imports neither torch nor the authoring side, so the runtime
commands work in an install without torch.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import typer
from rich.console import Console

from .. import __version__
from ..errors import ScalesEdgeError

app = typer.Typer(
    name="scales-edge",
    help="Deploy SCALES binary super-resolution networks: train, export to ONNX, validate, benchmark, "
    "upscale images, inspect model costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scales-edge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def debugging() -> bool:
    """True under ``scales-edge --debug``: errors should propagate with their traceback."""
    return _state["debug"]


def fail(message: str) -> None:
    """Print one line saying what is wrong and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (what the CLI prints after ``error:``)."""
    text = str(exc).strip()
    if isinstance(exc, KeyError):
        text = f"missing {text}"
    return (text.splitlines() or [type(exc).__name__])[0]


#: Packages the runtime install leaves out -> what a command that needs one says (exit 2).
AUTHORING_EXTRA = "scales-edge[torch]"
EXTRAS = {
    "torch": f"needs PyTorch, which the runtime install leaves out: pip install '{AUTHORING_EXTRA}' (README: Install)",
    "onnxsim": f"needs onnxsim here: pip install onnxsim (it comes with '{AUTHORING_EXTRA}')",
}


def _bug(exc: Exception) -> None:
    """An exception no command expects: one line and exit code 1 (the traceback with --debug)."""
    if _state["debug"]:
        raise exc
    typer.echo(
        f"error: unexpected {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback and report it)",
        err=True,
    )
    raise typer.Exit(1) from None


def command(name: str, **kwargs: Any) -> Callable:
    """``app.command`` whose errors become one line and an exit code (see the module docstring):
    our own errors, OS errors, ``ValueError`` and ``MemoryError`` exit 2, and so does a missing
    optional package (:data:`EXTRAS`: the command names the install that has it); anything else is
    a bug, reported in one line with exit code 1 (the traceback with ``--debug``)."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except (typer.Exit, typer.Abort, typer.TyperException):
                raise
            except KeyboardInterrupt:
                typer.echo("error: interrupted", err=True)
                raise typer.Exit(130) from None
            except ModuleNotFoundError as exc:
                missing = (exc.name or "").split(".")[0]
                if missing not in EXTRAS:
                    _bug(exc)
                if _state["debug"]:
                    raise
                fail(f"scales-edge {name} {EXTRAS[missing]}")
            except (ScalesEdgeError, OSError, ValueError) as exc:
                if _state["debug"]:
                    raise
                fail(one_line(exc))
            except MemoryError as exc:  # a size too large for this machine, not a bug
                if _state["debug"]:
                    raise
                fail(f"out of memory{': ' + one_line(exc) if str(exc) else ''}; try a smaller size or tile")
            except Exception as exc:  # a bug: still one line unless --debug
                _bug(exc)

        return app.command(name, **kwargs)(wrapper)

    return deco


def progress_bar(label: str):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def parse_kv(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, true/false), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            fail(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out



def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` → ``(H, W)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        fail(f"a size is WxH in pixels, e.g. 320x180; got {text!r}")
    return h, w


def arch_option() -> Any:
    """``--arch``, the same for every command that reads a checkpoint."""
    return typer.Option(
        None, "--arch",
        help="Architecture of a checkpoint that does not name it (BasicSR params/params_ema, a plain state dict): "
        "its sizes, scale and binarization are read from its tensors.",
    )


def set_option() -> Any:
    """``--set``, the same for every command that reads a checkpoint."""
    return typer.Option(
        [], "--set",
        help="Build options of such a checkpoint, key=value, for what its tensors cannot show (e.g. skip=false, "
        "res_scale=0.1); a scales-edge checkpoint's own config must agree with them.",
    )


def load_ckpt(ckpt: Path, arch: Optional[str], set_: list[str]):
    """The model of a checkpoint (any format, see ``--arch``/``--set``), in eval mode; when its
    configuration was read from its tensors, a note on stderr says what was inferred and what
    could not be seen (so defaults were used)."""
    from ..checkpoints import inspect_checkpoint

    ck = inspect_checkpoint(ckpt, arch, **parse_kv(set_))
    if ck.inference is not None:
        typer.echo(f"note: {ckpt.name} is {ck.kind}; {ck.inference.summary()}", err=True)
    return ck.build()


def check_scale(model: Path, model_scale: int, flag: Optional[int], flag_name: str) -> None:
    if flag is not None and flag != model_scale:
        fail(f"{model} upscales x{model_scale}, not x{flag}: drop {flag_name} or pass {flag_name} {model_scale}")


def check_output(output: Path, inputs: Sequence[Optional[Path]], overwrite: Optional[bool] = None) -> None:
    """Before any work: refuse to write ``output`` when it is one of ``inputs`` (always), when it is
    a folder, or when it exists and ``overwrite`` is False (``None``: an output such as a ``--json``
    report that is replaced freely). Every write itself is atomic (:mod:`scales_edge.fileio`)."""
    from ..fileio import same_file

    for src in inputs:
        if src is not None and same_file(output, src):
            same = str(output) == str(src)
            fail(f"{output} is {'an input' if same else f'the same file as the input {src}'}; refusing to overwrite it: "
                 "choose another output file")
    if output.is_dir():
        fail(f"{output} is a folder; give a file name")
    if overwrite is False and output.exists():
        fail(f"{output} exists; pass --overwrite to replace it, or choose another output file")


def write_json(path: Path, payload: Any) -> None:
    """A ``--json`` report, written atomically (a temp file in the same folder, then renamed)."""
    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2))
