"""The second test broker: librdkafka's mock cluster (inside the confluent-kafka wheel), with fault injection.

It is an independent implementation of the Kafka protocol, by librdkafka's authors, and it answers
ListOffsets correctly, so it runs Faust's stock ``kafka://`` recovery path (docs/brokers.md). Two gaps are
closed here, in front of it, by a loopback relay per mock broker:

- it serves no CreateTopics and reports no controller, so no admin client (dqhash's ``topics create``,
  Faust's own topic declaration) can create a topic. The relay advertises CreateTopics in ApiVersions,
  answers it by creating the topic through the mock's C API, and names the first broker as controller
  in Metadata answers;
- clients must reach every broker through its relay, so Metadata answers carry the relays' ports;
- its group coordinator completes a rebalance as soon as the leader's SyncGroup brings every member's
  assignment, and then refuses a follower's SyncGroup that comes after it (INVALID_REQUEST: a real
  broker answers it with the assignment). aiokafka does not retry that, so the follower drops out of the
  group. The relay holds a leader's SyncGroup until the followers' of the same generation have gone
  through (bounded), the order in which the mock expects them;
- it has no SASL. With ``sasl=(mechanism, user, password)`` the relay is the SASL server (PLAIN, SCRAM-SHA-256,
  SCRAM-SHA-512; RFC 4616 and RFC 5802): a client is served only after a real handshake with the right
  credentials, so a test sees every dqhash client authenticate.

Everything else passes through byte for byte. The mock's fault injection (``rd_kafka_mock_*``, an
experimental C API, hence the pinned confluent-kafka version in the test extras) is bound with ctypes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import glob
import hashlib
import hmac
import io
import logging
import os
import struct
from collections import deque
from dataclasses import dataclass

import confluent_kafka
from aiokafka.protocol import admin as admin_protocol
from aiokafka.protocol import metadata as metadata_protocol

log = logging.getLogger(__name__)

API_PRODUCE, API_FETCH, API_METADATA, API_OFFSET_COMMIT, API_HEARTBEAT = 0, 1, 3, 8, 12
API_SYNC_GROUP, API_SASL_HANDSHAKE, API_VERSIONS, API_CREATE_TOPICS, API_SASL_AUTHENTICATE = 14, 17, 18, 19, 36
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE = 58, 33, 34
#: how long the relay holds a leader's SyncGroup for its followers' (see ``_in_sync_order``)
SYNC_HOLD_S = 3.0
#: Kafka error codes the fault tests inject
NOT_LEADER_FOR_PARTITION, COORDINATOR_NOT_AVAILABLE, REBALANCE_IN_PROGRESS = 6, 15, 27
TOPIC_ALREADY_EXISTS = 36
#: the CreateTopics versions the relay answers (aiokafka's, none of them "flexible")
CREATE_TOPICS_VERSIONS = (0, 3)


def _library() -> ctypes.CDLL:
    folder = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
    found = glob.glob(os.path.join(folder, "librdkafka*.so*"))
    if not found:
        raise RuntimeError(f"no librdkafka in {folder}: is confluent-kafka installed from its wheel?")
    lib = ctypes.CDLL(found[0])
    p, i, i16, i32, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_int16, ctypes.c_int32, ctypes.c_char_p
    signatures = {
        "rd_kafka_conf_new": ([], p),
        "rd_kafka_conf_set": ([p, s, s, s, ctypes.c_size_t], i),
        "rd_kafka_new": ([i, p, s, ctypes.c_size_t], p),
        "rd_kafka_destroy": ([p], None),
        "rd_kafka_mock_cluster_new": ([p, i], p),
        "rd_kafka_mock_cluster_destroy": ([p], None),
        "rd_kafka_mock_cluster_bootstraps": ([p], s),
        "rd_kafka_mock_topic_create": ([p, s, i, i], i),
        "rd_kafka_mock_broker_set_down": ([p, i32], i),
        "rd_kafka_mock_broker_set_up": ([p, i32], i),
        "rd_kafka_mock_broker_set_rtt": ([p, i32, i], i),
        "rd_kafka_mock_clear_request_errors": ([p, i16], None),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
    lib.rd_kafka_mock_push_request_errors.restype = None  # variadic: (cluster, api key, count, error...)
    return lib


@dataclass
class _Broker:
    broker_id: int
    host: str
    port: int
    relay_port: int = 0


class MockCluster:
    """A mock cluster of ``brokers`` brokers, each behind a relay; ``bootstrap`` is the relays' addresses."""

    def __init__(self, brokers: int = 3, sasl: tuple[str, str, str] | None = None) -> None:
        #: (mechanism, user, password) a client must authenticate with, or None
        self.sasl = sasl
        #: (mechanism, user, succeeded) of every SASL authentication the relays answered
        self.authentications: list[tuple[str, str, bool]] = []
        self._lib = lib = _library()
        errors = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errors, len(errors))
        self._rk = lib.rd_kafka_new(1, conf, errors, len(errors))  # a consumer handle: it only hosts the cluster
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new failed: {errors.value.decode()}")
        self._cluster = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        addresses = lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode().split(",")
        self.brokers = []
        for broker_id, address in enumerate(addresses, start=1):
            host, port = address.rsplit(":", 1)
            self.brokers.append(_Broker(broker_id, host, int(port)))
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task] = set()
        self.topics_created: list[str] = []
        #: (group, generation) → members whose SyncGroup went through
        self._synced: dict[tuple[str, int], set[str]] = {}
        self._sync_seen: asyncio.Condition | None = None

    async def start(self) -> MockCluster:
        for broker in self.brokers:
            server = await asyncio.start_server(
                lambda r, w, b=broker: self._relay(r, w, b), "127.0.0.1", 0, reuse_address=True
            )
            broker.relay_port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        return self

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{b.relay_port}" for b in self.brokers)

    # --- the C API: topics and faults ------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int) -> int:
        error = self._lib.rd_kafka_mock_topic_create(self._cluster, name.encode(), partitions, 1)
        if error == 0:
            self.topics_created.append(name)
        return error

    def push_request_errors(self, api_key: int, *errors: int) -> None:
        """The next ``len(errors)`` requests of ``api_key`` (to any broker) fail with these error codes, in turn."""
        self._lib.rd_kafka_mock_push_request_errors(
            ctypes.c_void_p(self._cluster),
            ctypes.c_int16(api_key),
            ctypes.c_size_t(len(errors)),
            *(ctypes.c_int(e) for e in errors),
        )

    def set_down(self, broker_id: int) -> None:
        self._lib.rd_kafka_mock_broker_set_down(self._cluster, broker_id)

    def set_up(self, broker_id: int) -> None:
        self._lib.rd_kafka_mock_broker_set_up(self._cluster, broker_id)

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        self._lib.rd_kafka_mock_broker_set_rtt(self._cluster, broker_id, rtt_ms)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._cluster = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None

    # --- the relay -------------------------------------------------------------------------------------------

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, broker: _Broker) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(broker.host, broker.port)
        except OSError:
            writer.close()
            self._connections.discard(task)
            return
        #: per request in order: a future of its response frame (answered here, or by the broker)
        answers: deque[tuple[int, int, asyncio.Future]] = deque()
        forwarded: deque[asyncio.Future] = deque()
        ready = asyncio.Event()
        sasl = _SaslServer(self.sasl, self.authentications)

        async def from_client() -> None:
            while True:
                frame = await _read_frame(reader)
                api_key, api_version, correlation_id = struct.unpack(">hhi", frame[:8])
                answer = asyncio.get_running_loop().create_future()
                answers.append((api_key, api_version, answer))
                ready.set()
                if api_key in (API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE):
                    answer.set_result(sasl.answer(frame, api_key, correlation_id))
                    continue
                if sasl.required and not sasl.done and api_key != API_VERSIONS:
                    raise ConnectionError(f"api {api_key} before SASL authentication: connection closed")
                if api_key == API_CREATE_TOPICS:
                    answer.set_result(self._create_topics(frame, api_version, correlation_id))
                else:
                    if api_key == API_SYNC_GROUP and api_version <= 3:
                        await self._in_sync_order(frame, api_version)
                    forwarded.append(answer)
                    upstream_writer.write(struct.pack(">i", len(frame)) + frame)
                    await upstream_writer.drain()

        async def from_broker() -> None:
            while True:
                frame = await _read_frame(upstream_reader)
                forwarded.popleft().set_result(frame)

        async def to_client() -> None:
            while True:
                while not answers:
                    ready.clear()
                    await ready.wait()
                api_key, api_version, answer = answers[0]
                frame = await answer
                answers.popleft()
                try:
                    frame = self._rewrite(frame, api_key, api_version)
                except Exception:
                    log.exception("could not rewrite the answer to api %d v%d", api_key, api_version)
                    raise
                writer.write(struct.pack(">i", len(frame)) + frame)
                await writer.drain()

        pumps = [asyncio.ensure_future(p()) for p in (from_client, from_broker, to_client)]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the cluster is stopping
            pass
        finally:
            for pump in pumps:
                pump.cancel()
                if pump.done() and not pump.cancelled():
                    pump.exception()  # a closed connection or a refused request: retrieved, not logged as lost
            for w in (writer, upstream_writer):
                w.close()
            self._connections.discard(task)

    async def _in_sync_order(self, frame: bytes, version: int) -> None:
        """A follower's SyncGroup is recorded; a leader's (it carries the assignments) waits for its followers'."""
        data = io.BytesIO(frame[8:])
        _read_string(data)  # client id
        group = _read_string(data)
        (generation,) = struct.unpack(">i", data.read(4))
        member = _read_string(data)
        if version >= 3:
            _read_string(data)  # group instance id
        (count,) = struct.unpack(">i", data.read(4))
        followers = set()
        for _ in range(max(count, 0)):
            followers.add(_read_string(data))
            (size,) = struct.unpack(">i", data.read(4))
            data.read(max(size, 0))
        followers.discard(member)
        if self._sync_seen is None:
            self._sync_seen = asyncio.Condition()
        async with self._sync_seen:
            synced = self._synced.setdefault((group, generation), set())
            if followers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sync_seen.wait_for(lambda: followers <= synced), SYNC_HOLD_S)
            else:
                synced.add(member)
                self._sync_seen.notify_all()
        if followers:
            await asyncio.sleep(0.05)  # the followers' requests are written; let the mock read them first

    def _create_topics(self, frame: bytes, version: int, correlation_id: int) -> bytes:
        data = io.BytesIO(frame[8:])
        _read_string(data)  # client id
        request = getattr(admin_protocol, f"CreateTopicsRequest_v{version}").SCHEMA.decode(data)
        results = []
        for topic, partitions, _replication, _assignment, _configs in request[0]:
            error = self.create_topic(topic, partitions if partitions > 0 else 1)
            results.append((topic, TOPIC_ALREADY_EXISTS if error == TOPIC_ALREADY_EXISTS else error))
        response_class = getattr(admin_protocol, f"CreateTopicsResponse_v{version}")
        if version == 0:
            body = response_class(topic_errors=results)
        elif version == 1:
            body = response_class(topic_errors=[(t, e, None) for t, e in results])
        else:
            body = response_class(throttle_time_ms=0, topic_errors=[(t, e, None) for t, e in results])
        return struct.pack(">i", correlation_id) + body.encode()

    def _rewrite(self, frame: bytes, api_key: int, api_version: int) -> bytes:
        log.debug("response to api %d v%d", api_key, api_version)
        if api_key == API_VERSIONS and api_version <= 2:
            return frame[:4] + self._with_relay_apis(frame[4:], api_version)
        if api_key == API_METADATA and 1 <= api_version <= 5:
            return frame[:4] + self._through_relays(frame[4:], api_version)
        return frame

    def _with_relay_apis(self, body: bytes, version: int) -> bytes:
        response_class = getattr(admin_protocol, f"ApiVersionResponse_v{version}")
        fields = list(response_class.SCHEMA.decode(io.BytesIO(body)))
        added = {API_CREATE_TOPICS: CREATE_TOPICS_VERSIONS}
        if self.sasl:
            added.update({API_SASL_HANDSHAKE: (1, 1), API_SASL_AUTHENTICATE: (0, 0)})
        fields[1] = [api for api in fields[1] if api[0] not in added] + [(k, *v) for k, v in added.items()]
        return response_class.SCHEMA.encode(fields)

    def _through_relays(self, body: bytes, version: int) -> bytes:
        response_class = getattr(metadata_protocol, f"MetadataResponse_v{version}")
        fields = list(response_class.SCHEMA.decode(io.BytesIO(body)))
        names = list(response_class.SCHEMA.names)
        relays = {b.broker_id: b.relay_port for b in self.brokers}
        brokers_at = names.index("brokers")
        fields[brokers_at] = [
            (node_id, "127.0.0.1", relays.get(node_id, port), *rest)
            for node_id, _host, port, *rest in fields[brokers_at]
        ]
        controller_at = names.index("controller_id")
        if fields[controller_at] not in relays:  # the mock answers 0, no broker's id
            fields[controller_at] = self.brokers[0].broker_id
        return response_class.SCHEMA.encode(fields)


class _SaslServer:
    """One connection's SASL exchange (handshake v1, then SaslAuthenticate v0 frames)."""

    def __init__(self, credentials: tuple[str, str, str] | None, log_to: list) -> None:
        self.required = credentials is not None
        self.mechanism, self.user, self.password = credentials or ("", "", "")
        self.done = False
        self._log = log_to
        self._scram: dict | None = None

    def answer(self, frame: bytes, api_key: int, correlation_id: int) -> bytes:
        data = io.BytesIO(frame[8:])
        _read_string(data)  # client id
        if api_key == API_SASL_HANDSHAKE:
            mechanism = _read_string(data)
            error = 0 if mechanism == self.mechanism else UNSUPPORTED_SASL_MECHANISM
            body = admin_protocol.SaslHandShakeResponse_v1(error_code=error, enabled_mechanisms=[self.mechanism])
            return struct.pack(">i", correlation_id) + body.encode()
        (size,) = struct.unpack(">i", data.read(4))
        token = data.read(size)
        error, reply = self._step(token)
        body = admin_protocol.SaslAuthenticateResponse_v0(
            error_code=error, error_message="authentication failed" if error else None, sasl_auth_bytes=reply
        )
        return struct.pack(">i", correlation_id) + body.encode()

    def _step(self, token: bytes) -> tuple[int, bytes]:
        if self.mechanism == "PLAIN":
            _authzid, user, password = token.split(b"\0", 2)
            return self._finish(user.decode(), password.decode() == self.password, b"")
        if self._scram is None:  # client-first: "n,,n=user,r=nonce"
            bare = token.decode().split(",", 2)[2]
            fields = dict(part.split("=", 1) for part in bare.split(","))
            salt, nonce = os.urandom(16), fields["r"] + base64.b64encode(os.urandom(12)).decode()
            first = f"r={nonce},s={base64.b64encode(salt).decode()},i=4096"
            self._scram = {"bare": bare, "user": fields["n"], "salt": salt, "first": first, "nonce": nonce}
            return 0, first.encode()
        scram, digest = self._scram, "sha256" if self.mechanism == "SCRAM-SHA-256" else "sha512"
        final = token.decode()
        without_proof, proof = final.rsplit(",p=", 1)
        salted = hashlib.pbkdf2_hmac(digest, self.password.encode(), scram["salt"], 4096)
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        message = ",".join((scram["bare"], scram["first"], without_proof)).encode()
        signature = hmac.new(hashlib.new(digest, client_key).digest(), message, digest).digest()
        sent_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        ok = hmac.compare_digest(sent_key, client_key) and f"r={scram['nonce']}" in without_proof
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        verifier = base64.b64encode(hmac.new(server_key, message, digest).digest())
        return self._finish(scram["user"], ok, b"v=" + verifier)

    def _finish(self, user: str, ok: bool, reply: bytes) -> tuple[int, bytes]:
        ok = ok and user == self.user
        self._log.append((self.mechanism, user, ok))
        self.done = ok
        return (0, reply) if ok else (SASL_AUTHENTICATION_FAILED, b"")


def _read_string(data: io.BytesIO) -> str:
    (size,) = struct.unpack(">h", data.read(2))
    return data.read(size).decode() if size > 0 else ""


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)
