"""Kafka over TLS and SASL, for real: the worker (Faust and its recovery probe), topic creation, producers and
the output reader all connect through a TLS-only listener with a self-signed certificate (a plaintext client is
turned away), or authenticate by SASL before they are served (a wrong password is refused)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from dqhash import settings as settings_module
from dqhash.kafka.security import connect_args
from tests.e2e.conftest import cloud, onprem, running_pipeline
from tests.e2e.mock_cluster import MockCluster

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


#: aiokafka reports a refused SASL login as such, or (bootstrapping) as "unable to bootstrap"
REFUSED = (SaslAuthenticationFailed, KafkaConnectionError)
SASL_USER, SASL_PASSWORD = "dqhash", "pw-" + hashlib.sha256(b"sasl").hexdigest()[:16]


def test_every_client_authenticates_by_sasl_and_a_wrong_password_is_refused(tmp_path):
    """SCRAM-SHA-512 end to end (the mock cluster's relays are the SASL server: tests/e2e/mock_cluster.py)."""
    sasl = ("SCRAM-SHA-512", SASL_USER, SASL_PASSWORD)
    with running_pipeline(tmp_path, "sasl", broker="mock", sasl=sasl) as pipeline:
        pks = [pipeline.pk() for _ in range(20)]
        pipeline.send_onprem(*(onprem(pk, hashlib.sha256(pk.encode()).hexdigest()) for pk in pks))
        pipeline.send_cloud(*(cloud(pk, hashlib.sha256(pk.encode()).hexdigest()) for pk in pks))
        verdicts = [record for pk in pks for record in pipeline.wait_audit(pk)]
        assert {v["status"] for v in verdicts} == {"MATCH"}, verdicts
        authentications = list(pipeline.cluster.authentications)
        assert authentications and all(entry == ("SCRAM-SHA-512", SASL_USER, True) for entry in authentications)
        assert len(authentications) >= 8, f"the worker's clients and the test's own: {len(authentications)}"
        log = pipeline.log_path().read_text()
        assert "Authenticated as dqhash via SCRAM-SHA-512" in log and SASL_PASSWORD not in log
        with pytest.raises(REFUSED):  # the refusal itself is the relay's record, checked next
            asyncio.run(start_producer(pipeline.cluster.bootstrap, "SCRAM-SHA-512", SASL_PASSWORD + "x"))
        assert pipeline.cluster.authentications[-1] == ("SCRAM-SHA-512", SASL_USER, False)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_the_other_sasl_mechanisms_authenticate(mechanism):
    """The handshake alone, for the other two mechanisms dqhash accepts (the whole pipeline runs SCRAM-SHA-512)."""

    async def scenario():
        cluster = await MockCluster(brokers=1, sasl=(mechanism, SASL_USER, SASL_PASSWORD)).start()
        try:
            await start_producer(cluster.bootstrap, mechanism, SASL_PASSWORD)
            with pytest.raises(REFUSED):
                await start_producer(cluster.bootstrap, mechanism, "wrong")
            return list(cluster.authentications)
        finally:
            await cluster.stop()

    assert asyncio.run(scenario()) == [(mechanism, SASL_USER, True), (mechanism, SASL_USER, False)]


async def start_producer(bootstrap, mechanism, password):
    settings = settings_module.load(
        {
            "DQHASH_BROKER": ",".join(f"kafka://{address}" for address in bootstrap.split(",")),
            "DQHASH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "DQHASH_KAFKA_SASL_MECHANISM": mechanism,
            "DQHASH_KAFKA_USERNAME": SASL_USER,
            "DQHASH_KAFKA_PASSWORD": password,
        }
    )
    producer = AIOKafkaProducer(**connect_args(settings), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 20)
    finally:
        await producer.stop()
