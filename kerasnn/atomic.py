"""Atomic file writes: a temporary file in the target's directory, then ``os.replace``.

A reader sees the old file or the new one, never a half-written one, and a failed
write leaves no temporary file behind. ``tempfile.mkstemp`` creates files readable
by their owner only (0600); the result gets the mode a plain ``open()`` would have
given it (0666 minus the umask), so a model or a report written here is readable
by the service account that serves it. Standard library only (the service uses it).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kerasnn.errors import OutputError

__all__ = ["atomic_path", "default_mode", "write_bytes_atomic", "write_text_atomic"]


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; do that once, not while threads write files.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def default_mode(directory: bool = False) -> int:
    """The permission bits ``open()`` (0666) or ``mkdir()`` (0777) would give under the process umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, move it to ``path``.

    The caller writes the temporary file (by name: useful for libraries that take a
    file name, such as matplotlib or ONNX). On an exception the temporary file is
    removed and ``path`` is left as it was. Raises :class:`kerasnn.errors.OutputError`
    when the directory does not take a new file.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write {path.name} here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
