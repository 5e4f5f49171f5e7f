"""Writing outputs: atomically to a file, or to stdout for ``-``.

A file is written to a temporary sibling and renamed over the target, so an
interrupted or failed run never leaves a half-written report behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from heaplint.engine.errors import UsageError


@contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces ``path`` in one rename.
    ``-`` yields stdout's buffer."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write: directory {directory} does not exist", path=path)
    fd, tmp = tempfile.mkstemp(prefix=".heaplint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        # mkstemp creates 0600; give the file the mode a plain open() would
        # (or keep the mode of the file it replaces)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (or stdout for ``-``) atomically."""
    with atomic_output(path) as f:
        f.write(data)
