"""MAC operations per second of the security module: in-process, and over the TCP host
protocol on loopback against ``sscard hsm serve`` in its own process, with 1 and with 8
client connections (each client its own process, as stations would be).

    .venv/bin/python bench/hsm_throughput.py [--seconds 3]

Each figure is the median of 3 runs of ``--seconds`` each; the operation is
``command_mac("pin", factors, challenge, 16 bytes)`` — a three-level derivation, a session
key and a DES CBC-MAC per call. The machine has 2 cores: server and clients share them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hsm_stub.client import TcpSecurityModule
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import TEST_CLIENT_SECRET, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from simulator.station import free_port

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


def tcp_rate(port: int, clients: int, seconds: float) -> float:
    with multiprocessing.Pool(clients) as pool:
        counts = pool.starmap(tcp_client_count, [(port, seconds)] * clients)
    return sum(counts) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ks.json"
        local = LocalSecurityModule(Keystore.create_test(path))
        in_process = statistics.median(
            count_for(local, args.seconds) / args.seconds for _ in range(3)
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "personalize.cli",
                "hsm",
                "serve",
                "--keystore",
                str(path),
                "--listen",
                f"127.0.0.1:{port}",
                "--audit-log",
                str(Path(tmp) / "audit.log"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()  # "listening on …"
            results = {
                n: statistics.median(tcp_rate(port, n, args.seconds) for _ in range(3))
                for n in (1, 8)
            }
        finally:
            server.terminate()
            server.wait()
    print(f"in-process:              {in_process:8.0f} MAC/s")
    for n, r in results.items():
        print(
            f"TCP loopback, {n} client{'s' if n > 1 else ' '}: {r:8.0f} MAC/s "
            f"({r / in_process:.2f}x in-process)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
