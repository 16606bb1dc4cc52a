"""Topic-1 / Topic-2 in Confluent's wire format: schemas fetched from the Schema Registry's REST API, cached.

A batch's unknown schema ids are fetched together, before the batch is processed, with aiohttp (never a
blocking call on the event loop, never one per record): ``GET <url>/schemas/ids/<id>``. A schema id never
changes its schema, so each is fetched once. An Avro body is read with fastavro's ``schemaless_reader``; a
JSON Schema body is the JSON itself. Each decoded record's value becomes the contract's JSON
(``dqhash.core.wire.plain``). A record that cannot be decoded keeps its bytes and gets reason headers, and
the engine dead-letters it: ``SCHEMA_NOT_FOUND`` (the registry answered 404), ``REGISTRY_UNAVAILABLE``
(no answer within the retries; an id that failed is asked again at most every ``RETRY_AFTER_S``) or
``UNDECODABLE``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import fastavro
import orjson

from dqhash.core.avro_connect import connect_payload, connect_schema, plain_schema
from dqhash.core.input_records import Reason, Rejection
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, Input
from dqhash.core.tuples import build
from dqhash.core.wire import DECODE_MESSAGE, DECODE_REASON, DECODED_FROM, is_framed, plain, split_frame
from dqhash.settings import Settings

log = logging.getLogger(__name__)

#: an id the registry did not know, or did not answer for, is asked again after this long
RETRY_AFTER_S = 30.0


class Schema:
    """A fetched schema: Avro (parsed for fastavro) or JSON Schema (the body is JSON)."""

    __slots__ = ("kind", "parsed", "source", "_connect")

    def __init__(self, kind: str, parsed: Any, source: Any = None) -> None:
        self.kind, self.parsed, self.source = kind, parsed, source
        self._connect: tuple[Any, dict[str, Any]] | None = None

    def connect(self) -> tuple[Any, dict[str, Any]]:
        """(the schema parsed without logical types, its Connect schema): a Debezium record read as Connect wrote
        it (``core.avro_connect``), built once per schema."""
        if self._connect is None:
            self._connect = (fastavro.parse_schema(plain_schema(self.source)), connect_schema(self.source))
        return self._connect


class SchemaRegistry:
    def __init__(
        self, url: str, username: str = "", password: str = "", timeout_s: float = 2.0, retries: int = 3
    ) -> None:
        self.url = url.rstrip("/")
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {credentials}"} if username else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.schemas: dict[int, Schema] = {}
        #: id → (reason, message, monotonic time it failed)
        self.failed: dict[int, tuple[str, str, float]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, ids: set[int]) -> None:
        """Fetch every id not cached (and not failed recently), together."""
        now = time.monotonic()
        wanted = [
            i
            for i in ids
            if i not in self.schemas and (i not in self.failed or now - self.failed[i][2] > RETRY_AFTER_S)
        ]
        if wanted:
            await asyncio.gather(*(self._fetch(i) for i in wanted))

    async def _fetch(self, schema_id: int) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            try:
                async with self._session.get(f"{self.url}/schemas/ids/{schema_id}") as response:
                    if response.status == 404:
                        self._fail(schema_id, Reason.SCHEMA_NOT_FOUND, f"the registry has no schema id {schema_id}")
                        return
                    if response.status in (401, 403):
                        self._fail(
                            schema_id,
                            Reason.REGISTRY_UNAVAILABLE,
                            f"the registry refused dqhash ({response.status}): check DQHASH_SCHEMA_REGISTRY_USERNAME "
                            "and _PASSWORD",
                        )
                        return
                    if response.status != 200:
                        last = f"the registry answered {response.status}"
                        continue
                    doc = orjson.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            try:
                self.schemas[schema_id] = _parse(doc)
                self.failed.pop(schema_id, None)
            except (ValueError, KeyError, TypeError, fastavro.schema.SchemaParseException) as exc:
                self._fail(schema_id, Reason.UNDECODABLE, f"schema id {schema_id} cannot be read: {exc}")
            return
        self._fail(
            schema_id,
            Reason.REGISTRY_UNAVAILABLE,
            f"schema id {schema_id}: {last} ({self.retries + 1} tries); is DQHASH_SCHEMA_REGISTRY_URL={self.url} "
            "right and the registry up? The records are dead-lettered with reason REGISTRY_UNAVAILABLE: replay them "
            "once it answers",
        )

    def _fail(self, schema_id: int, reason: Reason, message: str) -> None:
        log.warning("schema registry: %s", message)
        self.failed[schema_id] = (reason.value, message, time.monotonic())

    async def decode(self, inputs: list[Input]) -> list[Input]:
        """The batch with its wire-format Topic-1 / Topic-2 values decoded, or marked with why not."""
        framed = [i for i in inputs if i.source in (SOURCE_ONPREM, SOURCE_CLOUD) and is_framed(i.value)]
        if not framed:
            return inputs
        frames = {id(i): split_frame(i.value) for i in framed}  # type: ignore[arg-type]
        await self.fetch({frame[0] for frame in frames.values() if frame is not None})
        out = []
        for record in inputs:
            if id(record) not in frames:
                out.append(record)
                continue
            out.append(self._decoded(record, frames[id(record)]))
        return out

    def _decoded(self, record: Input, frame: tuple[int, bytes] | None) -> Input:
        if frame is None:
            return _marked(record, Reason.UNDECODABLE.value, "a zero first byte, but too short for the wire format")
        schema_id, body = frame
        schema = self.schemas.get(schema_id)
        if schema is None:
            reason, message, _ = self.failed.get(schema_id, (Reason.REGISTRY_UNAVAILABLE.value, "no schema", 0.0))
            return _marked(record, reason, message)
        try:
            if schema.kind == "AVRO":
                value = orjson.dumps(plain(fastavro.schemaless_reader(io.BytesIO(body), schema.parsed)))
            else:
                orjson.loads(body)  # JSON Schema: the body is the document
                value = body
        except Exception as exc:  # any way a body fails to decode is the record's, not the worker's
            return _marked(record, Reason.UNDECODABLE.value, f"schema id {schema_id}: {type(exc).__name__}: {exc}")
        headers = [*(record.headers or ()), (DECODED_FROM, str(schema_id).encode())]
        return build(Input, (*record[:5], value, headers, record.timestamp_ms))

    def connect_record(self, raw: bytes) -> Any:
        """A wire-format key or value of a Debezium change topic as the JSON converter would have written it
        (``{"schema", "payload"}``; a JSON Schema body as its JSON), or the :class:`Rejection` saying why not.
        Its schema must have been fetched (:meth:`fetch`)."""
        frame = split_frame(raw)
        if frame is None:
            return Rejection(Reason.UNDECODABLE, "a zero first byte, but too short for the wire format")
        schema_id, body = frame
        schema = self.schemas.get(schema_id)
        if schema is None:
            reason, message, _ = self.failed.get(schema_id, (Reason.REGISTRY_UNAVAILABLE.value, "no schema", 0.0))
            return Rejection(Reason(reason), message)
        try:
            if schema.kind != "AVRO":
                return orjson.loads(body)
            parsed, connect = schema.connect()
            payload = connect_payload(fastavro.schemaless_reader(io.BytesIO(body), parsed))
        except Exception as exc:  # any way a body fails to decode is the record's, not the worker's
            return Rejection(Reason.UNDECODABLE, f"schema id {schema_id}: {type(exc).__name__}: {exc}"[:500])
        return {"schema": connect, "payload": payload}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _parse(doc: dict[str, Any]) -> Schema:
    kind = doc.get("schemaType", "AVRO")
    if kind == "AVRO":
        source = orjson.loads(doc["schema"])
        return Schema("AVRO", fastavro.parse_schema(source), source)
    if kind == "JSON":
        return Schema("JSON", None)
    raise ValueError(f"{kind} schemas are not read by dqhash (Avro and JSON Schema are)")


def _marked(record: Input, reason: str, message: str) -> Input:
    headers: Sequence[tuple[str, bytes]] = [
        *(record.headers or ()),
        (DECODE_REASON, reason.encode()),
        (DECODE_MESSAGE, message.encode()),
    ]
    return build(Input, (*record[:6], headers, record.timestamp_ms))


def from_settings(settings: Settings) -> SchemaRegistry | None:
    if not settings.schema_registry_url:
        return None
    return SchemaRegistry(
        settings.schema_registry_url,
        settings.schema_registry_username,
        settings.schema_registry_password.reveal(),
        settings.schema_registry_timeout_s,
        settings.schema_registry_retries,
    )
