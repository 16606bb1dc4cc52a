"""The command line as a whole: one module per command, ``--version``, and ``--help`` texts that list the
environment variables a command reads, generated from the settings' declarations."""

from __future__ import annotations

import argparse
import importlib.metadata

import pytest

from dqhash import cli
from dqhash.settings import VARIABLES, environment_help, variables_matching


def subcommand_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every leaf subcommand's parser, by its words (``("snapshot", "scan")``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(subcommand_parsers(sub, (*path, name)))
    if not found and path:
        found[path] = parser
    return found


LEAVES = subcommand_parsers(cli._parser())


def test_each_command_lives_in_its_own_module():
    assert {module.__name__.rsplit(".", 1)[1] for module in cli.COMMANDS} == {
        "hash",
        "demo",
        "broker",
        "topics",
        "bench",
        "snapshot",
        "catalog",
        "cassandra",
        "report",
        "repair",
        "tail",
        "datadog",
        "generate",
    }
    assert {words[0] for words in LEAVES} == {
        "hash",
        "demo",
        "broker",
        "topics",
        "bench",
        "bench-domain",
        "snapshot",
        "catalog",
        "cassandra",
        "report",
        "repair",
        "tail",
        "datadog",
        "generate",
    }


@pytest.mark.parametrize(
    ("words", "variables"),
    [
        (
            ("topics", "create"),
            {"DQHASH_BROKER", "DQHASH_KAFKA_SASL_MECHANISM", "DQHASH_PARTITIONS", "DQHASH_AUDIT_TOPIC"},
        ),
        (
            ("snapshot", "scan"),
            {"DQHASH_CLOUD_STORE", "DQHASH_CASSANDRA_KEYSPACE", "DQHASH_SQLITE_PATH", "DQHASH_HASH_TYPES"},
        ),
        (("snapshot", "publish"), {"DQHASH_ONPREM_TOPIC", "DQHASH_SNAPSHOT_TOPIC", "DQHASH_HASH_COLUMNS"}),
        (("cassandra", "migrate"), {"DQHASH_CASSANDRA_CONTACT_POINTS", "DQHASH_CASSANDRA_AUDIT_KEYSPACE"}),
        (("report",), {"DQHASH_AUDIT_TOPIC", "DQHASH_METRICS_TOPIC", "DQHASH_WEB_TOKEN", "DQHASH_CATALOG"}),
        (("catalog", "discover"), {"DQHASH_CASSANDRA_CONTACT_POINTS", "DQHASH_CASSANDRA_USERNAME"}),
        (("demo",), {"DQHASH_BROKER"}),
        (("tail",), {"DQHASH_BROKER", "DQHASH_AUDIT_TOPIC", "DQHASH_DLQ_TOPIC", "DQHASH_REPAIR_TOPIC"}),
    ],
)
def test_help_lists_the_variables_the_command_reads_with_their_declared_defaults(words, variables):
    text = LEAVES[words].format_help()
    declared = {v.name: v for v in VARIABLES}
    for name in variables:
        assert f"  {name}\n" in text, f"dqhash {' '.join(words)} --help does not list {name}"
        default = declared[name].default
        if default:
            assert f"[{default}]" in text, f"{name}'s default {default!r} is not the declared one"


def test_a_command_that_reads_no_broker_does_not_list_one():
    assert "DQHASH_BROKER" not in LEAVES[("hash",)].format_help()
    assert "DQHASH_KAFKA" not in LEAVES[("cassandra", "migrate")].format_help()


def test_a_pattern_that_names_no_setting_is_refused():
    with pytest.raises(ValueError, match="DQHASH_NO_SUCH"):
        variables_matching(["DQHASH_BROKER", "DQHASH_NO_SUCH_*"])


def test_environment_help_follows_declaration_order_and_never_shows_a_secret_value(monkeypatch):
    monkeypatch.setenv("DQHASH_CASSANDRA_PASSWORD", "hunter2")
    text = environment_help(["DQHASH_CASSANDRA_*"])
    names = [line.strip() for line in text.splitlines() if line.startswith("  DQHASH_")]
    assert names == [v.name for v in VARIABLES if v.name.startswith("DQHASH_CASSANDRA_")]
    assert "hunter2" not in text


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    from dqhash.core import compiled_engine, compiled_hasher

    hasher = f"compiled, {compiled_hasher.sha256_backend()} SHA-256" if compiled_hasher.AVAILABLE else "pure Python"
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"dqhash {importlib.metadata.version('dqhash')} (hasher: {hasher}"), out
    assert out.endswith(f"; engine: {compiled_engine.describe()})"), out


def test_no_command_prints_the_help_and_exits_with_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("words", [["report"], ["tail", "audit"]])
def test_a_bad_period_is_a_usage_error_that_says_what_a_period_looks_like(words, capsys):
    assert cli.main([*words, "--since", "5x"]) == 2
    assert "--since '5x': expected a duration such as 90m, 24h or 7d" in capsys.readouterr().err


def test_the_bench_holds_pending_pairs_only_with_held_keys(capsys):
    assert cli.main(["bench", "--pending"]) == 2
    assert "--pending goes with --hold-keys" in capsys.readouterr().err
