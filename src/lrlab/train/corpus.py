"""Token data for training: the embedded default corpus, a user's text, or a nanoGPT ``.bin`` token file.

Every source ends as two 1-d ``uint16`` arrays (train, validation), memory-mapped from disk, the format of
nanoGPT's ``prepare.py`` outputs. Text is tokenized as raw bytes (vocabulary 256), so nothing is downloaded.

- ``"stdlib"``: the ``.py`` sources of the running Python's standard library (``site-packages`` excluded), read in
  sorted order of their path relative to the library root. A file belongs to validation when the first 8 bytes of
  ``sha256(relative path)``, read as a fraction of 2**64, fall below ``val_fraction``: the split depends on the path
  alone, so it is stable across runs, machines and file edits.
- a folder: every non-hidden file below it, split by the same path hash.
- a text file: its last ``val_fraction`` of bytes are the validation set.
- a ``.bin`` file: uint16 tokens; validation from ``val_data``, or a ``val.bin`` beside a ``train.bin``, or else
  the file's last ``val_fraction`` of tokens.

The stdlib and folder corpora are cached as ``.bin`` files under ``$LRLAB_CACHE`` (default ``~/.cache/lrlab``),
keyed by the source's paths, sizes and modification times, and written atomically so processes can share them.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import atomic_write, make_dirs

DOC_SEPARATOR = b"\n\n"
BIN_VOCAB = 50304  # GPT-2's 50257 tokens padded to a multiple of 64: nanoGPT's default for .bin files
_CACHE_FORMAT = "lrlab-bytes-v1"
MAX_TEXT_BYTES = 1 << 30  # byte corpora are held in memory while they are split and cached
FINGERPRINT_TOKENS = 1 << 28  # hashing more than 512 MB of tokens for every run's metadata is not worth it


@dataclass(frozen=True)
class TokenData:
    train: np.ndarray  # uint16 tokens (a read-only memmap)
    val: np.ndarray
    vocab_size: int  # the model vocabulary to use unless the config sets one: 256 for bytes
    source: str

    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of the train and validation tokens, which decide every batch: the same
        fingerprint means the same data on any machine. Corpora over 2**28 tokens give their sizes only."""
        if len(self.train) + len(self.val) > FINGERPRINT_TOKENS:
            return f"tokens:{len(self.train)}+{len(self.val)}"
        h = hashlib.sha256()
        for part in (self.train, self.val):
            h.update(len(part).to_bytes(8, "little"))
            h.update(memoryview(np.ascontiguousarray(part, dtype="<u2")))  # no copy for a little-endian memmap
        return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("LRLAB_CACHE") or Path.home() / ".cache" / "lrlab")


def is_validation(relpath: str, val_fraction: float) -> bool:
    """Stable split: ``sha256(relpath)`` as a uniform fraction in [0, 1) compared with ``val_fraction``."""
    h = int.from_bytes(hashlib.sha256(relpath.encode()).digest()[:8], "big")
    return h < val_fraction * 2**64


def stdlib_files() -> list[tuple[str, Path]]:
    """``(relative posix path, path)`` of every standard-library ``.py`` file, sorted by relative path.

    Left out: ``site-packages``/``dist-packages`` and the build-generated ``_sysconfigdata*.py``, which holds the
    install prefix (the same Python installed under another home folder would otherwise be another corpus)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        generated = path.name.startswith("_sysconfigdata")
        if not rel.startswith(("site-packages/", "dist-packages/")) and not generated and path.is_file():
            files.append((rel, path))
    return sorted(files)


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular, non-hidden file below ``root``, sorted by relative posix path."""
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            files.append((rel, path))
    return sorted(files)


def _write_tokens(path: Path, data: np.ndarray) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data.tobytes())


def _bytes_to_tokens(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype=np.uint8).astype(np.uint16)


def _check_text_size(files: list[tuple[str, Path]], source: str) -> None:
    """Byte corpora are read into memory (2 bytes a token): refuse more than MAX_TEXT_BYTES before reading."""
    total = sum(path.stat().st_size for _rel, path in files)
    if total > MAX_TEXT_BYTES:
        raise InputError(
            f"data {clip(source)!r}: {total / 2**30:.1f} GiB of text is above lrlab's limit of "
            f"{MAX_TEXT_BYTES / 2**30:.0f} GiB for byte corpora; tokenize it into a uint16 .bin file instead"
        )


def _cached_byte_corpus(name: str, files: list[tuple[str, Path]], val_fraction: float) -> tuple[Path, Path]:
    """Build (once) and return the train/val ``.bin`` cache files of a corpus of documents split by path hash."""
    key = hashlib.sha256(f"{_CACHE_FORMAT}|{val_fraction!r}".encode())
    for _rel, path in files:
        st = path.stat()
        key.update(f"|{path}|{st.st_size}|{st.st_mtime_ns}".encode())
    folder = cache_dir() / f"{name}-{key.hexdigest()[:16]}"
    train_path, val_path = folder / "train.bin", folder / "val.bin"
    if train_path.exists() and val_path.exists():
        return train_path, val_path
    _check_text_size(files, name)
    train_docs, val_docs = [], []
    for rel, path in files:
        (val_docs if is_validation(rel, val_fraction) else train_docs).append(path.read_bytes() + DOC_SEPARATOR)
    make_dirs(folder, "LRLAB_CACHE")
    _write_tokens(val_path, _bytes_to_tokens(val_docs))
    _write_tokens(train_path, _bytes_to_tokens(train_docs))
    return train_path, val_path


def _memmap(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"data {path}: not a regular file")
    if path.stat().st_size % 2:
        raise InputError(f"data {path}: size is odd, not a uint16 token file")
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype=np.uint16, mode="r")


def _tail_split(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    cut = len(tokens) - int(len(tokens) * val_fraction)
    return tokens[:cut], tokens[cut:]


def load_data(data: str, val_data: str = "", val_fraction: float = 0.05) -> TokenData:
    """Resolve a config's ``data`` / ``val_data`` into train and validation token arrays (see module doc)."""
    try:
        return _load(data, val_data, val_fraction)
    except OSError as exc:  # a file vanishing or unreadable half-way, a cache folder that cannot be written
        where = f" {exc.filename}" if exc.filename else ""
        raise InputError(f"data {clip(data)!r}: cannot read{where} ({exc.strerror or type(exc).__name__})") from None


def check_data_path(data: str, val_data: str = "") -> None:
    """The cheap part of :func:`load_data`'s checks, reading nothing: ``data`` is "stdlib" or an existing file or
    folder, and ``val_data``, when given, an existing file (a sweep checks every cell this way before running)."""
    for key, value in (("data", data), ("val_data", val_data)):
        if not value or (key == "data" and value == "stdlib"):
            continue
        path = Path(value).expanduser()
        if not path.exists():
            raise InputError(f"{key} {clip(value)!r}: no such file or folder (use 'stdlib' for the embedded corpus)")
        if not (path.is_file() or (key == "data" and path.is_dir())):
            raise InputError(f"{key} {clip(value)!r}: not a regular file or folder")


def _load(data: str, val_data: str, val_fraction: float) -> TokenData:
    check_data_path(data)
    if data == "stdlib":
        train, val = _cached_byte_corpus("stdlib", stdlib_files(), val_fraction)
        return TokenData(_memmap(train), _memmap(val), 256, "stdlib")
    path = Path(data).expanduser()
    if path.suffix == ".bin":
        tokens = _memmap(path)
        if val_data:
            val = _memmap(Path(val_data).expanduser())
        elif path.name == "train.bin" and (path.parent / "val.bin").exists():
            val = _memmap(path.parent / "val.bin")
        else:
            tokens, val = _tail_split(tokens, val_fraction)
        return TokenData(tokens, val, BIN_VOCAB, str(path))
    if path.is_dir():
        files = folder_files(path)
        if not files:
            raise InputError(f"data {clip(data)!r}: the folder holds no files")
        train, val = _cached_byte_corpus(f"folder-{path.name}", files, val_fraction)
        return TokenData(_memmap(train), _memmap(val), 256, str(path))
    _check_text_size([(path.name, path)], data)
    tokens = _bytes_to_tokens([path.read_bytes()])
    return TokenData(*_tail_split(tokens, val_fraction), 256, str(path))
