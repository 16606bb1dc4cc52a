"""The table-inspection views over real HTTP on a running worker, and the dashboard in headless Chromium."""

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import orjson
import pytest

from dqhash.core.timeutil import now_ms
from dqhash.kafka.security import connect_args
from dqhash.tools.runner import produce
from tests.e2e.conftest import CASSANDRA_PASSWORD, WEB_TOKEN, cloud, h, onprem

pytestmark = pytest.mark.e2e


def call(pipeline, path, body=None, token=WEB_TOKEN):
    """(status, JSON or text) of a request to the worker's web server, with the session's web token."""
    url = f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}{path}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, orjson.loads(raw) if "json" in kind else raw.decode()


def listed(pipeline, path, wanted, timeout_s=30.0):
    """The first answer of ``path`` whose items satisfy ``wanted``: the list views follow the repair and DLQ
    topics, so an output is listed a fetch after it is produced."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = call(pipeline, path)
        assert status == 200, body
        if wanted(body["items"]):
            return body
        assert time.monotonic() < deadline, f"{path} never listed what was expected within {timeout_s}s: {body}"
        time.sleep(0.2)  # polling the view: the follower reads the topic in its own time


def test_pair_view_shows_both_sides_status_and_history(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk), event_id="ev-web-1"))
    pipeline.send_cloud(cloud(pk, h(pk)))
    pipeline.wait_audit(pk)
    status, view = call(pipeline, f"/dq/pairs/{urllib.parse.quote(pk)}")
    assert status == 200, view
    assert view["status"] == "MATCH" and view["onprem"]["event_id"] == "ev-web-1"
    assert view["onprem"]["hash"] == view["cloud"]["hash"] == f"v2:{h(pk)}"
    assert view["history"][0]["status"] == "MATCH" and view["served_by"].endswith(pipeline.env["DQHASH_WEB_PORT"])


def test_unknown_pk_is_404_and_bad_input_is_400_with_a_message(pipeline):
    status, body = call(pipeline, "/dq/pairs/never-seen-pk")
    assert status == 404 and body["found"] is False and "never seen" in body["error"]
    status, body = call(pipeline, "/dq/pairs/" + urllib.parse.quote("[broken"))
    assert status == 400 and "composite" in body["error"]
    for path in ("/dq/windows?limit=0", "/dq/mismatches?offset=-1", "/dq/dlq?limit=abc"):
        status, body = call(pipeline, path)
        assert status == 400 and body["error"], (path, body)


def test_mismatches_are_listed_newest_first_with_paging(pipeline):
    pks = [pipeline.pk() for _ in range(3)]
    for pk in pks:
        pipeline.send_onprem(onprem(pk, h(pk)))
        pipeline.send_cloud(cloud(pk, h("different")))
        pipeline.wait_audit(pk)
    listed(pipeline, "/dq/mismatches?limit=500", lambda items: set(pks) <= {r["pk"] for r in items})
    status, first = call(pipeline, "/dq/mismatches?limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next_offset"] == 2
    status, second = call(pipeline, "/dq/mismatches?limit=2&offset=2")
    shown = [r["pk"] for r in first["items"] + second["items"]]
    assert set(pks) <= set(shown) and first["items"][0]["classified_at"] >= first["items"][1]["classified_at"]


def test_windows_view_sums_counts_with_match_rate(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    pipeline.wait_audit(pk)
    status, body = call(pipeline, "/dq/windows")
    assert status == 200 and body["unreachable_workers"] == []
    assert sum(w["counts"].get("MATCH", 0) for w in body["items"]) >= 1
    assert all(w["match_rate"] is None or 0 <= w["match_rate"] <= 1 for w in body["items"])


def test_dead_letters_are_listed_and_replayed_into_their_source_topic(pipeline):
    marker = pipeline.pk()
    pipeline.send_onprem((marker.encode(), b'{"broken": ' + marker.encode()))
    first = pipeline.wait_dlq(lambda key, value, headers: key == marker.encode())
    listing = listed(pipeline, "/dq/dlq?limit=500", lambda items: any(e["key"] == marker for e in items))
    [entry] = [e for e in listing["items"] if e["key"] == marker]
    assert entry["reason"] == "INVALID_JSON" and entry["topic"] == pipeline.settings.onprem_topic
    request = orjson.dumps({"ids": [entry["id"], "nope:0:0"]})
    status, body = call(pipeline, "/dq/dlq/replay", request, token=None)
    assert status == 401 and "Authorization: Bearer" in body["error"] and WEB_TOKEN not in str(body)
    status, body = call(pipeline, "/dq/dlq/replay", request, token=WEB_TOKEN[:-1] + "x")
    assert status == 403 and body["error"] == "the web token is wrong"
    status, body = call(pipeline, "/dq/dlq/replay", request)
    assert status == 200 and body["replayed"] == [{"id": entry["id"], "topic": pipeline.settings.onprem_topic}]
    assert body["not_found"] == ["nope:0:0"]
    # still broken, so it comes back to the DLQ: now marked as a replay, from a new source offset
    again = pipeline.wait_dlq(lambda key, value, headers: key == marker.encode() and "dq.replay" in headers)
    assert again[2]["dq.replay"] == entry["id"].encode() and again[1] == first[1]
    assert again[2]["dq.source.offset"] != first[2]["dq.source.offset"]
    status, body = call(pipeline, "/dq/dlq/replay", b"{not json")
    assert status == 400 and "ids" in body["error"]


def test_dashboard_renders_its_chart_in_headless_chromium(pipeline, tmp_path):
    from PIL import Image

    browser = chromium()
    for _ in range(2):  # windows with matches for the chart
        pk = pipeline.pk()
        pipeline.send_onprem(onprem(pk, h(pk)))
        pipeline.send_cloud(cloud(pk, h(pk)))
        pipeline.wait_audit(pk)
    status, html = call(pipeline, "/")
    assert status == 200 and 'id="chart"' in html
    shot = tmp_path / "dashboard.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1000,700",
            "--virtual-time-budget=8000",
            f"--screenshot={shot}",
            f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}/",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    image = Image.open(shot).convert("RGB")
    pixels = list(image.get_flattened_data()) if hasattr(image, "get_flattened_data") else list(image.getdata())
    green = sum(1 for p in pixels if _near(p, (0x2E, 0x9E, 0x44)))
    blue = sum(1 for p in pixels if _near(p, (0x1F, 0x5F, 0xD6)))
    shutil.copy(shot, pipeline.workdir / "dashboard.png")
    # the legend alone has 100 px of each colour; bars and the rate line need far more
    assert green > 1_000, f"no MATCH bars in the chart ({green} green px); screenshot: {shot}"
    assert blue > 150, f"no match-rate marks in the chart ({blue} blue px); screenshot: {shot}"


def chromium():
    """Debian's Chromium, or a skip (a failure where CI requires it) saying how to get it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        message = "no Chromium for the dashboard test: apt-get install -y chromium (CI installs it)"
        if os.environ.get("DQHASH_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return browser


def dump_dom(browser, pipeline, tmp_path, path):
    """The dashboard's DOM once its scripts have run (headless Chromium, 8 s of virtual time)."""
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=8000",
            "--dump-dom",
            f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}{path}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout


def _near(pixel, colour, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


def test_secrets_never_appear_in_logs_views_or_dead_letters(pipeline):
    """The worker holds a web token and a Cassandra password: neither may leave it, in any form."""
    marker = pipeline.pk()
    pipeline.send_onprem((marker.encode(), b"{broken"))
    pipeline.wait_dlq(lambda key, value, headers: key == marker.encode())
    secrets = (WEB_TOKEN.encode(), CASSANDRA_PASSWORD.encode())
    views = ["/dq/windows", "/dq/mismatches", "/dq/dlq?limit=500", f"/dq/pairs/{marker}", "/", "/dq/nope"]
    for path in views:
        status, body = call(pipeline, path)
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        assert not any(s.decode() in text for s in secrets), f"a secret is in the answer to {path}"
    for _key, value, headers in list(pipeline.reader.outputs.dlq_records):
        shown = b"".join([value or b"", *(k.encode() + v for k, v in headers.items())])
        assert not any(s in shown for s in secrets), "a secret is in a dead letter"
    logs = b"".join(path.read_bytes() for path in pipeline.workdir.glob("*.log"))
    assert logs, "no worker log to check"
    assert not any(s in logs for s in secrets), "a secret is in a worker's log"


def test_dashboard_lists_snapshot_runs_in_headless_chromium(pipeline, tmp_path):
    browser = chromium()
    snapshot_id = f"dash-{pipeline.pk()}"
    progress = {
        "type": "side",
        "side": "onprem",
        "snapshot_id": snapshot_id,
        "state": "running",
        "rows": 1234,
        "rows_per_s": 500.0,
        "percent": 12.5,
        "eta_s": 20.0,
        "started_at": "2026-12-02T10:00:00.000Z",
    }
    pipeline.run(
        produce(
            connect_args(pipeline.settings),
            pipeline.settings.snapshot_topic,
            [(f"onprem:{snapshot_id}".encode(), orjson.dumps(progress))],
        )
    )
    status, listed = call(pipeline, "/dq/snapshots")
    assert status == 200 and snapshot_id in [item["snapshot_id"] for item in listed["items"]], listed
    status, report = call(pipeline, f"/dq/snapshots/{snapshot_id}")
    assert status == 200 and report["progress"]["onprem"]["percent"] == 12.5 and report["state"] == "running"
    assert call(pipeline, "/dq/snapshots/no-such-run")[0] == 404
    dom = dump_dom(browser, pipeline, tmp_path, "/")
    table = dom.split('id="snapshots"', 1)[1].split("</tbody>", 1)[0]
    assert snapshot_id in table and "running" in table, table[:500]


def test_a_mismatch_names_its_columns_in_the_audit_record_the_repair_request_and_the_pair_view(pipeline):
    from dqhash.core.hashing import RowHasher

    hasher = RowHasher("v2", ["id", "name", "amount"])
    pk = pipeline.pk()
    onprem_row, cloud_row = {"id": pk, "name": "Ada", "amount": "1"}, {"id": pk, "name": "Ada L.", "amount": "1"}
    (digest, onprem_columns), (cloud_digest, cloud_columns) = (
        hasher.hash_and_digests(onprem_row),
        hasher.hash_and_digests(cloud_row),
    )
    key, value = onprem(pk, digest.digest, column_digests=onprem_columns)
    pipeline.send_onprem((key, value))
    cloud_doc = {"pk": pk, "hash_cloud": cloud_digest.digest, "cloud_ts": now_ms() + 5, "column_digests": cloud_columns}
    pipeline.send_cloud((pk.encode(), orjson.dumps(cloud_doc)))
    [record] = pipeline.wait_audit(pk)
    assert record["status"] == "MISMATCH" and record["differing_columns"] == ["name"], record
    pipeline._wait(
        lambda out: any(r["pk"] == pk for r in out.repairs),
        30,
        lambda out: f"a repair request for {pk}",
    )
    [repair] = [r for r in pipeline.reader.outputs.repairs if r["pk"] == pk]
    assert repair["differing_columns"] == ["name"] and repair["repair"] == "resync"
    status, view = call(pipeline, f"/dq/pairs/{pk}")
    assert status == 200 and view["differing_columns"] == ["name"], view
    assert view["onprem"]["column_digests"] == onprem_columns and view["cloud"]["column_digests"] == cloud_columns
    listed(
        pipeline,
        "/dq/mismatches?limit=500",
        lambda items: any(item["pk"] == pk and item["differing_columns"] == ["name"] for item in items),
    )


def test_status_reports_lag_and_backpressure_under_a_backlog_and_none_once_caught_up(pipeline):
    import time

    # DELETEs: processed like any event, and no problem to crowd the other tests' mismatch listings
    records = [onprem(f"lag-{pipeline.pk()}-{i}", None, action="DELETE") for i in range(40_000)]
    pipeline.send_onprem(*records)
    deadline, seen = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        status, body = call(pipeline, "/dq/status")
        assert status == 200, body
        if body["lag_records"] > 0:
            seen = body
            break
    assert seen is not None, "no lag seen while a 40,000-record backlog was processed"
    (pipeline.workdir / "status-under-backlog.json").write_bytes(orjson.dumps(seen, option=orjson.OPT_INDENT_2))
    [worker] = seen["workers"]
    behind = [lag for lag in worker["lag"] if lag["records"]]
    assert behind and all(
        lag["topic"] in (pipeline.settings.onprem_topic, pipeline.settings.rekey_topic) for lag in behind
    )
    assert set(worker["backpressure"]["taps"]) >= {pipeline.settings.onprem_topic, pipeline.settings.cloud_topic}
    deadline = time.monotonic() + 120
    while True:
        status, body = call(pipeline, "/dq/status")
        if body["lag_records"] == 0 and body["lag_seconds_max"] == 0:
            break
        assert time.monotonic() < deadline, f"the backlog did not drain: {body}"
        time.sleep(0.2)  # polling the view: the drain has no event to await
    pipeline.wait_statsd(lambda line: line.startswith("dq_kafka_lag:"))


def test_mismatches_are_acknowledged_resolved_reopened_and_their_triage_survives_a_restart(pipeline, tmp_path):
    """And so do the mismatch list and the DLQ view: a restarted worker reads the repair and DLQ topics again, and
    replays a DLQ id it never saw produced."""
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h("different")))
    [first] = pipeline.wait_audit(pk)
    audit_id = first["audit_id"]
    listed(pipeline, "/dq/mismatches?limit=500", lambda items: any(i["audit_id"] == audit_id for i in items))
    body = orjson.dumps({"who": "ana", "note": "resync queued"})
    assert call(pipeline, f"/dq/mismatches/{audit_id}/ack", body, token=None)[0] == 401
    assert call(pipeline, f"/dq/mismatches/{audit_id}/ack", body, token="wrong")[0] == 403
    assert call(pipeline, f"/dq/mismatches/{audit_id}/ack", b'{"note": "unsigned"}')[0] == 400
    status, acked = call(pipeline, f"/dq/mismatches/{audit_id}/ack", body)
    assert status == 200 and acked["state"] == "acknowledged" and acked["pk"] == pk, acked
    status, acknowledged = call(pipeline, "/dq/mismatches?state=acknowledged&limit=500")
    assert [i["triage"]["who"] for i in acknowledged["items"] if i["audit_id"] == audit_id] == ["ana"]
    status, resolved = call(pipeline, f"/dq/mismatches/{audit_id}/resolve", orjson.dumps({"who": "bo"}))
    assert status == 200 and resolved["state"] == "resolved"
    # the problem recurs: a newer event of the pk mismatches again, and the resolved one is open again
    pipeline.send_onprem(onprem(pk, h(pk + "-2"), ts=now_ms() + 1_000))
    pipeline.send_cloud(cloud(pk, h("different again"), ts=now_ms() + 2_000))
    pipeline.wait_audit(pk, count=2)
    open_items = listed(
        pipeline, "/dq/mismatches?state=open&limit=500", lambda items: sum(i["pk"] == pk for i in items) == 2
    )
    mine = {i["audit_id"]: i["triage"] for i in open_items["items"] if i["pk"] == pk}
    assert mine[audit_id]["reopened"] is True and len(mine) == 2, mine
    marker = pipeline.pk()
    pipeline.send_onprem((marker.encode(), b"{broken before the restart"))
    listed(pipeline, "/dq/dlq?limit=500", lambda items: any(e["key"] == marker for e in items))
    # durable: a restarted worker reads the triage, repair and DLQ topics again
    pipeline.restart_worker(wipe_state=False)
    pipeline.wait_web(0)
    again = listed(pipeline, "/dq/mismatches?limit=500", lambda items: sum(i["pk"] == pk for i in items) == 2)
    assert audit_id in {i["audit_id"] for i in again["items"]}
    dead = listed(pipeline, "/dq/dlq?limit=500", lambda items: any(e["key"] == marker for e in items))
    [entry] = [e for e in dead["items"] if e["key"] == marker]
    status, replay = call(pipeline, "/dq/dlq/replay", orjson.dumps({"ids": [entry["id"]]}))
    assert status == 200 and replay["replayed"] == [{"id": entry["id"], "topic": pipeline.settings.onprem_topic}]
    deadline = time.monotonic() + 30
    while (found := call(pipeline, f"/dq/triage/{audit_id}"))[0] != 200:
        assert time.monotonic() < deadline, f"no triage record after the restart: {found}"
        time.sleep(0.2)  # polling: the restarted worker re-reads the topic in its own time
    assert found[1]["state"] == "resolved" and found[1]["who"] == "bo"


def test_the_dashboards_key_lookup_shows_both_sides_in_headless_chromium(pipeline, tmp_path):
    browser = chromium()
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    pipeline.wait_audit(pk)
    dom = dump_dom(browser, pipeline, tmp_path, f"/#pk={urllib.parse.quote(pk)}")
    pair = dom.split('id="pair"', 1)[1].split("<h2", 1)[0]
    assert f"pk {pk}" in pair and f"v2:{h(pk)}" in pair and "MATCH" in pair, pair[:800]
    assert "verdict history" in pair and 'id="lag"' in dom and "dead letters" not in pair


def test_an_operator_acts_from_the_dashboard_in_headless_chromium(pipeline, tmp_path):
    """Over the DevTools protocol, as an operator would: a problem's pk opens its pair view, acknowledging asks
    for the token in the page (no blocking prompt) and records who did it, the partitions table names each
    partition's owner, the chart has a count axis and a time axis; a screenshot is kept to look at."""
    import asyncio

    from tests.e2e.browser import Browser

    executable = chromium()
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h("different")))
    [verdict] = pipeline.wait_audit(pk)
    audit_id = verdict["audit_id"]
    listed(pipeline, "/dq/mismatches?limit=500", lambda items: any(i["audit_id"] == audit_id for i in items))
    url = f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}/"
    button = f'document.querySelector(\'button[data-action="ack"][data-audit-id="{audit_id}"]\')'

    async def operate() -> dict:
        async with Browser(executable, tmp_path / "profile") as page:
            await page.navigate(url)
            await page.evaluate("document.getElementById('triage-filter').value = 'open'; refresh(); true")
            await page.wait_for(f"!!{button}", what=f"an acknowledge button for {audit_id}")
            seen = {
                "axis": await page.evaluate("[...document.querySelectorAll('#chart text')].map(t => t.textContent)"),
                "partitions": await page.wait_for(
                    "document.querySelectorAll('#partitions tr td:nth-child(3)').length", what="the partitions table"
                ),
                "owners": await page.evaluate(
                    "[...document.querySelectorAll('#partitions tr td:nth-child(3)')].map(t => t.textContent)"
                ),
                "tooltips": await page.evaluate("document.querySelectorAll('#chart rect title').length"),
            }
            await page.evaluate(
                f"[...document.querySelectorAll('#mismatches a')].find(a => a.textContent === {orjson.dumps(pk).decode()}).click()"
            )
            seen["pair"] = await page.wait_for(
                f"document.getElementById('pair').textContent.includes('pk ' + {orjson.dumps(pk).decode()})"
                " && document.getElementById('pair').textContent",
                what="the pair view of the clicked pk",
            )
            await page.evaluate("document.getElementById('who').value = 'cdp-operator'; true")
            await page.evaluate(f"{button}.click()")
            seen["token_asked"] = await page.wait_for(
                "getComputedStyle(document.getElementById('token-form')).display === 'block'", what="the token form"
            )
            await page.evaluate(
                f"document.getElementById('token').value = {orjson.dumps(WEB_TOKEN).decode()};"
                "document.getElementById('token-form').requestSubmit(); true"
            )
            await page.evaluate(f"{button}.click()")
            await page.wait_for(f"!{button}", what="the acknowledge button gone once the problem is acknowledged")
            await page.screenshot(pipeline.workdir / "dashboard-operator.png")
            # a worker that does not answer (the group's views name it): the page's own rendering of that answer
            seen["banner"] = await page.evaluate(
                "banner(['http://worker-2:6066'], {workers: [{worker: 'http://worker-1:6066', readiness: "
                "{ready: false, reasons: ['ownership lease lapsed']}}]});"
                "getComputedStyle(document.getElementById('banner')).display === 'block'"
                " && document.getElementById('banner').textContent"
            )
            return seen

    seen = asyncio.run(operate())
    status, record = call(pipeline, f"/dq/triage/{audit_id}")
    assert status == 200 and record["state"] == "acknowledged" and record["who"] == "cdp-operator", record
    assert seen["token_asked"] is True
    assert "Not answering: http://worker-2:6066" in seen["banner"] and "ownership lease lapsed" in seen["banner"]
    assert f"pk {pk}" in seen["pair"] and "columns that differ" in seen["pair"]
    assert "verdicts" in seen["axis"] and "100%" in seen["axis"] and any(":" in t for t in seen["axis"]), seen["axis"]
    assert seen["tooltips"] > 0 and seen["partitions"] >= 4
    assert all(owner.startswith("http://") for owner in seen["owners"]), seen["owners"]
    assert (pipeline.workdir / "dashboard-operator.png").stat().st_size > 10_000
