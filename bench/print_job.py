"""A card face from holder data to the printer: render (PNG layers), build the YMCKO panels,
and send the whole job to the Evolis emulator over a pseudo-terminal.

    .venv/bin/python bench/print_job.py [--cards 10]

Prints the median time of each stage and the bytes sent per card; the panels are built by
the per-dot packing of before issue 14 (printer/panel_reference.py) and by today's, on the
same cards in the same run, and the ratio of their medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from printer.evolis import EvolisPrinter
from printer.face import CardFace, build_panels, render_png
from printer.panel_reference import build_panels_per_dot
from simulator.evolis_emulator import EvolisEmulator, VirtualCard
from simulator.factory import sample_photo
from sscard.profile import load_profile


class CountingPrinter(EvolisPrinter):
    sent = 0

    def command(self, text: str, binary: bytes = b"", *, timeout: float | None = None) -> str:
        self.sent += len(text) + len(binary) + 2  # ESC … CR
        return super().command(text, binary, timeout=timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10)
    args = parser.parse_args()
    render, old_panels, panels_t, send, sent = [], [], [], [], []
    emulator = EvolisEmulator([VirtualCard() for _ in range(args.cards)]).start()
    try:
        with CountingPrinter(emulator.path, timeout=60) as printer:
            for i in range(args.cards):
                face = CardFace(
                    f"张{'三四五六七八九十'[i % 8]}",
                    "11010519491231002X",
                    f"A{i:07d}X",
                    date(2026, 11, 25),
                    "深圳市人力资源和社会保障局",
                    sample_photo(str(i)),
                    load_profile("default").face,
                )
                t0 = time.perf_counter()
                render_png(face)
                t1 = time.perf_counter()
                build_panels_per_dot(face)
                t_old = time.perf_counter()
                panels = build_panels(face)
                t2 = time.perf_counter()
                printer.sent = 0
                printer.print_panels(panels)
                t3 = time.perf_counter()
                render.append(t1 - t0)
                old_panels.append(t_old - t1)
                panels_t.append(t2 - t_old)
                send.append(t3 - t2)
                sent.append(printer.sent)
    finally:
        emulator.stop()
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"cards: {args.cards}")
    print(f"render face (PNG):          median {ms(render):7.1f} ms")
    print(f"build YMCKO panels, old:    median {ms(old_panels):7.1f} ms (per-dot packing)")
    print(f"build YMCKO panels:         median {ms(panels_t):7.1f} ms")
    print(f"  panels old / new:         {ms(old_panels) / ms(panels_t):7.1f}x")
    print(f"send job over pty + print:  median {ms(send):7.1f} ms")
    print(f"bytes sent per card:        {statistics.median(sent):,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
