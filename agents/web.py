"""Table-inspection web views on every worker (shapes: docs/web.md; logic: dqhash/ops/inspection.py).

The views are declared at module level on a Faust blueprint, as Faust's own are; what they read (the table,
the window book, the recent outputs, the triage book, the status collector) is the worker's :class:`WebContext`,
which :func:`register` puts on the app.

``/dq/pairs/{pk}`` is answered by the worker that owns the pk's partition
(Faust table routing forwards the request). The list views gather from every
worker of the group (each holds only its own partitions) and say which
workers did not answer. During a rebalance, views answer 503 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

import aiohttp
import orjson
from faust.web import Blueprint, Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from dqhash.agents.web_group import GroupReads
from dqhash.core.codec import decode_state
from dqhash.core.partitioning import partition_for
from dqhash.core.snapshot_report import build_report, summaries
from dqhash.core.timeutil import now_ms
from dqhash.internals import rocksdb_memory
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.kafka.topic_reader import follow as follow_topic
from dqhash.kafka.triage_log import follow
from dqhash.ops import access, inspection, legend, status, table_views, triage
from dqhash.ops.memory import process_memory

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.web")

RETRY_AFTER_S = 5


blueprint = Blueprint("dqhash")


class WebContext(GroupReads):
    """What the views of one worker read, and the helpers they share: peers and gathering (``GroupReads``),
    listings."""

    def __init__(self, runtime: Runtime) -> None:
        self.app, self.settings = runtime.app, runtime.settings
        self.pairs = runtime.parts["pairs"]
        self.book = runtime.parts["reconciler"].reconciler.windows
        #: each table's verified-through time on this worker's partitions, and the group's as last gathered
        self.verified = runtime.parts["reconciler"].reconciler.verified
        self.parts = runtime.parts
        #: the group's newest problems and dead letters, followed from the repair and DLQ topics
        self.recent = inspection.RecentOutputs(self.settings.view_max_items)
        self.output_topic = runtime.outputs.output_topic
        self.collector = runtime.parts["status"]
        self.triage_book = triage.TriageBook()
        #: the tables the views list (docs/catalog.md)
        self.catalog = self.settings.catalog
        self._snapshot_cache: tuple[float, list[dict]] | None = None

    def busy(self) -> bool:
        return bool(self.app.rebalancing or getattr(self.app, "in_recovery", False))

    def listing(
        self,
        view: _Json,
        request: Request,
        items: list[dict],
        sort_key: str | None,
        transform: Callable[[list[dict]], list[dict]] | None = None,
    ) -> Response:
        """A list of the group's items (every worker follows the same topics, so none is asked): newest first,
        filtered and paged."""
        try:
            limit, offset = inspection.parse_paging(request.query)
        except inspection.BadRequest as exc:
            return view.problem(400, str(exc))
        items = items[::-1]
        if sort_key:
            items.sort(key=lambda item: item[sort_key], reverse=True)
        if transform is not None:
            items = transform(items)
        return view.ok({**inspection.page(items, limit, offset), "unreachable_workers": []})

    async def snapshot_records(self) -> list[dict]:
        """The snapshots topic, read whole at most once a second however many views ask."""
        loop = asyncio.get_running_loop()
        cached = self._snapshot_cache
        if cached is None or loop.time() - cached[0] > 1.0:
            cached = self._snapshot_cache = (loop.time(), await read_snapshot_records(self.settings))
        return cached[1]

    async def follow_triage(self) -> None:
        """Every worker follows the triage topic: any of them answers for the group, after any restart."""
        await follow(self.settings, self.triage_book.apply)

    async def follow_outputs(self) -> None:
        """Every worker follows the repair and DLQ topics from DQHASH_VIEW_HISTORY_SECONDS back: the problem and
        dead-letter views answer for the group, and survive a restart (a replay finds an old DLQ id)."""
        settings, recent = self.settings, self.recent
        since = now_ms() - settings.view_history_ms
        await asyncio.gather(
            follow_topic(settings, settings.repair_topic, since, lambda r: recent.saw_repair(r.value)),
            follow_topic(
                settings, settings.dlq_topic, since, lambda r: recent.saw_dead_letter(r.key, r.value, r.headers)
            ),
        )


class _Json(View):
    @property
    def ctx(self) -> WebContext:
        context: WebContext = self.app.dqhash_web
        return context

    async def dispatch(self, request: Request) -> Response:
        """Every JSON view, before its handler: a request that changes state needs the web token, and so does a
        read when DQHASH_WEB_TOKEN_READS is set (dqhash.ops.access). One gate, so a new view cannot miss it."""
        settings = self.app.dqhash_settings
        refused = access.refusal(
            request.headers.get("Authorization"),
            settings.web_token,
            changes_state=request.method not in ("GET", "HEAD"),
            reads_need_token=settings.web_token_reads,
        )
        if refused is None:
            return await super().dispatch(request)
        status, message = refused
        log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote, message)
        response = self.problem(status, message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="dqhash"'
        return response

    def ok(self, body: object, status: int = 200, headers: dict | None = None) -> Response:
        return self.bytes(orjson.dumps(body), content_type="application/json", status=status, headers=headers)

    def problem(self, status: int, message: str) -> Response:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        return self.ok({"error": message, "status": status}, status, headers)

    def unavailable(self) -> Response:
        return self.problem(503, f"partitions are being rebalanced or recovered; retry in {RETRY_AFTER_S} s")


@blueprint.route("/dq/memory")
class MemoryView(_Json):
    """Where this worker's memory is, in bytes (docs/performance.md, "Where the memory goes"): the process's parts
    and RocksDB's, with the one bound RocksDB keeps to (DQHASH_ROCKSDB_MEMORY_MB)."""

    async def get(self, request: Request) -> Response:
        return self.ok({**process_memory(), **rocksdb_memory.usage([self.ctx.pairs])})


@blueprint.route("/dq/pairs/{pk}")
class PairView(_Json):
    """Both sides of one pk as the tables hold them, its status and newest verdicts."""

    async def get(self, request: Request, pk: str) -> Response:
        """``?table=T``: the pk of that table (default: the catalog's default table)."""
        ctx = self.ctx
        if ctx.busy():  # first: a worker that answers anything else has its partitions
            return self.unavailable()
        try:
            pk = inspection.pair_key_of(inspection.parse_pk(pk), request.query.get("table"), ctx.catalog)
        except inspection.BadRequest as exc:
            return self.problem(400, str(exc))
        routed = await self._route(request, pk)
        if routed is not None:
            return routed
        raw = ctx.pairs.get(pk.encode())
        view = inspection.pair_view(
            pk,
            partition_for(pk, ctx.settings.partitions),
            decode_state(raw) if raw is not None else None,
            ctx.self_url(),
            ctx.catalog.default,
        )
        if raw is None:
            return self.ok({**view, "error": "no state held for this pk: never seen, or expired after retention"}, 404)
        return self.ok(view)

    async def _route(self, request: Request, pk: str) -> Response | None:
        """The owner's answer, when another worker owns the pk (Faust's table routing); None when this one does."""
        try:
            routed: Response = await self.app.router.route_req(self.ctx.pairs.name, pk.encode(), self.web, request)
            return routed
        except ServiceUnavailable:
            return self.unavailable()
        except TypeError:  # Faust's router before the producer knows the table's partitions (start-up)
            log.debug("pair view asked before the table's partitions are known", exc_info=True)
            return self.unavailable()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:  # the owner died or is unreachable
            log.warning("could not reach the owner of pk %r: %s", pk, exc)
            return self.problem(
                503,
                f"the worker owning this pk does not answer ({type(exc).__name__}); its "
                f"partitions move to another worker within the session timeout: retry in "
                f"{RETRY_AFTER_S} s",
            )
        except Exception as exc:
            if type(exc).__name__ != "SameNode":
                raise
            return None


@blueprint.route("/dq/windows")
class WindowsView(_Json):
    """Recent windows summed over all partitions: counts by status and match rate (newest first)."""

    async def get(self, request: Request) -> Response:
        try:
            limit, offset = inspection.parse_paging(request.query)
        except inspection.BadRequest as exc:
            return self.problem(400, str(exc))
        ctx = self.ctx
        local = ctx.local_windows()
        if request.query.get("local"):  # a peer asking: this worker's per-partition records, unsummed
            suspended, verified = ctx.book.caps.suspended_tables(), ctx.local_verified()
            body = {"items": local, "suspended": suspended, "verified": verified, "shortfalls": ctx.local_shortfalls()}
            return self.ok(body)
        group = await ctx.group_windows(local)
        table = request.query.get("table") or None
        rows = inspection.window_rows(group.records, ctx.settings.window_ms, ctx.catalog.default, table)
        return self.ok({**inspection.page(rows, limit, offset), "unreachable_workers": group.failed})


@blueprint.route("/dq/tables")
class TablesView(_Json):
    """Every table: its verdicts in the retained windows, match rate and open problems (worst first)."""

    async def get(self, request: Request) -> Response:
        try:
            limit, offset = inspection.parse_paging(request.query)
        except inspection.BadRequest as exc:
            return self.problem(400, str(exc))
        ctx = self.ctx
        (rows, _, failed), (answers, unreachable) = await asyncio.gather(
            ctx.group_tables(), ctx.gather("/dq/status?local=1")
        )
        lag = status.group_status(ctx.collector.collect(), answers, unreachable)
        body = {
            **inspection.page(rows, limit, offset),
            # every table is read from the same input partitions: their lag is every table's
            "lag_records": lag["lag_records"],
            "lag_seconds_max": lag["lag_seconds_max"],
            "unreachable_workers": sorted({*failed, *unreachable}),
        }
        return self.ok(body)


@blueprint.route("/dq/tables/{table}")
class TableView(_Json):
    """One table: its catalog entry, its row of /dq/tables, its windows and its newest problems."""

    async def get(self, request: Request, table: str) -> Response:
        ctx = self.ctx
        spec = ctx.catalog.get(table)
        rows, records, failed = await ctx.group_tables(table)
        row = next((r for r in rows if r["table"] == table), None)
        problems = [p for p in ctx.triage_book.annotate(list(ctx.recent.problems)) if p.get("table") == table]
        if spec is None and row is None:
            return self.problem(404, f"no table {table!r} in the catalog or the retained windows; see /dq/tables")
        windows = inspection.window_rows(records, ctx.settings.window_ms, ctx.catalog.default, table)
        body = {
            "table": table,
            "catalog": table_views.spec_view(spec),
            "summary": row,
            "windows": windows[: inspection.DEFAULT_LIMIT],
            "problems": problems[::-1][: inspection.DEFAULT_LIMIT],
            "unreachable_workers": failed,
        }
        return self.ok(body)


@blueprint.route("/dq/mismatches")
class MismatchesView(_Json):
    """The group's newest confirmed problems (newest first, from the repair topic) with their triage;
    ``?state=open|acknowledged|resolved`` filters."""

    async def get(self, request: Request) -> Response:
        try:
            state = triage.check_state(request.query.get("state"))
        except triage.TriageError as exc:
            return self.problem(400, str(exc))
        ctx = self.ctx

        table = request.query.get("table") or None

        def annotated(items: list[dict]) -> list[dict]:
            return [
                item
                for item in ctx.triage_book.annotate(items)
                if triage.matches(item, state) and (table is None or item.get("table") == table)
            ]

        return ctx.listing(self, request, list(ctx.recent.problems), "classified_at", annotated)


@blueprint.route("/dq/triage/{audit_id}")
class TriageRecordView(_Json):
    """An audit id's triage record, as every worker follows it from the triage topic (404: none)."""

    async def get(self, request: Request, audit_id: str) -> Response:
        found = self.ctx.triage_book.records.get(audit_id)
        return self.ok(found) if found else self.problem(404, f"no triage record for {audit_id[:40]!r}")


@blueprint.route("/dq/mismatches/{audit_id}/{action}")
class TriageView(_Json):
    """POST ``{"who": "...", "note": "..."}`` to ``.../ack`` or ``.../resolve`` (needs the web token)."""

    async def post(self, request: Request, audit_id: str, action: str) -> Response:
        try:
            triage.check_audit_id(audit_id)
            if action not in triage.ACTIONS:
                raise triage.TriageError(f"unknown action {action[:20]!r}: ack or resolve")
            who, note = triage.parse_body(await request.read())
        except triage.TriageError as exc:
            return self.problem(400, str(exc))
        ctx = self.ctx
        problem = next((p for p in ctx.recent.problems if p["audit_id"] == audit_id), None)
        entry = triage.record(audit_id, action, who, note, now_ms(), problem)
        await ctx.output_topic(ctx.settings.triage_topic).send(key=audit_id.encode(), value=orjson.dumps(entry))
        ctx.triage_book.apply(entry, audit_id)
        log.info("mismatch %s %s by %s", audit_id, entry["state"], who)
        return self.ok(entry)


@blueprint.route("/dq/dlq")
class DeadLettersView(_Json):
    """The newest dead-lettered records with their reasons (newest first); ids are what replay takes."""

    async def get(self, request: Request) -> Response:
        entries = [inspection.public(e) for e in self.ctx.recent.dead_letters]
        return self.ctx.listing(self, request, entries, None)


@blueprint.route("/dq/dlq/replay")
class ReplayView(_Json):
    """POST {"ids": [...]}: re-inject those DLQ records into their source topics, marked as replays."""

    async def post(self, request: Request) -> Response:
        try:
            ids = inspection.parse_replay_ids(await request.read())
        except inspection.BadRequest as exc:
            return self.problem(400, str(exc))
        replayed, missing = await self._replay(ids)
        if replayed:
            log.info("replayed %d DLQ record(s) on request: %s", len(replayed), [r["id"] for r in replayed])
        return self.ok({"replayed": replayed, "not_found": missing})

    async def _replay(self, ids: list[str]) -> tuple[list[dict], list[str]]:
        """Replays the ids the DLQ view holds (every worker follows the whole DLQ topic); returns what it replayed
        and the ids it does not hold."""
        ctx = self.ctx
        settings = ctx.settings
        replayed, missing = [], []
        for dlq_id in ids:
            entry = ctx.recent.find_dead_letter(dlq_id)
            if entry is None:
                missing.append(dlq_id)
                continue
            topic = inspection.replay_target(entry, settings.onprem_topic, settings.cloud_topic, settings.rekey_topic)
            await ctx.output_topic(topic).send(
                key=entry["_key"], value=entry["_value"], headers=inspection.replay_headers(entry)
            )
            replayed.append({"id": dlq_id, "topic": topic})
        return replayed, missing


@blueprint.route("/dq/snapshots")
class SnapshotsView(_Json):
    """Every snapshot run, newest first: state, rows on each side, counts by status (docs/snapshots.md)."""

    async def get(self, request: Request) -> Response:
        try:
            records = await self.ctx.snapshot_records()
        except Exception as exc:
            return self.problem(503, f"cannot read the snapshots topic: {type(exc).__name__}: {exc}")
        return self.ok({"items": summaries(records, self.ctx.settings.partitions, now_ms())})


@blueprint.route("/dq/snapshots/{snapshot_id}")
class SnapshotView(_Json):
    """One run's report: rows per side, counts by status, per partition and token range, progress."""

    async def get(self, request: Request, snapshot_id: str) -> Response:
        try:
            records = await self.ctx.snapshot_records()
        except Exception as exc:
            return self.problem(503, f"cannot read the snapshots topic: {type(exc).__name__}: {exc}")
        if not any(r.get("snapshot_id") == snapshot_id for r in records):
            return self.problem(404, f"no records of snapshot {snapshot_id!r}")
        return self.ok(build_report(records, snapshot_id, self.ctx.settings.partitions, now_ms()))


@blueprint.route("/dq/status")
class StatusView(_Json):
    """Lag per input partition and backpressure, from every worker, and every table in brief (docs/web.md)."""

    async def get(self, request: Request) -> Response:
        ctx = self.ctx
        mine = ctx.collector.collect()
        if request.query.get("local"):
            return self.ok(mine)
        (answers, failed), (rows, _, _) = await asyncio.gather(ctx.gather("/dq/status?local=1"), ctx.group_tables())
        body = status.group_status(mine, answers, failed)
        body["tables"] = [table_views.brief(row) for row in rows]  # each in full: /dq/tables/{table}
        return self.ok(body)


@blueprint.route("/dq/statuses")
class StatusesView(_Json):
    """Every status, its group and colour on the dashboard, and what the tiles sum (``dqhash.ops.legend``)."""

    async def get(self, request: Request) -> Response:
        return self.ok(legend.legend())


@blueprint.route("/")
class Dashboard(View):
    """A self-refreshing page: match rate and counts per window, newest mismatches (no build step); its legend
    is filled in from the status declaration."""

    async def get(self, request: Request) -> Response:
        template = resources.files("dqhash.ops").joinpath("dashboard.html").read_text()
        return self.html(legend.dashboard_page(template))


def register(runtime: Runtime) -> WebContext:
    """The views, on the runtime's app (the reconciler's role: they read its table)."""
    context = runtime.app.dqhash_web = WebContext(runtime)
    runtime.app.task(context.follow_triage)
    runtime.app.task(context.follow_outputs)
    blueprint.register(runtime.app)
    return context
