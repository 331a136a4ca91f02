"""What every command shares: the error policy, multi-value options, ``-h``, and common option types.

Commands raise :class:`~molssl.errors.MolsslError` (or ValueError / OSError) for anything the user
can fix; :class:`MolsslGroup` turns it into one line on stderr and exit code 2 (``MOLSSL_DEBUG=1``
shows the traceback instead). click's own parse errors (an unknown option or command, a value of the wrong
type, a missing option) take the same one-line form, naming the command's help. A truncated or damaged compressed
file that a reader let through (EOFError, zlib.error) is reported the same way rather than as click's bare
"Aborted!". No command has an exit helper of its own; scripts outside the CLI (``benchmarks/``) end in
:func:`run_script`, the same policy. The checks here run before a command starts any work.
"""
from __future__ import annotations

import os
import sys
import zlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from molssl.errors import MolsslError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
PRECISION_HELP = ("auto (bf16 autocast where it is faster: CUDA, CPUs with AMX; else fp32), fp32 or bf16; "
                  "bf16 results differ from fp32 in the third significant digit")
USER_ERRORS = (MolsslError, ValueError, OSError, EOFError, zlib.error)


def error_message(exc: BaseException) -> str:
    """One line for the user: the exception's own text, or for OS errors what failed and on which file."""
    if isinstance(exc, (EOFError, zlib.error)):
        text = f"an input file is truncated or damaged (its compressed data ended early or is corrupt: {exc})"
    elif isinstance(exc, OSError) and not isinstance(exc, MolsslError) and exc.strerror:
        target = exc.filename if exc.filename is not None else ""
        text = f"{exc.strerror}: {target}" if target else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def multiple_option_names(command: Any) -> set[str]:
    """Flags of ``command`` that take several values (declared as ``List[...]`` options)."""
    return {name for p in command.params if isinstance(p, TyperOption) and p.multiple
            for name in (*p.opts, *p.secondary_opts)}


def expand_list_options(args: list[str], names: set[str] | tuple[str, ...]) -> list[str]:
    """``--seeds 0 1 2`` -> ``--seeds 0 --seeds 1 --seeds 2`` (values run until the next flag); ``-m a b`` too."""
    out: list[str] = []
    current: Optional[str] = None
    for arg in args:
        if arg in names:
            current = arg
            continue
        if current is not None and (not arg.startswith("-") or arg == "-"):
            out += [current, arg]
            continue
        current = None
        out.append(arg)
    return out


class ListOptionCommand(TyperCommand):
    """A command whose list options take several values after one flag (``-s CCO c1ccccc1``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_list_options(list(args), multiple_option_names(self)))


class ListOptionGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_list_options(list(args), multiple_option_names(self)))


class MolsslGroup(ListOptionGroup):
    """The root group: user errors, and click's usage errors of any command under it, become
    ``error: <one sentence>`` on stderr and exit code 2."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        with usage_errors_one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with usage_errors_one_line(), user_errors_exit(ctx.exit):
            return super().invoke(ctx)


@contextmanager
def usage_errors_one_line() -> Iterator[None]:
    """click's own usage errors (an unknown option or command, a value of the wrong type, a missing option) in
    the policy's form: one line naming the command's help, instead of typer's usage lines and boxed panel."""
    try:
        yield
    except typer.TyperException as exc:
        # click raises NoArgsIsHelpError to show a group's help when it is called bare; that is not an error
        if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
            raise
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} -h')" if context is not None else ""
        message = " ".join(exc.format_message().split()).removesuffix(".")
        typer.echo(f"error: {message}{hint}", err=True)
        raise typer.Exit(exc.exit_code) from None


@contextmanager
def user_errors_exit(exit: Callable[[int], Any] = sys.exit) -> Iterator[None]:
    """The error policy: a user error raised inside is ``error: <one sentence>`` on stderr and ``exit(2)``, its
    traceback only with ``MOLSSL_DEBUG=1``."""
    try:
        yield
    except USER_ERRORS as exc:
        if os.environ.get("MOLSSL_DEBUG"):
            raise
        typer.echo(f"error: {error_message(exc)}", err=True)
        exit(2)


def run_script(main: Callable[[], Any]) -> None:
    """The CLI's error policy (:func:`user_errors_exit`) for a script outside it (``benchmarks/``)."""
    with user_errors_exit():
        main()


def new_app(help: str, *, root: bool = False, **kwargs: Any) -> typer.Typer:
    """A Typer app with molssl's conventions (``-h``, no pretty tracebacks, multi-value list options)."""
    return typer.Typer(help=help, cls=MolsslGroup if root else ListOptionGroup, no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False, context_settings=CONTEXT_SETTINGS,
                       **kwargs)


def command(app: typer.Typer, name: Optional[str] = None, **kwargs: Any) -> Callable:
    """``app.command`` with multi-value list options."""
    return app.command(name, cls=ListOptionCommand, context_settings=CONTEXT_SETTINGS, **kwargs)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


def check_device(device: str, flag: str = "--device") -> None:
    """Refuse a device torch cannot name or this machine does not have, before any work starts."""
    import torch

    from molssl.core.device import resolve_device

    try:
        resolved = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise MolsslError(f"{flag} {device!r} cannot be used: {exc}") from None
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise MolsslError(f"{flag} {device!r} is not a device molssl can use; give auto, cpu, cuda or cuda:N")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise MolsslError(f"{flag} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise MolsslError(f"{flag} mps was requested but no MPS device is available")


def resolved_precision(precision: str, device: str) -> str:
    """``--precision`` resolved for the device, the choice (and why, for auto) printed on stderr."""
    from molssl.core.device import resolve_device
    from molssl.core.precision import resolve_precision

    return resolve_precision(precision, resolve_device(device), log=echo_err)


def check_positive(**values: Optional[int | float]) -> None:
    """``check_positive(batch_size=n, ...)``: each given number must be above 0 (None: option not given)."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise MolsslError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


def check_folder(path: Optional[os.PathLike], flag: str) -> None:
    """An option naming an existing folder to read from (``--data-dir``)."""
    if path is not None and not os.path.isdir(path):
        what = "a file, not a folder" if os.path.exists(path) else "no such folder"
        raise MolsslError(f"{flag} {path}: {what}")
