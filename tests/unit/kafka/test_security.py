"""Kafka TLS/SASL settings reach every client, the web token guards what changes state, secrets stay secret."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest

from dqhash import settings as settings_module
from dqhash.kafka.security import client_options, connect_args, faust_credentials
from dqhash.ops.access import bearer, refusal
from dqhash.settings import Secret, SettingsError
from tests.paths import ROOT

CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


@pytest.fixture
def ca_file(tmp_path) -> Path:
    """A CA bundle that ssl accepts: Python's own test certificate would do; the system bundle is simplest."""
    path = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not path.is_file():
        pytest.skip("no system CA bundle to load")
    return path


def load(**env: str) -> settings_module.Settings:
    return settings_module.load(env)


def test_sasl_ssl_reaches_aiokafka_options_and_faust_credentials(ca_file):
    settings = load(
        DQHASH_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        DQHASH_KAFKA_SASL_MECHANISM="scram-sha-512",
        DQHASH_KAFKA_USERNAME="dq",
        DQHASH_KAFKA_PASSWORD="s3cret",
        DQHASH_KAFKA_SSL_CA=str(ca_file),
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "dq" and options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert connect_args(settings)["bootstrap_servers"] == "127.0.0.1:9092"
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials) and credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.password == "s3cret"
    assert "s3cret" not in repr(credentials)


def test_the_worker_app_gets_the_same_credentials(ca_file):
    from dqhash.runtime import create_app

    settings = load(DQHASH_KAFKA_SECURITY_PROTOCOL="SSL", DQHASH_KAFKA_SSL_CA=str(ca_file), DQHASH_STORE="memory://")
    app = create_app(settings)
    assert isinstance(app.conf.broker_credentials, faust.SSLCredentials)
    assert app.conf.broker_credentials.protocol.value == "SSL"


def test_plaintext_is_the_default_and_carries_nothing_else():
    settings = load()
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"} and faust_credentials(settings) is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DQHASH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ({"DQHASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "DQHASH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "PLAIN | SCRAM"),
        (
            {"DQHASH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "DQHASH_KAFKA_SASL_MECHANISM": "PLAIN"},
            "needs DQHASH_KAFKA_USERNAME",
        ),
        ({"DQHASH_KAFKA_PASSWORD": "x"}, "uses no SASL"),
        ({"DQHASH_KAFKA_SSL_CA": "/etc/hostname"}, "uses no TLS"),
        ({"DQHASH_KAFKA_SECURITY_PROTOCOL": "SSL", "DQHASH_KAFKA_SSL_CA": "/nope.pem"}, "no such file"),
        ({"DQHASH_KAFKA_SECURITY_PROTOCOL": "SSL", "DQHASH_KAFKA_SSL_CERT": "/etc/hostname"}, "needs both"),
        ({"DQHASH_WEB_TOKEN_READS": "true"}, "needs DQHASH_WEB_TOKEN"),
    ],
)
def test_half_configured_security_fails_at_start(env, message):
    env = {k: v.replace("PLAIN | SCRAM", "") for k, v in env.items()}
    with pytest.raises(SettingsError) as refused:
        settings_module.load(env)
    expected = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" if message == "PLAIN | SCRAM" else message
    assert expected in str(refused.value)


def test_a_bad_security_setting_never_shows_the_password():
    with pytest.raises(SettingsError) as refused:
        settings_module.load({"DQHASH_KAFKA_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(refused.value)


def test_secrets_print_as_stars_everywhere():
    settings = load(DQHASH_WEB_TOKEN="tok-123", DQHASH_CASSANDRA_PASSWORD="pw-456")
    shown = repr(settings) + str(settings) + f"{settings.web_token} {settings.cassandra_password!r}"
    assert "tok-123" not in shown and "pw-456" not in shown and "***" in shown
    assert settings.web_token.reveal() == "tok-123" and bool(Secret("")) is False
    with pytest.raises(TypeError):
        __import__("pickle").dumps(settings.web_token)


def test_every_kafka_client_dqhash_creates_takes_the_security_options():
    """Each AIOKafka* call in the product unpacks connect_args/client options (``**``); none builds its own."""
    bare = []
    for path in (ROOT / "dqhash").rglob("*.py"):
        if "agents" in path.parts or "tables" in path.parts:  # links to the top-level folders, checked below
            continue
        bare += _bare_calls(path)
    for folder in ("agents", "tables"):
        for path in (ROOT / folder).glob("*.py"):
            bare += _bare_calls(path)
    assert not bare, f"Kafka clients without the security options: {bare}"


def _bare_calls(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in CLIENTS and not any(k.arg is None for k in node.keywords):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_the_client_check_can_fail(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "AIOKafkaProducer(bootstrap_servers='x')\nAIOKafkaConsumer(**kafka)\naiokafka.AIOKafkaAdminClient()\n"
    )
    assert _bare_calls(sample, tmp_path) == ["sample.py:1", "sample.py:3"]


@pytest.mark.parametrize(
    "header, changes_state, reads, expected",
    [
        (None, False, False, None),  # an open read
        (None, True, False, 401),
        ("Basic abc", True, False, 401),
        ("Bearer wrong", True, False, 403),
        ("Bearer right", True, False, None),
        ("Bearer right ", True, False, None),
        (None, False, True, 401),  # reads protected
        ("Bearer right", False, True, None),
    ],
)
def test_the_web_token_guards_writes_and_optionally_reads(header, changes_state, reads, expected):
    refused = refusal(header, Secret("right"), changes_state, reads)
    assert (refused and refused[0]) == expected
    assert refused is None or "right" not in refused[1]


def test_writes_are_disabled_without_a_token():
    assert refusal("Bearer anything", Secret(""), changes_state=True, reads_need_token=False)[0] == 403
    assert bearer(Secret("")) == {} and bearer(Secret("t")) == {"Authorization": "Bearer t"}
