"""``dqhash broker``: the embedded Kafka-compatible broker (Tansu) in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from dqhash.cli.common import EXIT_OK, command, fail


def add(commands: Any) -> None:
    parser = command(commands, "broker", "run the embedded Kafka-compatible broker in the foreground")
    parser.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dqhash.kafka.embedded_broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(port=args.port)
    try:
        broker.start()
    except BrokerError as exc:
        return fail("broker", str(exc))
    print(f"embedded broker listening: DQHASH_BROKER={broker.url}  (Ctrl-C to stop; memory only)", flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return EXIT_OK
