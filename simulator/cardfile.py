"""Card files: a simulated card's persistent state as JSON, written atomically after every
change so the card survives a restart of its server (like EEPROM survives power-off).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from simulator.cardos.card import CardOS

KINDS: dict[str, type[CardOS]] = {CardOS.kind: CardOS}


def register_kind(cls: type[CardOS]) -> type[CardOS]:
    """Make a card personality loadable from card files (class decorator)."""
    KINDS[cls.kind] = cls
    return cls


class CardFileError(ValueError):
    """A card file is missing, unreadable or of an unknown kind."""


def _load_personalities() -> None:
    """Import the modules that register card kinds (they import this module)."""
    import simulator.psam
    import simulator.sscard_card  # noqa: F401


def card_from_dict(d: dict[str, Any]) -> CardOS:
    _load_personalities()
    kind = d.get("kind")
    if kind not in KINDS:
        raise CardFileError(f"unknown card kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[kind].from_dict(d)


def load_card(path: str | Path, *, persist: bool = True) -> CardOS:
    """Load a card; with ``persist`` every change is written back to ``path``."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CardFileError(f"card file {path} does not exist") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise CardFileError(f"card file {path} is not readable JSON: {exc}") from exc
    try:
        card = card_from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise CardFileError(f"card file {path} is not a valid card: {exc}") from exc
    if persist:
        card.on_change = lambda: save_card(card, path)
    return card


def save_card(card: CardOS, path: str | Path) -> None:
    """Write the card's state atomically (temporary file, fsync, rename)."""
    path = Path(path)
    data = json.dumps(card.to_dict(), indent=1, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
