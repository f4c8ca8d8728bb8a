"""Atomic file output, shared by training, the demo, evaluation, reproduction and benchmarks.

A reader (or a resumed run) sees either the previous file or the complete new one, never a torn
write: data goes to a temporary file in the same folder, is flushed to disk, then renamed over the
target. Torch-free on purpose, so the evaluation package can use it without importing torch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _default_file_mode() -> int:
    """Permissions a plain ``open()`` would give; mkstemp's temporary files are 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for any writer (``torch.save``, ``savefig``, ...).

    When the block ends normally the temporary file replaces ``path``; when it raises, the temporary
    file is removed and ``path`` is left as it was. ``suffix`` matters to writers that pick the format
    from the extension (matplotlib).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
