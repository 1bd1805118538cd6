"""Files the service hands to people (PDFs, reports, printed images): written whole, never
over an earlier file, readable only by the service's user.

``write_new(path, data)`` creates ``path`` exclusively (``O_EXCL``) with mode 0600 in a
directory created 0700 when missing; when ``path`` exists it picks the first free name
``stem-2.suffix``, ``stem-3.suffix``, … and returns the path it wrote, so an earlier
document is never overwritten silently. The data go to a temporary file first and are
renamed into place only when complete (a crash leaves no half-written document).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
# The composition root (``personalize.cli.main``) sets this umask for the whole process, so
# every file the service or the simulator it drives creates — the registry's SQLite files,
# PDFs, printed PNGs, photos, card files, job and out/ directories — is 0600 / 0700 without
# each site having to remember it (the simulator never imports this layer).
PRIVATE_UMASK = 0o077


class OutputError(OSError):
    """The file could not be written (missing parent, no permission, disk full)."""


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``stem-N.suffix`` (N ≥ 2)."""
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) with mode 0700 where missing."""
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"无法创建目录 {directory} (cannot create the directory): {exc.strerror}"
        ) from None


def write_new(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` or the next free name beside it; return the path written.

    The file is complete or absent: written to a temporary file in the same directory
    (mode 0600), then hard-linked to the chosen name, which fails rather than replace a
    file that appeared meanwhile (then the next free name is tried)."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as exc:
        raise OutputError(f"无法写入 {path} (cannot write the file): {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        while True:
            target = free_path(path)
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
    except OSError as exc:
        raise OutputError(f"无法写入 {path} (cannot write the file): {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
