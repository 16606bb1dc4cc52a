"""Kafka over TLS, for real: the worker (Faust and its recovery probe), topic creation, producers and
the output reader all connect through a TLS-only listener with a self-signed certificate, and a
plaintext client is turned away."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from tests.e2e.conftest import cloud, onprem, running_pipeline

pytestmark = pytest.mark.e2e


def test_every_client_connects_over_tls_and_plaintext_is_refused(tmp_path):
    with running_pipeline(tmp_path, "tls", tls=True) as pipeline:
        assert pipeline.settings.kafka_security_protocol == "SSL"
        pks = [pipeline.pk() for _ in range(20)]
        pipeline.send_onprem(*(onprem(pk, hashlib.sha256(pk.encode()).hexdigest()) for pk in pks))
        pipeline.send_cloud(*(cloud(pk, hashlib.sha256(pk.encode()).hexdigest()) for pk in pks))
        verdicts = [record for pk in pks for record in pipeline.wait_audit(pk)]
        assert {v["status"] for v in verdicts} == {"MATCH"}, verdicts

        async def plaintext() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.bootstrap_servers, request_timeout_ms=3000)
            try:
                await asyncio.wait_for(producer.start(), 10)
            finally:
                await producer.stop()

        with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
            asyncio.run(plaintext())
