"""Per-APDU cost of the ``apdu`` transport against raw pyscard, over the real PC/SC stack.

Both talk to the same simulated card (sample card, T=0) behind pcscd + vpcd on
``Virtual PCD 00 00``, each through its own shared connection, in interleaved blocks so
drift of the machine hits both alike. The APDU is READ RECORD 1 of SFI 2 with the exact Le
(``00 B2 01 14 07``: a case-2 command, 7 bytes back, no GET RESPONSE).

    .venv/bin/python bench/apdu_overhead.py [--count 10000] [--block 100]

Prints the median time per APDU of each and their ratio. The simulated card's round trip
should stay under 0.5 ms median (docs/devices.md §1: about 0.12 ms with TCP_NODELAY and
TCP_QUICKACK, about 44 ms without).
"""

from __future__ import annotations

import argparse
import statistics
import time

from smartcard import scard

from apdu.command import Command
from apdu.pcsc import PcscTransport, wait_for_card
from simulator.pcscd import Pcscd
from simulator.samples import SAMPLE_AID, sample_card
from simulator.vpcd import VpcdBridge, reader_name

READ = Command(0x00, 0xB2, 0x01, 0x14, le=7)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="APDUs for each side")
    parser.add_argument("--block", type=int, default=100, help="APDUs per interleaved block")
    args = parser.parse_args()
    reader = reader_name(0)
    with Pcscd():
        bridge = VpcdBridge(sample_card("T0"), slot=0).start()
        try:
            wait_for_card(reader)
            transport = PcscTransport(reader, exclusive=False)
            transport.connect()
            transport.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            hr, card, proto = scard.SCardConnect(
                ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
            )
            if hr != scard.SCARD_S_SUCCESS:
                raise SystemExit(f"raw connect failed: {scard.SCardGetErrorMessage(hr)}")
            raw_apdu = list(READ.to_bytes())
            raw_times: list[float] = []
            ours: list[float] = []
            clock = time.perf_counter
            while len(raw_times) < args.count:
                n = min(args.block, args.count - len(raw_times))
                for _ in range(n):
                    t = clock()
                    hr, resp = scard.SCardTransmit(card, proto, raw_apdu)
                    raw_times.append(clock() - t)
                    if hr != 0 or resp[-2:] != [0x90, 0x00]:
                        raise SystemExit(f"raw transmit failed: {hr:#x} {resp}")
                for _ in range(n):
                    t = clock()
                    transport.send(READ)
                    ours.append(clock() - t)
            transport.disconnect()
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            scard.SCardReleaseContext(ctx)
        finally:
            bridge.stop()
    raw_ms = statistics.median(raw_times) * 1000
    ours_ms = statistics.median(ours) * 1000
    print(f"APDUs per side:             {args.count} (interleaved blocks of {args.block})")
    print(f"raw pyscard SCardTransmit:  median {raw_ms:.4f} ms")
    print(f"apdu PcscTransport.send:    median {ours_ms:.4f} ms")
    print(f"ratio transport / raw:      {ours_ms / raw_ms:.3f}")
    print(f"floor under 0.5 ms:         {'yes' if raw_ms < 0.5 else 'NO'}")
    return 0 if raw_ms < 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
