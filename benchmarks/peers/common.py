"""What the peer scripts share: the command line, the network definition and the result printout.
(Plain standard library: each peer runs in its own virtual environment.)"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NETWORK_JSON = Path(__file__).resolve().with_name("network.json")


def parser(description: str, threads_help: str, seed_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--neurons", type=int, default=10_000, help="number of neurons N")
    p.add_argument("--row-length", type=int, default=1_000,
                   help="out-degree K: distinct random targets per neuron")
    p.add_argument("--steps", type=int, default=1_000, help="number of dt steps to simulate")
    p.add_argument("--threads", type=int, default=2, help=threads_help)
    p.add_argument("--seed", type=int, default=1, help=seed_help)
    p.add_argument("--network", type=Path, default=NETWORK_JSON,
                   help="network definition (default: network.json beside this script)")
    p.add_argument("--json", action="store_true",
                   help="print only one JSON object on stdout (for compare.py)")
    return p


def check(p: argparse.ArgumentParser, args) -> None:
    if not 0 < args.row_length <= args.neurons:
        p.error("--row-length must be in 1..neurons")
    if args.threads < 1:
        p.error("--threads must be >= 1")


def load_network(args) -> dict:
    return json.loads(args.network.read_text())


def emit(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
