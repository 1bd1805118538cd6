"""MAC operations per second of the security module: in-process, and over the TCP host
protocol on loopback against ``sscard hsm serve`` in its own process, with 1 and with 8
client connections (each client its own process, as stations would be).

    .venv/bin/python bench/hsm_throughput.py [--seconds 3]

Each figure is the median of 3 runs of ``--seconds`` each; the operation is
``command_mac("pin", factors, challenge, 16 bytes)`` — a three-level derivation, a session
key and a DES CBC-MAC per call. The machine has 2 cores: server and clients share them.

Old and new in the same run: in process, the derivation of before issue 14 (every level
for every call, two ECB calls a level: ``derive_card_key_before_14`` below) against today's
(one call a level, the region's levels derived once); over TCP, the service as one process
(``--workers 1``, the design before issue 14) against one worker process a core.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hsm_stub import cryptograms
from hsm_stub.client import TcpSecurityModule
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import TEST_CLIENT_SECRET, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from hsm_stub.suites import CipherSuite
from simulator.station import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers

from tests.hsm_serve import serve_hsm

FACTORS = CardFactors.for_card(bytes.fromhex("0102030405060708"), "371700")
CHALLENGE = bytes.fromhex("1122334455667788")
DATA = bytes.fromhex("84240000040011223344556677889900")


def count_for(module: SecurityModule, seconds: float) -> int:
    n = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        module.command_mac("pin", FACTORS, CHALLENGE, DATA)
        n += 1
    return n


def tcp_client_count(port: int, seconds: float) -> int:
    with TcpSecurityModule(
        "127.0.0.1", port, secret=TEST_CLIENT_SECRET, client_id="test-center"
    ) as client:
        client.kcv("pin")  # connect and authenticate before the clock starts
        return count_for(client, seconds)


def cpu_ticks() -> tuple[int, int]:
    """(idle, total) CPU ticks of the whole machine since boot (/proc/stat)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


@dataclass(frozen=True)
class TcpFigure:
    rate: float  # MAC/s, the median of 3 runs
    idle: float  # the share of the machine's CPU left idle meanwhile
    cpu_us: float  # CPU time of the service and its clients per MAC, in µs


def service_cpu(pid: int) -> float:
    """CPU seconds of the service's process and its worker processes so far."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for process in (pid, *map(int, children)):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def tcp_runs(pid: int, port: int, clients: int, seconds: float) -> TcpFigure:
    """3 runs against the service ``pid``. An idle share near 0 means other work held the
    cores too: then no design can show its scaling, and the CPU per MAC (which the load
    hardly changes) tells more."""
    idle0, total0 = cpu_ticks()
    service0, clients0 = service_cpu(pid), os.times()
    rates = [tcp_rate(port, clients, seconds) for _ in range(3)]
    idle1, total1 = cpu_ticks()
    service1, clients1 = service_cpu(pid), os.times()
    client_cpu = (clients1.children_user + clients1.children_system) - (
        clients0.children_user + clients0.children_system
    )
    macs = sum(rates) * seconds
    return TcpFigure(
        statistics.median(rates),
        (idle1 - idle0) / max(1, total1 - total0),
        (service1 - service0 + client_cpu) / macs * 1e6,
    )


def tcp_rate(port: int, clients: int, seconds: float) -> float:
    with multiprocessing.Pool(clients) as pool:
        counts = pool.starmap(tcp_client_count, [(port, seconds)] * clients)
    return sum(counts) / seconds


def derive_card_key_before_14(suite: CipherSuite, root: bytes, factors: CardFactors) -> bytes:
    """``cryptograms.derive_card_key`` before issue 14: every level for every call, each
    level ``E_K(D) ‖ E_K(~D)`` in two ECB calls."""
    key = root
    for factor in reversed(factors.chain()):
        inverted = bytes(b ^ 0xFF for b in factor)
        key = suite.encrypt(key, factor) + suite.encrypt(key, inverted)
    return key


def in_process_rate(module: SecurityModule, seconds: float) -> float:
    return statistics.median(count_for(module, seconds) / seconds for _ in range(3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ks.json"
        local = LocalSecurityModule(Keystore.create_test(path))
        today = cryptograms.derive_card_key
        cryptograms.derive_card_key = derive_card_key_before_14
        try:
            old_in_process = in_process_rate(local, args.seconds)
        finally:
            cryptograms.derive_card_key = today
        in_process = in_process_rate(local, args.seconds)
        tcp: dict[int, dict[int, TcpFigure]] = {}
        for workers in (1, args.workers):
            port = free_port()
            audit = Path(tmp) / f"audit-{workers}.log"
            server = serve_hsm(path, port, audit, workers=workers, capture_stderr=False)
            try:
                tcp[workers] = {n: tcp_runs(server.pid, port, n, args.seconds) for n in (1, 8)}
            finally:
                server.terminate()
                server.wait()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"in-process, derivation before issue 14: {old_in_process:8.0f} MAC/s")
    print(
        f"in-process, today:                      {in_process:8.0f} MAC/s "
        f"({in_process / old_in_process:.2f}x old)"
    )
    for workers, results in tcp.items():
        label = "1 process (old)" if workers == 1 else f"{workers} worker processes"
        for n, figure in results.items():
            print(
                f"TCP loopback, {label:>19}, {n} client{'s' if n > 1 else ' '}: "
                f"{figure.rate:8.0f} MAC/s ({figure.rate / in_process:.2f}x in-process; "
                f"CPU {figure.cpu_us:3.0f} µs a MAC; machine {figure.idle:4.0%} idle)"
            )
        print(f"  8 clients / 1 client: {results[8].rate / results[1].rate:.2f}x")
    new = tcp[args.workers][8]
    print(f"8 clients, {args.workers} workers / 1 process: {new.rate / tcp[1][8].rate:.2f}x")
    print(
        f"8 clients, {args.workers} workers: at most {os.cpu_count()} cores / "
        f"{new.cpu_us:.0f} µs = {(os.cpu_count() or 1) / new.cpu_us * 1e6:.0f} MAC/s "
        "on an idle machine"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
