"""Device errors with a recovery class, the operator's next move (docs/devices.md §2):

* ``operator``  — the operator must act (load ribbon, close the cover, refill the feeder,
  clear a jam), then the command can be retried;
* ``reset``     — the device must be reset before anything else;
* ``unknown``   — the card's position or the medium's state is unknown: check it before
  retrying (a torn mag write, a timeout mid-command).
"""

from __future__ import annotations

from typing import Literal

Recovery = Literal["operator", "reset", "unknown", "none"]


class DeviceError(Exception):
    recovery: Recovery = "unknown"

    def __init__(self, message: str, *, recovery: Recovery | None = None) -> None:
        super().__init__(message)
        if recovery is not None:
            self.recovery = recovery


class DeviceTimeout(DeviceError):
    """The device did not answer in time (pyserial reports it as a short read)."""

    recovery: Recovery = "unknown"


class DeviceProtocolError(DeviceError):
    """The device answered bytes the protocol does not allow."""

    recovery: Recovery = "reset"


class DeviceGone(DeviceError):
    """The port vanished (unplugged USB-serial adapter)."""

    recovery: Recovery = "operator"


class TrackError(ValueError):
    """A track's data cannot be encoded (bad character, too long)."""


class TrackDamaged(Exception):
    """Decoding a track failed; ``kind`` says how, ``position`` where (character index, or
    bit offset for a missing start sentinel)."""

    def __init__(self, kind: str, position: int | None, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.position = position
