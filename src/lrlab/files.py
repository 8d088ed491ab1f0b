"""Reading and writing user-named files safely: read text with one-line errors, check an output path before the
work, then write it atomically.

Every file lrlab writes where a user asked (a fit, a CSV, a plot, run records, checkpoints, the corpus cache)
goes through :func:`atomic_write`: the bytes land in a temporary file beside the target, are flushed and fsynced,
and replace the target in one ``os.replace``. A crash, a full disk or a failing command therefore leaves either
the old file or the new one, never half of one, and never removes a file that was already there. A replaced
file keeps its permissions, and a symlink is written through (its target is replaced, the link stays).

:func:`check_output` runs before any work, so that a bad output path (a folder, a device such as ``/dev/null``, a
read-only file or place, an unknown plot format) is a one-line :class:`InputError` before minutes of fitting or
training, not a traceback after them; :func:`check_distinct` refuses an output that is also an input or another
output of the same command (``lrlab fit c.csv --out c.csv`` would replace the curve by the fit).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lrlab.errors import InputError, clip

PLOT_FORMATS = (".png", ".svg", ".pdf")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def require_file(path: Path, what: str) -> None:
    """An InputError unless ``path`` is an existing regular file (``what`` names it: "config", "fit", ...)."""
    if not path.is_file():
        raise InputError(f"{what} {path}: {'no such file' if not path.exists() else 'not a regular file'}")


def read_text(path: str | Path, what: str, max_bytes: int) -> str:
    """The UTF-8 text of the user's file ``path`` (``what`` names it in errors, e.g. "config"); a missing or
    non-regular file, one over ``max_bytes``, an unreadable one or one that is not UTF-8 is an InputError."""
    path = Path(path)
    try:
        require_file(path, what)
        check_size(path, what, max_bytes)
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({_reason(exc)})") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not UTF-8 text") from None


def read_toml(path: str | Path, what: str, max_bytes: int) -> dict[str, Any]:
    """The user's TOML file ``path`` as a table (errors as :func:`read_text`'s, and invalid or too deeply nested
    TOML as one line naming the file)."""
    text = read_text(path, what, max_bytes)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {path}: invalid TOML: {clip(exc, 160)}") from None
    except RecursionError:
        raise InputError(f"{what} {path}: invalid TOML: nested too deeply") from None


def check_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """An InputError naming the first key of ``table`` not in ``known`` (a typo fails loudly, not silently)."""
    unknown = [k for k in table if k not in known]
    if unknown:
        raise InputError(f"{where}: unknown key {clip(unknown[0], 60)!r} (known: {', '.join(known)})")


def check_size(path: Path, what: str, max_bytes: int) -> None:
    """An InputError when the file is larger than ``max_bytes`` (checked before it is parsed into memory)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{what} {path}: {size:,} bytes is more than lrlab reads as a {what} ({max_bytes:,})")


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


def _writable_folder(folder: Path) -> Path:
    """The deepest folder of ``folder``'s ancestry that exists, after checking that it accepts a new entry
    (creating and removing a temporary file there: the only check that holds for root, read-only mounts and full
    disks alike)."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{existing} is not a folder")
    fd, probe = tempfile.mkstemp(prefix=".lrlab-", suffix=".check", dir=existing)
    os.close(fd)
    os.unlink(probe)
    return existing


def check_output(path: str | Path, param: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` as a file lrlab can write, or an :class:`InputError` about ``param``.

    Its folder, or the deepest existing folder above it (missing ones are created when the file is written), must
    accept a new file; an existing ``path`` must be a regular file this user may write (it will be replaced);
    with ``suffixes`` the name must end in one of them.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(suffixes)}", param)
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name", param)
        if path.exists():
            if not path.is_file():
                raise InputError(f"{path} is not a regular file (a device or a pipe); give a file name", param)
            if not os.access(path, os.W_OK):
                raise InputError(f"{path} is read-only", param)
        _writable_folder(Path(os.path.realpath(path)).parent)
    except InputError as exc:
        if exc.param is None:  # from _writable_folder: about a folder above the file
            raise InputError(f"{path}: {exc.message}", param) from None
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({_reason(exc)})", param) from None
    return path


def check_output_dir(path: str | Path, param: str) -> Path:
    """``path`` as a folder lrlab can create (with its parents) and write files into, checked before the work."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} exists and is not a folder", param)
        _writable_folder(path)
    except InputError as exc:
        if exc.param is None:  # from _writable_folder: about a folder above this one
            raise InputError(f"{path}: {exc.message}", param) from None
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({_reason(exc)})", param) from None
    return path


def check_distinct(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Refuse an output (flag -> path) that is the same file as an input or as another output: writing it would
    destroy what the command reads, or one output would replace the other."""
    seen: dict[str, str] = {}
    for name, path in inputs.items():
        if path is not None:
            seen.setdefault(os.path.realpath(path), name)
    for name, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise InputError(f"{path} is also {seen[real]}; write {name} to another file", name)
        seen[real] = name


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

    Missing folders are created; a symlink is written through (its target is replaced); a replaced file keeps its
    permission bits. ``durable`` fsyncs the file and its folder, so the rename survives a power cut. An error
    while writing removes the temporary file and leaves ``path`` as it was; an ``OSError`` (disk full,
    permissions) becomes an :class:`InputError` naming the file.
    """
    target = Path(os.path.realpath(path))
    try:
        make_dirs(target.parent)
        keep = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_UMASK
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({_reason(exc)})") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, keep)
        os.replace(tmp, target)
        if durable:
            _fsync_dir(target.parent)
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


def write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented strict JSON (NaN and infinities as null), replacing ``path`` atomically."""
    write_text(path, json.dumps(json_ready(obj), indent=2, allow_nan=False))


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


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it: done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()
