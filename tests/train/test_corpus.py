"""Data sources: the path-hash split (pinned), the stdlib corpus and its cache, text files and folders, .bin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.train.corpus import BIN_VOCAB, DOC_SEPARATOR, folder_files, is_validation, load_data, stdlib_files

# Golden values, computed once (lrlab-bytes-v1) and hard-coded: they pin the on-disk format. Which files are
# validation, and the bytes a corpus caches, decide every cache and every train/val split already made; a change
# that moves any of them invalidates them all, so it must be deliberate (and bump _CACHE_FORMAT), never a refactor.
SPLIT_BRACKETS = {  # path -> (fraction at which it is still train, fraction at which it is validation)
    "json/__init__.py": (0.5415, 0.5420),
    "asyncio/tasks.py": (0.1460, 0.1465),
    "données/é.txt": (0.3700, 0.3705),  # UTF-8 encoded before hashing
    "os.py": (0.8505, 0.8510),
}
VAL_MODULES_AT_5_PERCENT = [5, 26, 32, 35, 67, 79, 85, 104, 120, 131, 133, 137, 139, 174, 187, 188]


@pytest.mark.parametrize(("path", "bracket"), SPLIT_BRACKETS.items())
def test_split_of_fixed_paths_is_pinned(path, bracket):
    lo, hi = bracket
    assert not is_validation(path, lo) and is_validation(path, hi)
    assert not is_validation(path, 0.0) and is_validation(path, 1.0)


def test_split_of_a_numbered_series_is_pinned():
    assert [i for i in range(200) if is_validation(f"pkg/module_{i}.py", 0.05)] == VAL_MODULES_AT_5_PERCENT


def test_tiny_folder_corpus_is_pinned(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tiny"
    texts = {
        "a.txt": "alpha\n",
        "b/c.txt": "gamma gamma\n",
        "d.md": "delta",
        "e.txt": "epsilon epsilon epsilon",
        "f/g/h.txt": "eta",
        ".hidden": "never",
    }
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    data = load_data(str(root), val_fraction=0.5)
    assert (len(data.train), len(data.val), data.vocab_size, data.train.dtype) == (30, 29, 256, np.uint16)
    assert bytes(np.asarray(data.train, dtype=np.uint8)) == b"epsilon epsilon epsilon\n\neta\n\n"
    assert bytes(np.asarray(data.val, dtype=np.uint8)) == b"alpha\n\n\ngamma gamma\n\n\ndelta\n\n"
    (cache,) = (tmp_path / "cache").iterdir()
    assert cache.name.startswith("folder-tiny-")
    raw = (cache / "train.bin").read_bytes()  # uint16 per byte token, little-endian as numpy writes it here
    assert len(raw) == 60 and raw[:8] == b"e\x00p\x00s\x00i\x00"
    everything = load_data(str(root), val_fraction=0.05)  # none of these five paths is validation at 5%
    assert (len(everything.train), len(everything.val)) == (59, 0)
    assert bytes(np.asarray(everything.train[:13], dtype=np.uint8)) == b"alpha\n\n\ngamma"


def test_split_fraction_and_monotonicity():
    paths = [f"pkg/module_{i}.py" for i in range(4000)]
    val = [p for p in paths if is_validation(p, 0.05)]
    assert abs(len(val) - 200) < 4 * np.sqrt(4000 * 0.05 * 0.95)  # binomial, 4 sigma
    assert set(val) <= {p for p in paths if is_validation(p, 0.10)}  # growing the fraction only adds files


def test_stdlib_corpus_is_the_stdlib_split_by_path_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    files = stdlib_files()
    rels = [rel for rel, _ in files]
    assert rels == sorted(rels) and "json/__init__.py" in rels
    assert not any(r.startswith("site-packages/") for r in rels)
    # the build-generated sysconfig data holds the install prefix: the same Python elsewhere is the same corpus
    import sysconfig

    generated = list(Path(sysconfig.get_paths()["stdlib"]).glob("_sysconfigdata*.py"))
    assert generated and not any(Path(r).name.startswith("_sysconfigdata") for r in rels)
    data = load_data("stdlib")
    sizes = {"train": 0, "val": 0}
    for rel, path in files:
        sizes["val" if is_validation(rel, 0.05) else "train"] += path.stat().st_size + len(DOC_SEPARATOR)
    assert (len(data.train), len(data.val)) == (sizes["train"], sizes["val"])
    assert data.vocab_size == 256 and data.train.dtype == np.uint16
    first_train = next(path for rel, path in files if not is_validation(rel, 0.05)).read_bytes()
    assert bytes(np.asarray(data.train[: len(first_train)], dtype=np.uint8)) == first_train
    (cache,) = [p for p in tmp_path.iterdir() if p.name.startswith("stdlib-")]
    stamp = (cache / "train.bin").stat().st_mtime_ns
    again = load_data("stdlib")
    assert (cache / "train.bin").stat().st_mtime_ns == stamp  # served from the cache, not rebuilt
    assert np.array_equal(again.val, data.val)


def test_text_folder_is_split_by_relative_path(tmp_path):
    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    contents = {f"sub/doc{i}.txt": f"document {i} " * 50 for i in range(40)}
    contents[".hidden"] = "never read"
    for rel, text in contents.items():
        (root / rel).write_text(text)
    assert [rel for rel, _ in folder_files(root)] == sorted(r for r in contents if r != ".hidden")
    data = load_data(str(root), val_fraction=0.2)
    expected_val = b"".join(
        contents[rel].encode() + DOC_SEPARATOR
        for rel in sorted(contents)
        if rel != ".hidden" and is_validation(rel, 0.2)
    )
    assert bytes(np.asarray(data.val, dtype=np.uint8)) == expected_val
    assert len(data.train) + len(data.val) == sum(len(t) + 2 for r, t in contents.items() if r != ".hidden")


def test_text_file_keeps_its_tail_for_validation(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes(bytes(range(256)) * 4)
    data = load_data(str(path), val_fraction=0.25)
    assert np.array_equal(data.train, np.tile(np.arange(256), 3)) and np.array_equal(data.val, np.arange(256))


def test_bin_token_files(tmp_path):
    tokens = np.arange(1000, dtype=np.uint16) * 50
    tokens.tofile(tmp_path / "train.bin")
    np.arange(10, dtype=np.uint16).tofile(tmp_path / "val.bin")
    data = load_data(str(tmp_path / "train.bin"))
    assert np.array_equal(data.train, tokens) and np.array_equal(data.val, np.arange(10))
    assert data.vocab_size == BIN_VOCAB
    tokens.tofile(tmp_path / "other.bin")
    tail = load_data(str(tmp_path / "other.bin"), val_fraction=0.1)
    assert np.array_equal(tail.val, tokens[900:]) and np.array_equal(tail.train, tokens[:900])
    explicit = load_data(str(tmp_path / "other.bin"), val_data=str(tmp_path / "val.bin"))
    assert np.array_equal(explicit.train, tokens)


def test_bad_sources_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_data(str(tmp_path / "missing.txt"))
    (tmp_path / "odd.bin").write_bytes(b"abc")
    with pytest.raises(InputError, match="odd"):
        load_data(str(tmp_path / "odd.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files"):
        load_data(str(tmp_path / "empty"))


def test_fingerprint_names_the_tokens_not_the_files(tmp_path):
    """Equal tokens give equal fingerprints wherever they come from; one byte more or less gives another."""
    (tmp_path / "a.txt").write_bytes(b"hello world " * 100)
    (tmp_path / "b.txt").write_bytes(b"hello world " * 100)
    (tmp_path / "c.txt").write_bytes(b"hello world " * 100 + b"!")
    a, b, c = (load_data(str(tmp_path / n)) for n in ("a.txt", "b.txt", "c.txt"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 16 and int(a.fingerprint(), 16) >= 0
