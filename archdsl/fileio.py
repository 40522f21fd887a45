"""Reading and writing the files archdsl touches, so that no failure loses a user's file.

`write_atomic` is the one way archdsl writes a file (`fmt`, and the outputs of `viz`,
`export`, `eject`): the data goes to a temporary file in the target's folder, is flushed
to disk, and is renamed over the target. A rename within one file system is atomic, so
whatever happens (kill -9, a full disk, a file-size limit, a read-only target), the path
holds either the old file whole or the new one whole, never a mix or a truncation.

`read_regular_file` is the one way archdsl reads a spec: only regular files, size checked
with `fstat` before a byte is read, so a FIFO, `/dev/zero` or a sparse 8 GB file is
refused at once instead of hanging or filling memory.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import ArchDSLError

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "the disk quota is exhausted: free some space and run the command again",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
    errno.EACCES: "you may not write there: check the folder's permissions",
    errno.EPERM: "you may not write there: check the folder's permissions",
    errno.EROFS: "that file system is read-only",
    errno.ENOENT: "the folder does not exist: create it first",
    errno.ENAMETOOLONG: "the path is too long",
}


class ArchFileError(ArchDSLError):
    """A file archdsl was asked to read or write cannot be: named, with the reason and a hint."""


def os_error(action: str, path: str | os.PathLike, e: OSError) -> ArchFileError:
    """An `ArchFileError` for an `OSError` met while `action`ing `path` ("write", "read")."""
    reason = e.strerror or type(e).__name__
    return ArchFileError(f"cannot {action} {os.fspath(path)}: {reason}", None, _HINTS.get(e.errno))


def write_atomic(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write `data` to `path` all or nothing: temp file in the same folder, fsync, rename.

    The target keeps its permission bits when it exists. Raises `ArchFileError` (naming the
    path, with a hint) for any `OSError`; the target is then unchanged and no temp file is
    left behind. A symlink target is written through: the link's destination is replaced.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise os_error("write", path, e) from None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
            os.fsync(fd)
            if mode is not None:
                os.fchmod(fd, mode)
            else:  # a new file gets the umask's permissions, as open() would give it
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        _fsync_folder(target.parent)
    except OSError as e:
        raise os_error("write", path, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: some file systems refuse it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; anything else is refused at once.

    Opens without blocking (a FIFO with no writer would otherwise hang the open), checks
    with `fstat` that it is a regular file and not over the limit, and reads at most one
    byte more than the limit (a file that grows while read is refused too). Raises
    `FileNotFoundError`, `IsADirectoryError`, `ArchFileError` (not a regular file, too big)
    or another `OSError` for the caller to word.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise ArchFileError(f"{os.fspath(path)} is {_kind(st.st_mode)}, not a regular file", None,
                                "archdsl reads specs from regular files only")
        if st.st_size > max_bytes:
            raise FileTooLarge(path, st.st_size, max_bytes)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise FileTooLarge(path, len(data), max_bytes)
        return data
    finally:
        os.close(fd)


class FileTooLarge(ArchFileError):
    """A file over the size limit, refused before it is read."""

    def __init__(self, path, size: int, limit: int):
        super().__init__(f"{os.fspath(path)} is {size:,} bytes; the limit is {limit:,}", None,
                         "a spec is a page of text: is this the right file?")
        self.size, self.limit = size, limit


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"
