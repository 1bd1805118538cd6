"""The chip part of a reissue through pcscd + vpcd: identify, external authentication,
EF05 and EF06 records, a 4 KB photo, PIN reset, and the verification (read back everything,
authenticate every key) — APDU count and median wall time over repeated cards.

    .venv/bin/python bench/personalize_chip.py [--cards 20] [--protocol T0|T1] [--short]

``--short`` makes the card refuse extended APDUs, so the photo goes in 255-byte chunks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from apdu.pcsc import PcscTransport, wait_for_card, wait_for_removal
from apdu.trace import RecordingTrace
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    sample_issuer,
    sample_photo,
)
from simulator.pcscd import Pcscd
from simulator.vpcd import VpcdBridge, reader_name
from sscard.card import SocialSecurityCard
from sscard.profile import load_profile

REGION = "371700"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--protocol", choices=("T0", "T1"), default="T0")
    parser.add_argument("--short", action="store_true", help="no extended APDUs")
    args = parser.parse_args()
    profile = load_profile("default")
    photo = sample_photo(size=4096)
    reader = reader_name(0)
    times: list[float] = []
    apdus: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, Pcscd():
        hsm = LocalSecurityModule(Keystore.create_test(Path(tmp) / "ks.json"))
        for i in range(args.cards):
            card_os = issue_blank_card(
                profile.name,
                REGION,
                serial=i.to_bytes(8, "big"),
                protocol=args.protocol,
                extended_apdus=not args.short,
            )
            bridge = VpcdBridge(card_os, slot=0).start()
            try:
                wait_for_card(reader)
                trace = RecordingTrace()
                start = time.perf_counter()
                with PcscTransport(reader) as transport:
                    transport.add_observer(trace)
                    card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
                    card.identify()
                    issuer = sample_issuer(profile.name, REGION, card.sn, TEST_ROOTS)
                    card.external_authenticate(profile.update_key)
                    card.write_issuer(issuer)
                    card.write_holder(SAMPLE_HOLDER)
                    card.write_photo(photo)
                    card.reset_pin("135790")
                    card.verify(issuer, SAMPLE_HOLDER, photo, pin="135790")
                times.append(time.perf_counter() - start)
                apdus.append(len(trace.events))
            finally:
                bridge.stop()
                wait_for_removal(reader)
    print(
        f"cards: {args.cards}, protocol {args.protocol}, "
        f"{'short APDUs only' if args.short else 'extended APDUs allowed'}"
    )
    print(
        f"APDUs per card:      {statistics.median(apdus):.0f} (min {min(apdus)}, max {max(apdus)})"
    )
    print(
        f"wall time per card:  median {statistics.median(times) * 1000:.1f} ms "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
