"""Atomic file output: a file appears complete at its path, or not at all."""

import os
import tempfile
from contextlib import contextmanager

_MODES = ("wb", "w")


def _default_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give under the current umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX only; a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path, mode="wb"):
    """Yield a file object writing to a temporary file beside ``path``.

    On normal exit the file is flushed, fsync'ed and renamed onto ``path`` (replacing any
    existing file). If the body raises, the temporary file is removed, ``path`` is left as it
    was, and the exception propagates. ``mode`` is "wb" (bytes) or "w" (UTF-8 text, no newline
    translation).
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}: allowed modes are {_MODES}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        if mode == "wb":
            handle = os.fdopen(fd, mode)
        else:
            handle = os.fdopen(fd, mode, encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, _default_file_mode())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
