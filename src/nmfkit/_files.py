"""Atomic file writes: every file nmfkit writes appears whole or not at all.

    with atomic_write("W.csv", "w", newline="") as fh:   # a file object
        fh.write(...)
    with atomic_path("t.parquet") as tmp:                  # for writers that take a path
        writer(tmp)

The content goes to a hidden temporary file in the destination's folder (named
`.nmfkit-tmp-XXXXXXXX-<name>`, so writers that look at the extension still see it),
which is flushed, synced to disk and renamed over the destination with `os.replace`
(atomic on POSIX and Windows).  On any exception, Ctrl-C included, the temporary file
is removed and the destination is left exactly as it was.  The new file gets the
permissions the umask gives any new file.
"""
from __future__ import annotations

import contextlib
import os
import secrets

TEMP_PREFIX = ".nmfkit-tmp-"


def _create_temp(folder: str, name: str) -> str:
    """Create an empty, new, uniquely named temporary file beside `name` and return its path."""
    while True:
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{name}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _sync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; when the block ends normally, rename it to `path`.

    The block writes the whole file to the temporary path (it exists, empty, and may be
    replaced).  If the block raises (KeyboardInterrupt too), the temporary file is removed and
    `path` is untouched.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        tmp = _create_temp(folder, name)
    except OSError as exc:        # name the destination, not the temporary file
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """`open(path, mode, **open_kwargs)`, written to a temporary file and renamed into place at the end.

    `mode` is "w" (text) or "wb" (binary).
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write writes a new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh


def save_figure(fig, path, dpi=110) -> str:
    """Write a matplotlib figure atomically; the format (png, svg, pdf) follows the extension."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return path


def check_writable_folder(folder, what) -> None:
    """Raise a one-line OSError unless a file can be created in `folder` (tried, then removed)."""
    folder = os.fspath(folder) or "."
    if not os.path.isdir(folder):
        reason = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise FileNotFoundError(f"{what}: the folder {folder} {reason}")
    try:
        probe = _create_temp(folder, "probe")
    except OSError as exc:
        raise PermissionError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
    _remove_quietly(probe)
