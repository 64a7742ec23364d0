"""Result files written atomically: each is complete or absent, never half written, whichever stage writes it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "atomic_write", "file_mode"]


def file_mode() -> int:
    """The mode a plain ``open()`` gives a new file: 0o666 less the process umask.

    ``tempfile.mkstemp`` creates its file 0o600, so a file moved into place with ``os.replace`` would be
    readable by its owner only; the atomic writers set this mode before the move.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` (through ``os.replace``) when the block ends without an exception.

    The file is written in the same directory under a temporary name; on any exception it is removed and
    ``path`` is left as it was, so readers see the old file, the complete new one, or none.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Writes the text ``chunks`` (UTF-8, ``\n`` line ends) to ``path`` through ``atomic_file``.

    On any exception (including one raised by the ``chunks`` iterator) ``path`` is left as it was.
    """
    with atomic_file(path) as f:
        for chunk in chunks:
            f.write(chunk.encode("utf-8"))
