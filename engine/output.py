"""Writing outputs: atomically to a file, or to stdout for ``-``.

A file is written to a temporary sibling and renamed over the target, so an
interrupted or failed run never leaves a half-written report behind.  A target
that is not a regular file (``/dev/null``, a named pipe, ``/dev/stdout``) is
written in place: renaming over it would replace the device or pipe with a
plain file.  A symbolic link to a file is kept: its target is replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from heaplint.engine.errors import UsageError

#: errors of writing the data itself (as opposed to reading the input meanwhile)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces ``path`` in one rename.
    ``-`` yields stdout's buffer.  Problems with the destination (a folder,
    no permission, a full disk) are :class:`UsageError`\\ s located at ``path``."""
    if path == "-":
        try:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        except OSError as err:
            if err.errno in WRITE_ERRNOS:
                raise _cannot_write("<stdout>", err) from err
            raise
        return
    try:
        st: os.stat_result | None = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError("cannot write: is a directory", path=path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with _written_in_place(path) as f:
            yield f
        return
    target = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write: directory {directory} does not exist", path=path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".heaplint-", suffix=".tmp", dir=directory)
    except OSError as err:
        raise _cannot_write(path, err) from err
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        # mkstemp creates 0600; give the file the mode a plain open() would
        # (or keep the mode of the file it replaces)
        if st is not None:
            mode = st.st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as err:
        _remove(tmp)
        if err.errno in WRITE_ERRNOS or err.filename in (tmp, target):
            raise _cannot_write(path, err) from err
        raise
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def _written_in_place(path: str) -> Iterator[BinaryIO]:
    try:
        f = open(path, "wb")
    except OSError as err:
        raise _cannot_write(path, err) from err
    try:
        with f:
            yield f
    except OSError as err:
        if err.errno in WRITE_ERRNOS:
            raise _cannot_write(path, err) from err
        raise


def _cannot_write(path: str, err: OSError) -> UsageError:
    return UsageError(f"cannot write: {err.strerror or err}", path=path)


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (or stdout for ``-``) atomically."""
    with atomic_output(path) as f:
        f.write(data)
