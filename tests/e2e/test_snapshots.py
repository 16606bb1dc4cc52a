"""Whole-table assurance end to end: a snapshot run (publisher, token-range scan, report), a rerun of the
ranges that differed, deletes checked against the cloud, Debezium tombstones, and re-verification drift."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import create_engine, text

from dqhash.cloud.scanner import SQLiteRangeScan
from dqhash.cloud.tokens import token_of
from dqhash.core.hashing import RowHasher
from dqhash.core.snapshot_report import build_report
from dqhash.core.timeutil import now_ms
from dqhash.core.token_ranges import range_of, split
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.source.database import source_url
from dqhash.tools.snapshot.publish import publish
from dqhash.tools.snapshot.scan import Checkpoint, scan
from tests.e2e.conftest import onprem, sqlite_pipeline
from tests.postgres_server import running_postgres

pytestmark = pytest.mark.e2e

HASHER = RowHasher("v2", ["id", "name"])
SPLITS = 8


@pytest.fixture(scope="module")
def snap(tmp_path_factory, broker):
    with sqlite_pipeline(
        tmp_path_factory.mktemp(f"snapshots-{broker}"),
        "snap",
        broker,
        DQHASH_LOOKUP_DELAY_SECONDS=0.2,
        DQHASH_RECHECKS=1,
        DQHASH_RECHECK_BACKOFF_SECONDS=0.5,
        DQHASH_VERIFY_DELETES="true",
        DQHASH_REVERIFY_ROWS_PER_SECOND=200,
        DQHASH_REVERIFY_MIN_AGE_SECONDS=1,
    ) as running:
        yield running


def put_rows(pipeline, rows, table="rows"):
    """The rows written to ``rows`` (what the workers' lookups read), and to ``table`` too when it is another."""
    with pipeline.cloud_db:
        for name in dict.fromkeys(("rows", table)):
            pipeline.cloud_db.executemany(f'INSERT OR REPLACE INTO "{name}" VALUES (?, ?)', rows)


def delete_rows(pipeline, pks):
    with pipeline.cloud_db:
        pipeline.cloud_db.executemany("DELETE FROM rows WHERE id = ?", [(pk,) for pk in pks])


def own_cloud_table(pipeline, tag):
    """A cloud table of the test's own, so a scan of it reads no other test's rows. The workers' lookups (the
    rechecks of a problem verdict) read ``rows``: a test writes its rows to both (:func:`put_rows`)."""
    table = f"rows_{tag.replace('-', '_')}"
    with pipeline.cloud_db:
        pipeline.cloud_db.execute(f'CREATE TABLE "{table}" (id TEXT PRIMARY KEY, name TEXT)')
    return table


def drop_cloud_table(pipeline, table):
    with pipeline.cloud_db:
        pks = [pk for (pk,) in pipeline.cloud_db.execute(f'SELECT id FROM "{table}"')]
        pipeline.cloud_db.execute(f'DROP TABLE "{table}"')
    delete_rows(pipeline, pks)


def run_snapshot(pipeline, tmp_path, snapshot_id, export_rows, only=None):
    export = tmp_path / f"{snapshot_id}.jsonl"
    export.write_text("".join(json.dumps({"id": pk, "name": name}) + "\n" for pk, name in export_rows))
    settings = pipeline.settings
    with open(export, "rb") as stream:
        errors = pipeline.run(
            publish(settings, export, stream, "jsonl", snapshot_id, HASHER, ["id"], ["id"], {}, SPLITS, only, now_ms())
        )
    assert errors == 0
    source = SQLiteRangeScan(pipeline.db_path, "rows", ["id"], {}, fetch_size=7)
    try:
        checkpoint = Checkpoint(tmp_path / f"scan-{snapshot_id}.json", snapshot_id, SPLITS)
        failed = pipeline.run(scan(settings, source, HASHER, snapshot_id, SPLITS, only, 3, 0, checkpoint))
    finally:
        source.close()
    assert failed == 0
    return wait_report(pipeline, snapshot_id)


def wait_report(pipeline, snapshot_id, timeout_s=60.0, state="complete"):
    """Until the run is in ``state`` with every partition judged."""
    deadline = time.monotonic() + timeout_s
    report = None
    while time.monotonic() < deadline:
        records = pipeline.run(read_snapshot_records(pipeline.settings))
        report = build_report(records, snapshot_id, pipeline.settings.partitions, now_ms())
        progress = report["progress"]
        if report["state"] == state and progress["partitions_judged"] == progress["partitions"]:
            return report
        pipeline.check_alive(0)
        pipeline.run(asyncio.sleep(0.3))
    raise AssertionError(f"snapshot {snapshot_id} not complete within {timeout_s}s; last report: {report}")


def rows_with_differences(pipeline, matching, differing, missing, extra, table="rows"):
    """(pk, name) rows of every kind a run tells apart, the cloud copy written: the tag and the rows that match,
    differ, are missing from the cloud, and are only in the cloud."""
    tag = pipeline.pk()
    counts = {"m": matching, "d": differing, "x": missing, "e": extra}
    match, differ, absent, only = ([(f"{tag}-{kind}{i}", f"n{i}") for i in range(n)] for kind, n in counts.items())
    put_rows(pipeline, match + [(pk, name + " (drifted)") for pk, name in differ] + only, table)
    return tag, match, differ, absent, only


def snapshot_audits(pipeline, snapshot_id):
    return [r for r in list(pipeline.reader.outputs.audit_records) if r.get("snapshot_id") == snapshot_id]


def test_a_snapshot_compares_every_row_and_reports_cloud_only_rows(snap, tmp_path):
    tag, match, differ, missing, extra = rows_with_differences(snap, 40, 5, 4, 3)
    snapshot_id = f"s-{tag}"
    try:
        report = run_snapshot(snap, tmp_path, snapshot_id, match + differ + missing)
        counts = report["counts"]
        assert (counts.get("MATCH"), counts.get("MISMATCH"), counts.get("MISSING_CLOUD")) == (40, 5, 4), report
        assert counts.get("EXTRA_IN_CLOUD") == 3, report
        # every row on each side was received, and each partition's counts agree with its end marker
        assert report["rows"]["onprem"] == 49 and report["rows"]["cloud"] == 48, report
        assert all(p["state"] == "judged" for p in report["partitions"]), report
        assert report["problems"] == [] and report["duration_s"] is not None
        # the verdicts reached the audit and repair topics like any other
        snap._wait(
            lambda out: len(snapshot_audits(snap, snapshot_id)) >= 52,
            30,
            lambda out: f"52 audit records of {snapshot_id}; have {len(snapshot_audits(snap, snapshot_id))}",
        )
        extra_audits = [r for r in snapshot_audits(snap, snapshot_id) if r["status"] == "EXTRA_IN_CLOUD"]
        assert sorted(r["pk"] for r in extra_audits) == sorted(pk for pk, _ in extra)
        # the report is served by the web view, and printed by the CLI
        with urllib.request.urlopen(
            f"http://127.0.0.1:{snap.env['DQHASH_WEB_PORT']}/dq/snapshots/{snapshot_id}", timeout=10
        ) as response:
            served = json.loads(response.read())
        assert served["counts"] == report["counts"]
        printed = cli(snap, "snapshot", "report", snapshot_id, "--json")
        assert printed.returncode == 0, printed.stderr
        assert json.loads(printed.stdout)["counts"] == report["counts"]
        # after a repair, a rerun covering only the ranges that differed finds them all equal
        assert report["ranges_with_differences"], report
        put_rows(snap, differ + missing)
        delete_rows(snap, [pk for pk, _ in extra])
        only = set(report["ranges_with_differences"])
        rerun = run_snapshot(snap, tmp_path, f"{snapshot_id}-r", match + differ + missing, only)
        assert set(rerun["counts"]) == {"MATCH"}, rerun
        in_ranges = [
            pk
            for pk, _ in match + differ + missing
            if range_of(token_of({"id": pk}, ["id"], {}), split(SPLITS)) in only
        ]
        assert rerun["rows"]["onprem"] == len(in_ranges), rerun  # only the rows of the ranges that differed
    finally:
        delete_rows(snap, [pk for pk, _ in match + differ + missing + extra])


def test_deletes_are_checked_against_the_cloud_and_tombstones_are_deletes(snap):
    gone, kept, tombstoned = snap.pk(), snap.pk(), snap.pk()
    put_rows(snap, [(kept, "still here")])
    snap.send_onprem(
        onprem(gone, None, action="DELETE"),
        onprem(kept, None, action="DELETE"),
        (tombstoned.encode(), None),
    )
    [confirmed] = snap.wait_audit(gone)
    assert confirmed["status"] == "DELETE_CONFIRMED", confirmed
    [tombstone] = snap.wait_audit(tombstoned)
    assert tombstone["status"] == "DELETE_CONFIRMED" and tombstone["event_id"].startswith("tombstone:"), tombstone
    [stayed] = snap.wait_audit(kept, timeout_s=60)
    assert stayed["status"] == "DELETE_NOT_PROPAGATED" and stayed["rechecks"] == 1, stayed
    delete_rows(snap, [kept])


def test_a_matched_row_that_drifts_in_the_cloud_is_found_by_re_verification(snap):
    pk = snap.pk()
    put_rows(snap, [(pk, "n")])
    snap.send_onprem(onprem(pk, HASHER.hash({"id": pk, "name": "n"}).digest))
    [matched] = snap.wait_audit(pk)
    assert matched["status"] == "MATCH"
    put_rows(snap, [(pk, "changed in the cloud only")])
    drift = snap.wait_audit(pk, count=2, timeout_s=60)[1]
    assert drift["status"] == "CLOUD_DRIFT" and drift["rechecks"] == 1, drift
    delete_rows(snap, [pk])


class FailingRanges:
    """A range scan whose given ranges fail for good, as a Cassandra node down for the whole retry budget."""

    def __init__(self, inner, failing):
        self.inner, self.failing, self.key_columns = inner, failing, inner.key_columns

    async def pages(self, start, end):
        from dqhash.core.token_ranges import split

        if split(SPLITS).index((start, end)) in self.failing:
            raise TimeoutError("the replicas of this range did not answer")
        async for page in self.inner.pages(start, end):
            yield page

    def close(self):
        self.inner.close()


def cli(pipeline, *args, **env):
    """``dqhash ARGS`` as a newcomer runs it, with the pipeline's settings (and ``env``'s)."""
    return subprocess.run(
        [sys.executable, "-m", "dqhash.cli", *args],
        env={**os.environ, **pipeline.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=pipeline.workdir,
    )


def test_a_failed_scan_is_reported_and_resumed_and_a_bad_export_line_is_dead_lettered(snap, tmp_path):
    tag = snap.pk()
    rows = [(f"{tag}-{i}", f"n{i}") for i in range(30)]
    put_rows(snap, rows)
    snapshot_id = f"s-{tag}"
    export = tmp_path / "export.csv"
    lines = ["id,name"] + [f"{pk},{name}" for pk, name in rows] + [f"{tag}-bad,too,many", ",no key"]
    export.write_text("\n".join(lines) + "\n")
    try:
        published = cli(
            snap,
            "snapshot",
            "publish",
            str(export),
            "--snapshot-id",
            snapshot_id,
            "--key-columns",
            "id",
            "--fields",
            "id,name",
            "--types",
            "",
            "--splits",
            str(SPLITS),
        )
        assert published.returncode == 1, published.stderr  # bad lines: reported, dead-lettered, the rest sent
        assert "30 rows" in published.stderr and "2 to the DLQ" in published.stderr, published.stderr
        for reason, value in (("INVALID_ROW", f"{tag}-bad,too,many"), ("MISSING_PK", ",no key")):
            _, raw, headers = snap.wait_dlq(lambda k, v, h, reason=reason, value=value: v == value.encode())
            assert headers["dq.error.reason"] == reason.encode()
            assert headers["dq.source.topic"].startswith(b"snapshot-export:"), headers
        # the first scan loses two ranges for good: the side is marked failed, and no end markers are written
        checkpoint_path = snap.workdir / f"dqhash-scan-{snapshot_id}.json"
        source = FailingRanges(SQLiteRangeScan(snap.db_path, "rows", ["id"], {}, fetch_size=5), {1, 6})
        try:
            checkpoint = Checkpoint(checkpoint_path, snapshot_id, SPLITS)
            failed = snap.run(scan(snap.settings, source, HASHER, snapshot_id, SPLITS, None, 2, 0, checkpoint))
        finally:
            source.close()
        assert failed == 2
        records = snap.run(read_snapshot_records(snap.settings))
        report = build_report(records, snapshot_id, snap.settings.partitions, now_ms())
        assert report["state"] == "failed" and any("[1, 6]" in p for p in report["problems"]), report
        # the same command again reads only the two ranges that were not done, and the run completes
        resumed = cli(
            snap,
            "snapshot",
            "scan",
            "--snapshot-id",
            snapshot_id,
            "--fields",
            "id,name",
            "--types",
            "",
            "--splits",
            str(SPLITS),
            "--rows-per-second",
            "0",
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "6 of 8 ranges done" in resumed.stderr, resumed.stderr
        # every row that could be read is judged; the run says it failed, and why: two export lines are not in it
        final = wait_report(snap, snapshot_id, state="failed")
        assert final["counts"] == {"MATCH": 30} and final["rows"] == {**final["rows"], "onprem": 30, "cloud": 30}
        assert final["problems"] == [
            "the onprem side failed: 2 row(s) could not be published and went to "
            f"{snap.settings.dlq_topic} with their reason: fix them and run this side again under a new snapshot id"
        ], final["problems"]
        printed = cli(snap, "snapshot", "report", snapshot_id)
        assert printed.returncode == 0 and f"snapshot {snapshot_id}: failed" in printed.stdout, printed
    finally:
        delete_rows(snap, [pk for pk, _ in rows])


def test_the_report_command_counts_the_period_and_gates_on_a_rate(snap):
    pk, other = snap.pk(), snap.pk()
    put_rows(snap, [(pk, "n"), (other, "different in the cloud")])
    snap.send_onprem(
        onprem(pk, HASHER.hash({"id": pk, "name": "n"}).digest),
        onprem(other, HASHER.hash({"id": other, "name": "n"}).digest),
    )
    assert snap.wait_audit(pk)[0]["status"] == "MATCH"
    assert snap.wait_audit(other, timeout_s=60)[0]["status"] == "MISMATCH"
    printed = cli(snap, "report", "--since", "1h", "--json")
    report = json.loads(printed.stdout)
    assert report["counts"]["MATCH"] >= 1 and report["counts"]["MISMATCH"] >= 1 and not report["passed"], report
    # no gate given: never "passed"; "incomplete" (exit 3) if the period has a gap, else "no gates set" (exit 4)
    assert printed.returncode == {"no gates set": 4, "incomplete": 3}[report["result"]], printed.stderr
    gated = cli(snap, "report", "--since", "1h", "--max-mismatch-rate", "0")
    assert gated.returncode == 3 and "BREACH: mismatch rate" in gated.stdout, gated.stdout + gated.stderr
    web = f"http://127.0.0.1:{snap.env['DQHASH_WEB_PORT']}"
    asked = cli(snap, "report", "--since", "1h", "--json", "--web", web)
    assert json.loads(asked.stdout)["lag"] is not None, asked.stdout
    silent = cli(snap, "report", "--since", "1h", "--web", "http://127.0.0.1:9", "--min-match-rate", "0")
    assert silent.returncode == 3 and "PROBLEM: the worker at http://127.0.0.1:9 did not answer" in silent.stdout
    delete_rows(snap, [pk, other])


def test_a_misspelt_column_publishes_nothing_and_a_run_that_will_not_finish_can_be_abandoned(snap, tmp_path):
    tag = snap.pk()
    snapshot_id = f"s-{tag}"
    export = tmp_path / "export.csv"
    export.write_text("id,name\n" + "".join(f"{tag}-{i},n{i}\n" for i in range(5)))
    args = ["snapshot", "publish", str(export), "--snapshot-id", snapshot_id, "--key-columns", "id", "--types", ""]
    refused = cli(snap, *args, "--fields", "id,nmae")
    assert refused.returncode == 2 and "--fields names 'nmae'" in refused.stderr, refused.stderr
    assert "did you mean 'name'?" in refused.stderr and "Nothing was published" in refused.stderr
    assert "Traceback" not in refused.stderr
    records = snap.run(read_snapshot_records(snap.settings))
    assert not [r for r in records if r.get("snapshot_id") == snapshot_id]  # not even a progress record
    # the on-prem side alone: the run can never complete; abandoned, it stops counting against the gates
    assert cli(snap, *args, "--fields", "id,name").returncode == 0
    listed = cli(snap, "snapshot", "list")
    assert any(line.startswith(snapshot_id) and " running " in line for line in listed.stdout.splitlines())
    abandoned = cli(snap, "snapshot", "abandon", snapshot_id, "--reason", "the cloud scan was never run")
    assert abandoned.returncode == 0, abandoned.stderr
    report = json.loads(cli(snap, "snapshot", "report", snapshot_id, "--json").stdout)
    assert report["state"] == "abandoned" and report["abandoned"]["reason"] == "the cloud scan was never run"
    period = json.loads(cli(snap, "report", "--since", "1h", "--json").stdout)
    assert not [p for p in period["problems"] if snapshot_id in p], period["problems"]
    assert cli(snap, "snapshot", "abandon", "no-such-run", "--reason", "x").returncode == 1


def side_record(pipeline, snapshot_id, side="cloud"):
    for record in pipeline.run(read_snapshot_records(pipeline.settings)):
        if record.get("type") == "side" and record.get("side") == side and record.get("snapshot_id") == snapshot_id:
            return record
    return None


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_scan_stops_the_same_way_on_sigterm_and_sigint_and_says_so_on_the_snapshots_topic(snap, signum, status):
    tag = snap.pk()
    table = own_cloud_table(snap, tag)  # its 600 rows stay out of the other tests' scans
    put_rows(snap, [(f"{tag}-{i}", f"n{i}") for i in range(600)], table)
    snapshot_id = f"sig-{tag}"
    command = [sys.executable, "-m", "dqhash.cli", "snapshot", "scan", "--snapshot-id", snapshot_id]
    command += ["--splits", str(SPLITS), "--rows-per-second", "100", "--fetch-size", "20", "--fields", "id,name"]
    scanning = subprocess.Popen(
        [*command, "--types", ""],
        env={**os.environ, **snap.env, "DQHASH_SQLITE_TABLE": table},
        cwd=snap.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (record := side_record(snap, snapshot_id)) is None or record["state"] != "running":
            assert scanning.poll() is None, scanning.stderr.read()
            assert time.monotonic() < deadline, "the scan never reported itself running"
            snap.run(asyncio.sleep(0.2))
        scanning.send_signal(signum)
        _, stderr = scanning.communicate(timeout=30)
    finally:
        if scanning.poll() is None:
            scanning.kill()
        drop_cloud_table(snap, table)
    assert scanning.returncode == status, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr, stderr
    assert "token range" not in stderr, f"the signal failed a range instead of stopping the scan: {stderr}"
    final = side_record(snap, snapshot_id)
    assert final["state"] == "failed" and final["error"].startswith("interrupted"), final


def test_the_load_generator_makes_the_verdicts_it_says_it_sent(snap):
    """`dqhash generate`, as the compose stack runs it: cloud rows first, then their on-prem events; every case
    gets the verdict of its kind (rows missing in the cloud after the grace and rechecks)."""
    import re

    result = cli(snap, "generate", "--events", "40", "--rate", "400", "--mismatch", "0.2", "--missing", "0.1")
    assert result.returncode == 0, result.stderr
    sent = {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", result.stderr)}
    assert sum(sent.values()) == 40, result.stderr
    expected = {"MATCH": sent["match"], "MISMATCH": sent["mismatch"], "MISSING_CLOUD": sent["missing_cloud"]}

    def verdicts():
        found = {}
        for record in list(snap.reader.outputs.audit_records):
            if record["pk"].startswith("gen-"):
                found[record["pk"]] = record["status"]
        return found

    deadline = time.monotonic() + 90
    while len(verdicts()) < 40:
        snap.check_alive(0)
        assert time.monotonic() < deadline, f"{len(verdicts())} of 40 generated events got a verdict within 90 s"
        snap.run(asyncio.sleep(0.3))
    counts = {status: list(verdicts().values()).count(status) for status in expected}
    assert counts == expected, (counts, expected)


@pytest.fixture(scope="module")
def source_db():
    with running_postgres() as url:
        yield url


def test_a_snapshot_run_reads_the_on_prem_side_straight_from_a_postgresql_source(snap, tmp_path, source_db):
    """``snapshot publish --source``: the table read from a real PostgreSQL server, keyed by its primary key."""
    tag = snap.pk()
    name = f"public.src_{tag.replace('-', '_')}"
    same = [(f"{tag}-s{i}", f"n{i}") for i in range(50)]
    differ = [(f"{tag}-d{i}", f"n{i}") for i in range(5)]
    missing = [(f"{tag}-x{i}", f"n{i}") for i in range(5)]
    engine = create_engine(source_url(source_db))
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id text PRIMARY KEY, name text, loaded_at timestamptz)"))
        connection.execute(
            text(f"INSERT INTO {name} VALUES (:id, :name, now())"),
            [{"id": pk, "name": value} for pk, value in same + differ + missing],
        )
    engine.dispose()
    put_rows(snap, same + [(pk, value + " (drifted)") for pk, value in differ])
    snapshot_id = f"pg-{tag}"
    published = cli(
        snap, "snapshot", "publish", "--source", source_db, "--source-table", name, "--fetch-rows", "16",
        "--snapshot-id", snapshot_id, "--splits", str(SPLITS),
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert f"60 rows of {snapshot_id} published" in published.stderr
    source = SQLiteRangeScan(snap.db_path, "rows", ["id"], {}, fetch_size=7)
    try:
        checkpoint = Checkpoint(tmp_path / f"scan-{snapshot_id}.json", snapshot_id, SPLITS)
        assert snap.run(scan(snap.settings, source, HASHER, snapshot_id, SPLITS, None, 3, 0, checkpoint)) == 0
    finally:
        source.close()
    report = wait_report(snap, snapshot_id)
    counts = report["counts"]
    assert (counts.get("MATCH"), counts.get("MISMATCH"), counts.get("MISSING_CLOUD")) == (50, 5, 5), report
    assert report["rows"]["onprem"] == 60, report
    mismatched = lambda: sorted(r["pk"] for r in snapshot_audits(snap, snapshot_id) if r["status"] == "MISMATCH")  # noqa: E731
    expected = sorted(pk for pk, _ in differ)  # the report can reach the test before the audit rows
    snap._wait(lambda out: mismatched() == expected, 30, lambda out: f"MISMATCH audits {expected}; have {mismatched()}")


def test_a_source_that_cannot_be_read_is_one_line_and_publishes_nothing(snap, source_db):
    unknown = cli(
        snap, "snapshot", "publish", "--source", source_db, "--source-table", "public.absent", "--snapshot-id", "x"
    )
    assert unknown.returncode == 2 and "no table public.absent in the source database" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    secret = source_db.replace("postgres@", "postgres:hunter2@")
    leaked = cli(
        snap, "snapshot", "publish", "--source", secret, "--source-table", "public.absent", "--snapshot-id", "x"
    )
    assert leaked.returncode == 2 and "DQHASH_SOURCE_PASSWORD" in leaked.stderr and "hunter2" not in leaked.stderr


def test_a_run_proven_chunk_by_chunk_sends_only_the_chunks_that_differ_and_reports_as_a_run_row_by_row(snap, tmp_path):
    from dqhash.core.range_digests import ChunkDigests
    from dqhash.tools.snapshot.digests import DigestPlan

    table = own_cloud_table(snap, snap.pk())
    tag, match, differ, missing, extra = rows_with_differences(snap, 60, 3, 2, 2, table)
    snapshot_id = f"c-{tag}"
    plan = DigestPlan(chunks_per_range=64, wait_s=60)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps({"id": pk, "name": name}) + "\n" for pk, name in match + differ + missing))
    settings = snap.settings

    async def both_sides(scan_id="first"):
        source = SQLiteRangeScan(snap.db_path, table, ["id"], {}, fetch_size=7)
        checkpoint = Checkpoint(tmp_path / f"scan-{scan_id}.json", snapshot_id, SPLITS)
        try:
            with open(export, "rb") as stream:
                return await asyncio.gather(
                    publish(settings, export, stream, "jsonl", snapshot_id, HASHER, ["id"], ["id"], {}, SPLITS, None,
                            now_ms(), digests=plan),
                    scan(settings, source, HASHER, snapshot_id, SPLITS, None, 3, 0, checkpoint, digests=plan),
                )  # fmt: skip
        finally:
            source.close()

    try:
        assert snap.run(both_sides()) == [0, 0]
        report = wait_report(snap, snapshot_id)
        # the same verdicts a run row by row gives: no row of a proven chunk is missing, none is counted twice
        assert report["counts"] == {"MATCH": 60, "MISMATCH": 3, "MISSING_CLOUD": 2, "EXTRA_IN_CLOUD": 2}, report
        assert report["problems"] == [], report
        # only the rows of the chunks holding a difference were published, on both sides
        cut = ChunkDigests(split(SPLITS), plan.chunks_per_range)

        def chunk(pk):
            token = token_of({"id": pk}, ["id"], {})
            return cut.chunk_id(range_of(token, cut.ranges), token)

        differing = {chunk(pk) for pk, _ in differ + missing + extra}
        sent = [pk for pk, _ in match + differ + missing if chunk(pk) in differing]
        proven = report["rows"]["proven_by_digests"]
        assert report["rows"]["onprem"] == len(sent) and proven == 65 - len(sent) > 0, report
        assert report["rows"]["cloud"] + proven == 65, report
        # the verdicts reached the audit topic for the rows sent, and for no row of a proven chunk
        expected_audits = len(sent) + len(extra)
        snap._wait(
            lambda out: len(snapshot_audits(snap, snapshot_id)) >= expected_audits,
            30,
            lambda out: (
                f"{expected_audits} audit records of {snapshot_id}; have {len(snapshot_audits(snap, snapshot_id))}"
            ),
        )
        assert {r["pk"] for r in snapshot_audits(snap, snapshot_id)} == set(sent) | {pk for pk, _ in extra}
        # both sides run again under the same id: each reuses the digests it published, so a cloud row changed
        # since, in a proven chunk, does not change which rows are sent (the two sides still agree on them)
        proven_pk = next(pk for pk, _ in match if chunk(pk) not in differing)
        put_rows(snap, [(proven_pk, "changed after the digests")], table)
        before = build_report(snap.run(read_snapshot_records(settings)), snapshot_id, settings.partitions, now_ms())
        assert snap.run(both_sides("again")) == [0, 0]
        again = wait_report(snap, snapshot_id)
        assert again["counts"] == report["counts"] and again["rows"] == before["rows"], again
    finally:
        drop_cloud_table(snap, table)


def test_a_side_proven_chunk_by_chunk_whose_partner_is_late_fails_in_one_line_and_resumes_from_the_rows_it_kept(
    snap, tmp_path
):
    tag = snap.pk()
    table = own_cloud_table(snap, tag)
    rows = [(f"{tag}-{i}", f"n{i}") for i in range(20)]
    put_rows(snap, rows[:-1] + [(rows[-1][0], "drifted")], table)
    snapshot_id = f"late-{tag}"
    scan_args = ("snapshot", "scan", "--snapshot-id", snapshot_id, "--fields", "id,name", "--types", "", "--splits",
                 str(SPLITS), "--chunks-per-range", "16", "--rows-per-second", "0")  # fmt: skip
    try:
        scanned = cli(snap, *scan_args, "--digest-wait", "1", DQHASH_SQLITE_TABLE=table)
        assert scanned.returncode == 1, scanned.stderr
        assert "the onprem side's digests of" in scanned.stderr and "did not come within 1s" in scanned.stderr
        assert "Traceback" not in scanned.stderr, scanned.stderr
        records = snap.run(read_snapshot_records(snap.settings))
        report = build_report(records, snapshot_id, snap.settings.partitions, now_ms())
        assert report["state"] == "failed" and report["progress"]["cloud"]["rows"] == 0, report
        assert any("did not come within 1s" in p for p in report["problems"]), report["problems"]
        kept = snap.workdir / f"dqhash-scan-{snapshot_id}.json.{snapshot_id}.rows"
        assert kept.is_file()  # the rows it read, kept for the run again
        # the on-prem side from stdin (read once), and the same scan command again: it reuses its digests and the
        # rows it kept, and the run completes; its kept rows are then removed
        export = tmp_path / "export.jsonl"
        export.write_text("".join(json.dumps({"id": pk, "name": name}) + "\n" for pk, name in rows))
        with open(export) as stdin:
            publisher = subprocess.Popen(
                [sys.executable, "-m", "dqhash.cli", "snapshot", "publish", "-", "--snapshot-id", snapshot_id,
                 "--key-columns", "id", "--fields", "id,name", "--types", "", "--splits", str(SPLITS),
                 "--chunks-per-range", "16"],
                env={**os.environ, **snap.env}, stdin=stdin, stderr=subprocess.PIPE, text=True, cwd=snap.workdir,
            )  # fmt: skip
        rescanned = cli(snap, *scan_args, DQHASH_SQLITE_TABLE=table)
        _, published = publisher.communicate(timeout=120)
        assert publisher.returncode == 0, published
        assert rescanned.returncode == 0, rescanned.stderr
        assert "using the digests this side published earlier" in rescanned.stderr, rescanned.stderr
        final = wait_report(snap, snapshot_id)
        assert final["counts"] == {"MATCH": 19, "MISMATCH": 1}, final
        assert 0 < final["rows"]["proven_by_digests"] < 20 and final["rows"]["onprem"] == final["rows"]["cloud"]
        assert not kept.exists()
    finally:
        drop_cloud_table(snap, table)
