"""The holder's own reader (vpcd slot 1; the station's contact reader is slot 0): the card
the simulated station's printer put out, served there through pcscd so that a test reads it
as the holder would (``sscard card read``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apdu.pcsc import wait_for_card, wait_for_removal
from simulator.station import SimulatedStation
from simulator.vpcd import VpcdBridge, reader_name

HOLDER_SLOT = 1


@contextmanager
def printed_card(sim: SimulatedStation) -> Iterator[str]:
    """The first card in ``sim``'s printer hopper in the holder's reader (seen by pcscd);
    the reader's name. The card is pulled, and its removal seen, on the way out."""
    assert sim.printer is not None
    chip = sim.printer.hopper[0].chip
    assert chip is not None
    reader = reader_name(HOLDER_SLOT)
    bridge = VpcdBridge(chip, slot=HOLDER_SLOT).start()
    try:
        wait_for_card(reader)
        yield reader
    finally:
        bridge.stop()
        wait_for_removal(reader)
