"""Every private symbol of Faust, mode, aiokafka and rocksdict's Faust store that dqhash relies on.

One row a symbol: where it lives, what kind of thing it is, why dqhash needs it, what breaks if it changes.
``tests/unit/internals/test_symbols.py`` checks each row against the installed versions (a method exists with these
parameters; an attribute is set by the owner's code), and that no module outside ``dqhash.internals`` uses
a private framework symbol. An upgrade that changes one fails there, loudly, in one place.
"""

from __future__ import annotations

from typing import NamedTuple


class Symbol(NamedTuple):
    owner: str  # "module:Class"
    name: str
    #: "method" (overridden or called; ``params`` are its parameter names), "task" (a mode service task, the same),
    #: or "attribute"
    kind: str
    why: str
    breaks: str
    params: tuple[str, ...] = ()


FAUST_CONSUMER = "faust.transport.consumer:Consumer"
AIOKAFKA_DRIVER_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
CONSUMER_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"
RECOVERY = "faust.tables.recovery:Recovery"

SYMBOLS: tuple[Symbol, ...] = (
    # --- Faust's consumer: commits, acknowledgements, gaps (dqhash.internals.transport) -------------------
    Symbol(
        FAUST_CONSUMER,
        "_new_offset",
        "method",
        "overridden: a commit only extends the committed offset by acknowledged records in a row",
        "a record read and never processed could be committed past (lost verdicts on failover)",
        ("self", "tp"),
    ),
    Symbol(
        FAUST_CONSUMER,
        "_wait_next_records",
        "method",
        "overridden: each fetch is stamped with its seek counts and tapped partitions go to the taps",
        "the taps get nothing (the agents stall) or stale records are applied out of order",
        ("self", "timeout"),
    ),
    Symbol(
        FAUST_CONSUMER,
        "_to_message",
        "method",
        "overridden: each message carries the seek count it was fetched under",
        "stale records are no longer recognised after a seek",
        ("self", "tp", "record"),
    ),
    Symbol(
        FAUST_CONSUMER,
        "_add_gap",
        "method",
        "overridden: offsets missing from the log count from the committed offset on, the record excluded",
        "Faust's own counts the record itself as acknowledged and never the committed offset",
        ("self", "tp", "offset_from", "offset_to"),
    ),
    Symbol(
        FAUST_CONSUMER,
        "_drain_messages",
        "method",
        "not overridden: the unit tests run it, to check the transport against Faust's real drain loop",
        "the tests no longer exercise the drain loop the per-record path runs",
        ("self", "fetcher"),
    ),
    Symbol(
        FAUST_CONSUMER,
        "_acked",
        "attribute",
        "read and written by the commit rule and ack_chunk",
        "commits stop, or acknowledgements are lost",
    ),
    Symbol(FAUST_CONSUMER, "_acked_index", "attribute", "kept in step with _acked", "double-counted acks"),
    Symbol(
        FAUST_CONSUMER,
        "_gap",
        "attribute",
        "offsets missing from the log count as acknowledged",
        "a partition with a compacted or control-record gap is never committed past it",
    ),
    Symbol(
        FAUST_CONSUMER,
        "_committed_offset",
        "attribute",
        "where a commit must continue; the sweep horizon (agents.Outputs.watermark)",
        "commits stop; deadlines sweep ahead of unread cloud hashes",
    ),
    Symbol(
        FAUST_CONSUMER,
        "_read_offset",
        "attribute",
        "the drain loop's read offset, set after a seek",
        "records re-fetched after a seek are dropped as already read (a hole)",
    ),
    Symbol(
        FAUST_CONSUMER,
        "_n_acked",
        "attribute",
        "Faust's count of acknowledged records, kept in step",
        "Faust's commit-every-N trigger misfires",
    ),
    Symbol(
        FAUST_CONSUMER,
        "_waiting_for_ack",
        "attribute",
        "woken when records are acknowledged",
        "a stop or rebalance waits for acknowledgements forever",
    ),
    Symbol(
        FAUST_CONSUMER, "_unacked_messages", "attribute", "a skipped record is taken off it", "wait_empty never returns"
    ),
    Symbol(
        FAUST_CONSUMER,
        "_buffered_partitions",
        "attribute",
        "partitions Faust still hands out",
        "tapped partitions' records dropped after a rebalance",
    ),
    Symbol(
        AIOKAFKA_DRIVER_CONSUMER,
        "_thread",
        "attribute",
        "the consumer thread (seek counts, seeks)",
        "seeks and seek counts unreachable: the transport fails at start",
    ),
    Symbol(
        AIOKAFKA_DRIVER_CONSUMER,
        "_new_consumer_thread",
        "method",
        "overridden: the consumer thread that counts seeks (and, on tansu://, corrects end offsets)",
        "dqhash's consumer thread is not used: every fix above is off",
        ("self",),
    ),
    # --- Faust's aiokafka consumer thread ----------------------------------------------------------------
    Symbol(
        CONSUMER_THREAD,
        "_fetch_records",
        "method",
        "overridden: the seek counts as they were when aiokafka handed the records over",
        "stale records are not recognised",
        ("self", "consumer", "active_partitions", "timeout", "max_records"),
    ),
    Symbol(
        CONSUMER_THREAD,
        "_ensure_consumer",
        "method",
        "the aiokafka consumer, to seek in its own thread",
        "seeks back to a hole fail",
        ("self",),
    ),
    Symbol(
        CONSUMER_THREAD,
        "_highwaters",
        "method",
        "overridden on tansu://: end offsets corrected from fetch high watermarks",
        "table recovery on the embedded broker stops early (stale state)",
        ("self", "partitions"),
    ),
    Symbol(
        CONSUMER_THREAD,
        "_consumer",
        "attribute",
        "the aiokafka consumer, whose fetcher counts seeks",
        "seek counting is not installed",
    ),
    # --- aiokafka ----------------------------------------------------------------------------------------
    Symbol(
        "aiokafka:AIOKafkaConsumer",
        "_fetcher",
        "attribute",
        "its seek_to / request_offset_reset are wrapped to count seeks in the same step",
        "seek counting is not installed",
    ),
    Symbol(
        "aiokafka:AIOKafkaConsumer",
        "_client",
        "attribute",
        "the bootstrap servers of the tansu:// probe",
        "end offsets are not corrected on tansu://",
    ),
    Symbol(
        CONSUMER_THREAD,
        "verify_event_path",
        "method",
        "overridden: Faust's livelock check is skipped for a partition with no position yet (it asserted one)",
        "a broker outage longer than the session timeout crashes the worker (AssertionError in the check)",
        ("self", "now", "tp"),
    ),
    Symbol(
        "aiokafka.consumer.fetcher:Fetcher",
        "_subscriptions",
        "attribute",
        "a partition's fetch state: whether it has a position, before Faust's livelock check reads it",
        "the livelock check guard fails: a broker outage crashes the worker again",
    ),
    Symbol(
        "aiokafka:AIOKafkaConsumer",
        "_coordinator",
        "attribute",
        "the group coordinator, whose heartbeats renew the ownership lease (internals.transport.report_heartbeats)",
        "the lease is never renewed: the agents hold every batch after the first lease runs out",
    ),
    Symbol(
        "aiokafka.consumer.group_coordinator:GroupCoordinator",
        "_do_heartbeat",
        "method",
        "wrapped: each heartbeat answered renews the ownership lease from its send time",
        "the lease is never renewed, or renewed by a heartbeat that was not answered (a zombie emits)",
        ("self",),
    ),
    Symbol(
        "aiokafka.consumer.group_coordinator:GroupCoordinator",
        "generation",
        "attribute",
        "the generation a heartbeat was sent under: a lapse is forgiven only within one generation",
        "a lapse across a rebalance is forgiven: state applied during it is trusted",
    ),
    Symbol(
        "aiokafka.consumer.fetcher:Fetcher",
        "seek_to",
        "method",
        "wrapped: counts seeks",
        "seek counts stop moving: stale records are applied",
        ("self", "tp", "offset"),
    ),
    Symbol(
        "aiokafka.consumer.fetcher:Fetcher",
        "request_offset_reset",
        "method",
        "wrapped: counts resets",
        "seek counts stop moving after a reset",
        ("self", "tps", "strategy"),
    ),
    Symbol(
        "aiokafka.client:AIOKafkaClient",
        "_bootstrap_servers",
        "attribute",
        "where the tansu:// probe connects",
        "end offsets are not corrected on tansu://",
    ),
    # --- Faust's app, worker and producer ------------------------------------------------------------------
    Symbol(
        "faust.app.base:App",
        "_new_transport",
        "method",
        "overridden: kafka:// and aiokafka:// consume through dqhash's transport",
        "kafka:// runs Faust's stock consumer, without the fixes",
        ("self",),
    ),
    Symbol(
        "faust.worker:Worker",
        "_setup_spinner_handler",
        "method",
        "overridden: no terminal spinner (it sets the root logger to DEBUG)",
        "a debug record per produced message costs CPU",
        ("self", "logger", "level"),
    ),
    Symbol(
        "mode.worker:Worker",
        "_schedule_shutdown",
        "method",
        "overridden: arms the shutdown watchdog",
        "a worker told to stop with the broker gone hangs until SIGKILL",
        ("self", "signal"),
    ),
    Symbol(
        "mode.worker:Worker",
        "_signal_stop_time",
        "attribute",
        "arms the watchdog once, at the first signal",
        "the watchdog is armed again at every signal",
    ),
    Symbol(
        "faust.transport.drivers.aiokafka:Producer",
        "_ensure_producer",
        "method",
        "the started aiokafka producer, to append whole record batches",
        "nothing is produced",
        ("self",),
    ),
    # --- Faust's RocksDB store (rocksdict) ---------------------------------------------------------------
    Symbol(
        "faust.stores.rocksdb:Store",
        "_dbs",
        "attribute",
        "one DB per partition: per-partition scans",
        "the expiry scan and the rebuild read nothing",
    ),
    Symbol(
        "faust.stores.rocksdb:Store",
        "_db_for_partition",
        "method",
        "point reads and bulk writes per partition",
        "the reconciler cannot read or write its table",
        ("self", "partition"),
    ),
    Symbol(
        "faust.stores.rocksdb:Store",
        "_visible_items",
        "method",
        "a partition's items from a snapshot",
        "the expiry scan and the rebuild read nothing",
        ("self", "db"),
    ),
    Symbol(
        "faust.stores.rocksdb:RocksDBOptions",
        "as_options",
        "method",
        "wrapped: every DB takes the worker's one block cache and write buffer manager (internals.rocksdb_memory)",
        "each partition DB gets a cache of its own again: RocksDB's memory no longer bounded by one setting",
        ("self",),
    ),
    # --- Faust's table recovery and standbys (dqhash.internals.recovery) ---------------------------------------
    Symbol(
        RECOVERY,
        "_slurp_changelogs",
        "task",
        "replaced (a service task of the same name): changelog records applied a fetched chunk at a time",
        "Faust's per-record loop runs again next to dqhash's, or recovery never ends (the tap is never read)",
        ("self",),
    ),
    Symbol(
        RECOVERY,
        "_set_recovery_ended",
        "method",
        "called when every active changelog partition is read to its high water",
        "recovery never ends: the agents never start",
        ("self",),
    ),
    Symbol(
        RECOVERY,
        "_active_events_received_at",
        "attribute",
        "written per chunk: Faust's progress log warns of a partition that sends nothing",
        "false 'no event received' warnings during recovery",
    ),
    Symbol(
        RECOVERY,
        "_standby_events_received_at",
        "attribute",
        "written per chunk, as Faust's loop does for standbys",
        "standby progress no longer tracked",
    ),
    Symbol(
        RECOVERY,
        "_last_flush_at",
        "attribute",
        "written per chunk applied: Faust's progress log warns when buffers are not flushed",
        "false 'not flushed buffers' warnings during recovery",
    ),
    Symbol(
        RECOVERY,
        "_processing_times",
        "attribute",
        "per-record times, from which Faust's log estimates the time left",
        "no estimate of the time left in the recovery log",
    ),
    Symbol(
        RECOVERY,
        "_last_active_event_processed_at",
        "attribute",
        "kept as Faust's loop keeps it",
        "the time-left estimate is wrong",
    ),
    Symbol(RECOVERY, "_actives_span", "attribute", "tagged at the end of recovery, as Faust does", "tracing only"),
    Symbol(RECOVERY, "_standbys_span", "attribute", "finished when standbys are ready, as Faust does", "tracing only"),
    Symbol(
        "faust.tables.manager:TableManager",
        "_recovery",
        "attribute",
        "the recovery service the manager built: dqhash's builds BulkRecovery instead",
        "Faust's per-record recovery runs (about 4,500 records a second)",
    ),
)

#: Faust logic dqhash repeats, because no hook exposes it: checked against Faust's own behaviour in the tests.
COPIES = (
    (
        "dqhash.internals.transport:_fill_gaps",
        FAUST_CONSUMER + "._new_offset",
        "recorded gaps up to the newest acknowledged offset count as acknowledged",
    ),
    (
        "dqhash.internals.rocksdb_memory:SharedMemory.table_factory",
        "faust.stores.rocksdb:RocksDBOptions.as_options",
        "the table factory: a bloom filter of bloom_filter_size bits, block-based, and a binary-search index",
    ),
    (
        "dqhash.internals.recovery:BulkRecovery._slurp_changelogs",
        RECOVERY + "._slurp_changelogs",
        "a changelog record is applied once its offset passes the one recovery reached; recovery ends when no "
        "active partition has records left; standbys are ready when none has",
    ),
)
