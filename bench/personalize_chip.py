"""The chip part of a reissue through pcscd + vpcd: identify, external authentication,
EF05 and EF06 records, a 4 KB photo, PIN reset, and the verification (read back everything,
authenticate every key) — APDUs per card by step, counted by the virtual reader, and the
median wall time, for the old sequence (``sscard/card.py`` at ``--old-rev``, loaded from git)
and the new one, cards alternating in the same run.

    .venv/bin/python bench/personalize_chip.py [--cards 20] [--protocol T0|T1] [--short]

``--short`` makes the card refuse extended APDUs, so the photo goes in 255-byte chunks; the
new sequence is told so once by the profile (``extended_apdus = false``), the old one learns
it from a ``6700`` on each card.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

from apdu.pcsc import PcscTransport, wait_for_card, wait_for_removal
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.factory import issue_blank_card, sample_photo
from simulator.pcscd import Pcscd
from simulator.vpcd import VpcdBridge, reader_name
from sscard.card import SocialSecurityCard
from sscard.profile import CardProfile, load_profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chip_steps import STEPS, personalize_and_verify

REGION = "371700"
ROOT = Path(__file__).resolve().parent.parent
OLD_REV = "cb7c3f3"  # main before issue 14's APDU sequence


def old_card_class(rev: str) -> Any:
    """``SocialSecurityCard`` of ``sscard/card.py`` at ``rev``, its ``identify`` taking (and
    ignoring) the new ``fci`` keyword: the old sequence, callable beside the new."""
    source = subprocess.run(
        ["git", "show", f"{rev}:sscard/card.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("sscard_card_old")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{rev}:sscard/card.py", "exec"), module.__dict__)
    base = module.SocialSecurityCard

    class OldCard(base):  # type: ignore[misc,valid-type]
        def identify(self, *, fci: bool = True) -> Any:
            return super().identify()

    return OldCard


def one_card(
    card_class: Any, profile: CardProfile, hsm: LocalSecurityModule, i: int, args: Any
) -> tuple[dict[str, int], float]:
    card_os = issue_blank_card(
        profile.name,
        REGION,
        serial=i.to_bytes(8, "big"),
        protocol=args.protocol,
        extended_apdus=not args.short,
    )
    reader = reader_name(0)
    bridge = VpcdBridge(card_os, slot=0).start()
    try:
        wait_for_card(reader)
        start = time.perf_counter()
        with PcscTransport(reader) as transport:
            card = card_class(transport, profile, hsm, region_code=REGION)
            steps = personalize_and_verify(
                card, REGION, sample_photo(size=4096), lambda: bridge.apdu_count
            )
        return steps, time.perf_counter() - start
    finally:
        bridge.stop()
        wait_for_removal(reader)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--protocol", choices=("T0", "T1"), default="T0")
    parser.add_argument("--short", action="store_true", help="no extended APDUs")
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old sequence")
    args = parser.parse_args()
    profile = load_profile("default")
    variants = {
        "old": (old_card_class(args.old_rev), profile),
        "new": (SocialSecurityCard, replace(profile, extended_apdus=not args.short)),
    }
    steps: dict[str, list[dict[str, int]]] = {name: [] for name in variants}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp, Pcscd():
        hsm = LocalSecurityModule(Keystore.create_test(Path(tmp) / "ks.json"))
        for i in range(args.cards):
            for name, (card_class, card_profile) in variants.items():
                counted, elapsed = one_card(card_class, card_profile, hsm, i, args)
                steps[name].append(counted)
                times[name].append(elapsed)
    print(
        f"cards: {args.cards} per sequence, protocol {args.protocol}, "
        f"{'short APDUs only' if args.short else 'extended APDUs allowed'}, "
        f"old = sscard/card.py at {args.old_rev}"
    )
    print(f"{'APDUs per card':<16}{'old':>6}{'new':>6}")
    for step in STEPS:
        old, new = (statistics.median(s[step] for s in steps[n]) for n in variants)
        print(f"  {step:<14}{old:>6.0f}{new:>6.0f}")
    old_total, new_total = (statistics.median(sum(s.values()) for s in steps[n]) for n in variants)
    print(
        f"  {'total':<14}{old_total:>6.0f}{new_total:>6.0f}   new/old {new_total / old_total:.2f}"
    )
    old_ms, new_ms = (statistics.median(times[n]) * 1000 for n in variants)
    print(
        f"wall time per card: median old {old_ms:.1f} ms, new {new_ms:.1f} ms, "
        f"new/old {new_ms / old_ms:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
