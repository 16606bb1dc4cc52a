import pytest

from dqhash.settings import VARIABLES, SettingsError, load, markdown_table


def test_defaults_load():
    settings = load({})
    assert settings.onprem_topic == "topic1" and settings.cloud_topic == "topic2"
    assert (
        settings.audit_topic == "dq-audit" and settings.metrics_topic == "dq-metrics" and settings.dlq_topic == "dq-dlq"
    )
    assert (settings.window_ms, settings.grace_ms) == (60_000, 30_000)
    assert settings.bootstrap_servers == "127.0.0.1:9092"


def test_overrides():
    settings = load(
        {
            "DQHASH_BROKER": "kafka://a:1,kafka://b:2",
            "DQHASH_PARTITIONS": "8",
            "DQHASH_WINDOW_SECONDS": "2.5",
            "DD_ENV": "prod",
            "DD_VERSION": "1.2",
        }
    )
    assert settings.bootstrap_servers == "a:1,b:2" and settings.partitions == 8 and settings.window_ms == 2500
    assert settings.dd_tags() == ["service:dqhash", "env:prod", "version:1.2"]


@pytest.mark.parametrize(
    "name, value",
    [
        ("DQHASH_PARTITIONS", "0"),
        ("DQHASH_PARTITIONS", "four"),
        ("DQHASH_WINDOW_SECONDS", "0"),
        ("DQHASH_GRACE_SECONDS", "-1"),
        ("DQHASH_BROKER", "localhost:9092"),
        ("DQHASH_HASH_STRATEGY", "v9"),
        ("DQHASH_WEB_PORT", "70000"),
        ("DD_DOGSTATSD_PORT", "x"),
        ("DQHASH_METRICS_ENABLED", "maybe"),
        ("DQHASH_ONPREM_TOPIC", "bad topic"),
        ("DQHASH_STORE", "redis://"),
        ("DQHASH_TICK_SECONDS", "0"),
    ],
)
def test_bad_setting_names_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load({name: value})


def test_a_retired_setting_stops_the_start_naming_what_replaced_it():
    with pytest.raises(SettingsError, match="DQHASH_ROCKSDB_CACHE_MB is no longer a setting.*DQHASH_ROCKSDB_MEMORY_MB"):
        load({"DQHASH_ROCKSDB_CACHE_MB": "64"})
    assert load({"DQHASH_ROCKSDB_MEMORY_MB": "64"}).rocksdb_memory_mb == 64


def test_topics_must_differ():
    with pytest.raises(SettingsError, match="different topics"):
        load({"DQHASH_AUDIT_TOPIC": "topic1"})


def test_readme_settings_table_is_the_generated_one():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("<!-- settings-table -->\n", 1)[1].split("\n<!-- /settings-table -->", 1)[0]
    assert section == markdown_table(), (
        "README's settings table is stale; regenerate it: "
        "python -c 'import dqhash.settings as s; print(s.markdown_table())'"
    )
    assert all(v.name in section for v in VARIABLES)


def test_the_garbage_collector_is_tuned_at_worker_start_and_left_alone_with_zero():
    import gc

    from dqhash.internals.worker import tune_garbage_collector

    before = gc.get_threshold()
    try:
        tune_garbage_collector(0)
        assert gc.get_threshold() == before
        tune_garbage_collector(100_000)
        assert gc.get_threshold() == (100_000, *before[1:]) and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert load({"DQHASH_GC_THRESHOLD": "0"}).gc_threshold == 0
    with pytest.raises(SettingsError, match="DQHASH_GC_THRESHOLD"):
        load({"DQHASH_GC_THRESHOLD": "5"})


def test_each_setting_is_declared_once_on_its_field_and_every_list_derives_from_those_declarations():
    from dataclasses import fields

    from dqhash.settings import Settings

    declared = [f.metadata["setting"].variable for f in fields(Settings)]
    assert declared == list(VARIABLES) and len({v.name for v in declared}) == len(declared)
    settings = load(
        {
            "DQHASH_KAFKA_PASSWORD": " p w ",
            "DQHASH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "DQHASH_KAFKA_SASL_MECHANISM": "plain",
            "DQHASH_KAFKA_USERNAME": "u",
        }
    )
    assert settings.kafka_password.reveal() == " p w " and settings.kafka_security_protocol == "SASL_SSL"
    with pytest.raises(SettingsError, match="DQHASH_ROLE='bogus' is invalid"):
        load({"DQHASH_ROLE": "Bogus"})
