"""Reading and writing user-named files safely: read text with one-line errors, check an output path before the
work, then write it atomically.

Every file lrlab writes where a user asked (a fit, a CSV, a plot, run records, checkpoints, the corpus cache)
goes through :func:`atomic_write`: the bytes land in a temporary file beside the target, are flushed and fsynced,
and replace the target in one ``os.replace``. A crash, a full disk or a failing command therefore leaves either
the old file or the new one, never half of one, and never removes a file that was already there.

:func:`check_output` runs before any work, so that a bad output path (a missing folder, a directory, a device
such as ``/dev/null``, a read-only place, an unknown plot format) is a one-line :class:`InputError` before
minutes of fitting or training, not a traceback after them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lrlab.errors import InputError

PLOT_FORMATS = (".png", ".svg", ".pdf")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_text(path: str | Path, what: str, max_bytes: int) -> str:
    """The UTF-8 text of the user's file ``path`` (``what`` names it in errors, e.g. "config"); a missing or
    non-regular file, one over ``max_bytes``, an unreadable one or one that is not UTF-8 is an InputError."""
    path = Path(path)
    try:
        if not path.is_file():
            raise InputError(f"{what} {path}: {'no such file' if not path.exists() else 'not a regular file'}")
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{what} {path}: {size:,} bytes is more than a {what} file holds ({max_bytes:,})")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({_reason(exc)})") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not UTF-8 text") from None


def json_ready(value: Any) -> Any:
    """``value`` with every NaN and infinity (which JSON cannot hold) replaced by None, in nested dicts and lists
    too; pass the result to ``json.dumps(..., allow_nan=False)`` for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def check_output(path: str | Path, param: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` as a place lrlab can write a file to, or an :class:`InputError` about ``param``.

    The folder must exist and accept a new file (tested by creating and removing a temporary file there, which
    is the only check that holds for root, read-only mounts and full disks alike); an existing ``path`` must be
    a regular file (it will be replaced); with ``suffixes`` the name must end in one of them.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(suffixes)}", param)
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name", param)
        if path.exists() and not path.is_file():
            raise InputError(f"{path} is not a regular file (a device or a pipe); give a file name", param)
        folder = path.parent
        if not folder.is_dir():
            raise InputError(f"{path}: the folder {folder} does not exist", param)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".check", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({_reason(exc)})", param) from None
    return path


def check_output_dir(path: str | Path, param: str) -> Path:
    """``path`` as a folder lrlab can create (with its parents) and write files into, checked before the work."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} exists and is not a folder", param)
        existing = path
        while not existing.exists():  # the deepest folder that exists must accept new entries
            existing = existing.parent
        if not existing.is_dir():
            raise InputError(f"{path}: {existing} is not a folder", param)
        fd, probe = tempfile.mkstemp(prefix=".lrlab-", suffix=".check", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({_reason(exc)})", param) from None
    return path


def make_dirs(path: Path, param: str | None = None) -> Path:
    """``mkdir -p path``; a failure is an :class:`InputError`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {path} ({_reason(exc)})", param) from None
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing (``mode`` "w" or "wb"); on success it replaces ``path``.

    ``durable`` fsyncs the file and its folder, so the rename survives a power cut. An error while writing
    removes the temporary file and leaves ``path`` as it was; an ``OSError`` (disk full, permissions) becomes an
    :class:`InputError` naming the file.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({_reason(exc)})") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path} ({_reason(exc)})") from None
        raise


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", durable) as fh:
        fh.write(text)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a folder; the rename itself has happened
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


@functools.cache
def _umask() -> int:
    """The process umask (read once: reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
