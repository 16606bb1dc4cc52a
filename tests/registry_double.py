"""A loopback HTTP server answering the Confluent Schema Registry's REST API for the endpoint dqhash uses.

It is not the registry: it serves ``GET /schemas/ids/{id}`` (``{"schema": "...", "schemaType": ...}``; 404 with
error code 40403 for an unknown id), can require basic auth, and can be switched "down" (503) to test the
retries. Records are encoded by fastavro's ``schemaless_writer`` behind the wire format's 5-byte header.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

import fastavro
from aiohttp import web


class RegistryDouble:
    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.schemas: dict[int, dict] = {}
        self.auth = auth
        self.down = False
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> RegistryDouble:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/schemas/ids/{id}", self._schema)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _schema(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.json_response({"error_code": 40101, "message": "Unauthorized"}, status=401)
        if self.down:
            return web.json_response({"error_code": 50003, "message": "Error while forwarding"}, status=503)
        found = self.schemas.get(int(request.match_info["id"]))
        if found is None:
            return web.json_response({"error_code": 40403, "message": "Schema not found"}, status=404)
        return web.json_response(found)

    def register_avro(self, schema_id: int, schema: dict) -> None:
        self.schemas[schema_id] = {"schema": json.dumps(schema)}  # no schemaType: Avro, as the registry answers

    def register_json(self, schema_id: int, schema: dict) -> None:
        self.schemas[schema_id] = {"schema": json.dumps(schema), "schemaType": "JSON"}

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def avro(schema_id: int, schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return framed(schema_id, out.getvalue())


ONPREM_SCHEMA = {
    "type": "record",
    "name": "OnPremChange",
    "namespace": "dqhash.test",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "hash_onprem", "type": ["null", "string"], "default": None},
        {
            "name": "partitionColumns",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Column",
                    "fields": [{"name": "type", "type": "string"}, {"name": "value", "type": "string"}],
                },
            },
        },
        {"name": "event_ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {
            "name": "action",
            "type": {"type": "enum", "name": "Action", "symbols": ["CREATE", "UPDATE", "UPSERT", "DELETE"]},
        },
    ],
}
CLOUD_SCHEMA = {
    "type": "record",
    "name": "CloudHash",
    "namespace": "dqhash.test",
    "fields": [
        {"name": "pk", "type": "string"},
        {"name": "hash_cloud", "type": ["null", "string"]},
        {"name": "cloud_ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
