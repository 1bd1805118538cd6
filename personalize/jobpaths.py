"""File names inside a job file are confined to the job file's directory: a job file comes
from a counter or another system and must not make the station read (and write onto a card
and into the registry) any file the service's user can read.

A name is relative; it is joined to the directory and resolved with every symlink followed
(``Path.resolve(strict=True)``); the result must be a regular file inside the resolved
directory. Absolute names, ``..`` that climbs out, and symlinks (of the file or of a
directory on the way) that lead out are refused with one clear error.
"""

from __future__ import annotations

from pathlib import Path, PurePath


class JobPathError(ValueError):
    """A file named in a job file is not a regular file inside the job file's directory."""


def confined_file(base_dir: Path, name: str, *, field: str, label: str) -> Path:
    """The resolved path of ``name`` relative to ``base_dir``; JobPathError otherwise.
    ``field`` is the job file's key, ``label`` its Chinese name (for the message)."""
    inside = f"{label}路径须在作业文件所在目录内 ({field}: a path inside the job file's directory)"
    if not name or "\0" in name or PurePath(name).is_absolute() or name.startswith("~"):
        raise JobPathError(f"{inside}: {name!r}")
    base = Path(base_dir).resolve()
    try:
        path = (base / name).resolve(strict=True)
    except FileNotFoundError:
        raise JobPathError(f"{label}文件不存在 ({field} file not found): {name}") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission
        raise JobPathError(f"{label}文件无法访问 ({field} file not accessible): {exc}") from None
    if not path.is_relative_to(base):
        raise JobPathError(f"{inside}: {name!r}")
    if not path.is_file():
        raise JobPathError(f"{label}不是普通文件 ({field} is not a regular file): {name}")
    return path
