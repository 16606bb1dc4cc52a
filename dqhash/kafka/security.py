"""Kafka TLS and SASL for every client: Faust's own and each one dqhash creates (topics, demo, bench,
audit sink, runner, the embedded broker's recovery probe). One source, the settings, so no client can
connect with less security than the worker does.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from dqhash.settings import Settings


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the configured CA and client certificate; None without TLS."""
    if not uses_tls(settings):
        return None
    return create_ssl_context(
        cafile=settings.kafka_ssl_ca or None,
        certfile=settings.kafka_ssl_cert or None,
        keyfile=settings.kafka_ssl_key or None,
        password=settings.kafka_ssl_key_password.reveal() or None,
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka producer, consumer or admin client: Faust's own mapping of the
    worker's credentials, the one the embedded broker's recovery probe uses too."""
    return dict(credentials_to_aiokafka_auth(faust_credentials(settings)))


def faust_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The same security as Faust's ``broker_credentials`` (None: plaintext)."""
    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_username,
            password=settings.kafka_password.reveal(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def connect_args(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security options: everything an aiokafka client needs to reach the cluster."""
    return {"bootstrap_servers": settings.bootstrap_servers, **client_options(settings)}
