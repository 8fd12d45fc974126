"""Files that survive a kill: whole files are replaced atomically, append-only files grow by whole lines.

- ``atomic_write(path, data)`` / ``atomic_path(path)``: the new content goes to a temporary file in the
  same folder, is flushed and fsynced, then renamed over ``path`` (``os.replace``): a reader, or a
  process killed at any moment, sees the old file or the new one, never a part of either.
- ``append_lines(path, text)``: appends whole lines under an exclusive lock, fsynced, after cutting
  off a last line that a killed writer left without its newline (it never was a whole line).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "append_lines", "drop_partial_line", "locked", "fsync_dir", "read_json",
           "read_lines"]  # fmt: skip


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: once per process
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder that cannot be opened (some filesystems)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (by any library that wants a path); on success it
    is fsynced, given ``mode`` (default: the usual mode under the umask; it is private until then) and
    renamed over ``path``; on an exception it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path, data: bytes | str, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8), whole or not at all (``mode``: as
    :func:`atomic_path`; 0o600 for a secret, never readable by others on the way)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


@contextmanager
def locked(path, mode: str = "a+"):
    """``path`` opened in ``mode`` (text, UTF-8, no newline translation; "b" in mode: binary) under an
    exclusive ``flock``: writers that all take it never interleave."""
    binary = "b" in mode
    with open(path, mode, **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def drop_partial_line(f) -> bool:
    """Cut off the last line of the open file ``f`` if a killed writer left it without its newline;
    leaves ``f`` at its end. True if something was cut."""
    f.flush()
    with open(f.name, "rb") as raw:
        data = raw.read()
    cut = bool(data) and not data.endswith(b"\n")
    if cut:
        f.truncate(data.rfind(b"\n") + 1)
    f.seek(0, os.SEEK_END)
    return cut


def append_lines(path, text: str, header: str | None = None) -> None:
    """Append ``text`` (whole lines, each ending in a newline) to ``path`` durably, under the lock;
    ``header`` (a line) is written first when the file is new or empty."""
    if text and not text.endswith("\n"):
        raise ValueError("append_lines takes whole lines, ending in a newline")
    with locked(path, "a+") as f:
        drop_partial_line(f)
        if header is not None and f.tell() == 0:
            f.write(header if header.endswith("\n") else header + "\n")
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_lines(path, error: type[Exception] = ValueError, label: str | None = None) -> list[str]:
    """The whole lines of a UTF-8 text file, without their newlines: a last line without its newline
    (a killed writer cut it) is dropped. A byte that is not UTF-8 raises ``error`` naming the line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{label or path}: line {line} is not UTF-8 text (byte {data[exc.start]:#04x})") from None
    return text.split("\n")[:-1]  # the last piece: "" after a newline, or a line cut short


def read_json(path, error: type[Exception] = ValueError, label: str | None = None):
    """A JSON file's content; not UTF-8 or not JSON raises ``error`` (one line, naming the file)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise error(f"{label or path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise error(f"{label or path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
