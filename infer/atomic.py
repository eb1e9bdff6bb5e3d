"""Atomic file writes: a reader never sees a half-written file, and a crash loses nothing old."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600 files; a published file gets the mode open() would give it
    os.fchmod(fd, published_mode())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Any) -> None:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def published_mode() -> int:
    """The mode open() gives a new file (0644 under umask 022). The only portable way to read
    the umask is to set it and restore it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def honour_umask(folder: str | Path) -> None:
    """Give every file in ``folder`` the mode open() would give it: safetensors writes its file
    through a private temporary file, mode 0600, which other users of a shared model folder
    could not read."""
    mode = published_mode()
    for path in Path(folder).rglob("*"):
        if path.is_file():
            os.chmod(path, mode)


def replace_folder(staged: str | Path, folder: str | Path) -> Path:
    """Put a finished folder in place of ``folder``: the old one is renamed aside, the staged one
    renamed in, and only then is the old one deleted. At every moment one complete folder sits
    under ``folder`` or beside it as ``folder.old``; nothing half-written is ever under the name."""
    staged, folder = Path(staged), Path(folder)
    aside = folder.with_name(folder.name + ".old")
    if aside.exists():
        shutil.rmtree(aside)
    if folder.exists():
        os.replace(folder, aside)
    os.replace(staged, folder)
    if aside.exists():
        shutil.rmtree(aside)
    return folder
