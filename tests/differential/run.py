#!/usr/bin/env python3
"""Differential tests: the same client scenarios against Apache Kafka and against Weir.

    python3 tests/differential/run.py --weir target/debug/weir [--only SCENARIO,...] [--out DIR]
                                      [--kafka-jars DIR] [--list]

Starts one Apache Kafka broker (a single KRaft node, from the jars that
tests/differential/install caches) and one fresh `weir playground`, runs every scenario
in SCENARIOS against each with confluent-kafka, and compares the two "observations":
JSON documents of what a client saw (offsets, error names, timestamp types, config
values and sources...), holding nothing that legitimately differs between two brokers
(no wall-clock times, no broker ids or addresses, no error message texts).

Every difference must be listed, with its reason, in EXPECTED_DIFFERENCES below, as
(scenario, path): reason, where path is a field of the observation such as
`delivery.timestamp_type` or `consumed[3].headers` (a listed path also covers the fields
under it). A difference that is not listed fails the scenario; a listed one that no
longer differs is reported, not failed. The report is printed, and written with both
observations of every scenario to OUT/report.json (OUT defaults to target/differential,
where the brokers' logs and each scenario's client log also go). The closing line is
`differential: N passed, N failed` (`, N skipped` follows when Kafka is not installed,
in which case nothing can run and the exit status is 0); the exit status is 1 when any
scenario failed.

Interpreter: the scenarios need confluent_kafka. When the interpreter running this file
lacks it, the file runs itself again under the virtualenv that scripts/test makes
($WEIR_TEST_PYTHON, else $WEIR_TEST_PYTHON_VENV/bin/python, else
${XDG_CACHE_HOME:-~/.cache}/weir/kafka-clients/bin/python), so plain `python3` works.

Each scenario runs in a child process of its own (this file with --child), one for each
system, with a time limit, so a client that hangs or crashes costs only its scenario.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV_PYTHON = os.environ.get("WEIR_TEST_PYTHON") or str(
    Path(os.environ.get("WEIR_TEST_PYTHON_VENV",
                        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weir" / "kafka-clients"))
    / "bin" / "python")

try:
    import confluent_kafka  # noqa: F401
except ImportError:
    if os.environ.get("WEIR_DIFFERENTIAL_REEXEC") or not os.path.exists(VENV_PYTHON):
        sys.exit(f"confluent_kafka is not importable here and {VENV_PYTHON} is no interpreter that has it; "
                 "run scripts/test once (it makes that virtualenv) or set WEIR_TEST_PYTHON")
    os.environ["WEIR_DIFFERENTIAL_REEXEC"] = "1"
    os.execv(VENV_PYTHON, [VENV_PYTHON, str(Path(__file__).resolve()), *sys.argv[1:]])

from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, TIMESTAMP_NOT_AVAILABLE, Consumer,
    KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic, OffsetSpec)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE))
import kafka_broker  # noqa: E402

# (scenario, path) -> why Weir answers differently on purpose, e.g.
#     ("describe_configs", "config_names.remote.storage.enable"): "no tiered storage: objects are the storage",
# Paths are as the report prints them; a path covers the fields under it. Empty: Weir
# should match Kafka everywhere the scenarios look.
# Kafka topic configs Weir refuses with INVALID_CONFIG (docs/topic-configs.md, "Refused"):
# they concern tiered storage, replicas or share groups, which Weir has none of, so a
# topic can never hold them and DescribeConfigs does not list them.
REFUSED_CONFIG = "refused by Weir: tiered storage, replica throttles or share groups (docs/topic-configs.md)"

EXPECTED_DIFFERENCES = {
    ("describe_configs", "config_names.errors.deadletterqueue.group.enable"): REFUSED_CONFIG,
    ("describe_configs", "config_names.follower.replication.throttled.replicas"): REFUSED_CONFIG,
    ("describe_configs", "config_names.leader.replication.throttled.replicas"): REFUSED_CONFIG,
    ("describe_configs", "config_names.local.retention.bytes"): REFUSED_CONFIG,
    ("describe_configs", "config_names.local.retention.ms"): REFUSED_CONFIG,
    ("describe_configs", "config_names.remote.copy.lag.bytes"): REFUSED_CONFIG,
    ("describe_configs", "config_names.remote.copy.lag.ms"): REFUSED_CONFIG,
    ("describe_configs", "config_names.remote.log.copy.disable"): REFUSED_CONFIG,
    ("describe_configs", "config_names.remote.log.delete.on.disable"): REFUSED_CONFIG,
    ("describe_configs", "config_names.remote.storage.enable"): REFUSED_CONFIG,
}

SCENARIO_TIMEOUT = 60  # seconds, per scenario per system
MESSAGE_TIMEOUT_MS = 10000  # a producer gives up on a record after this


# ---------------------------------------------------------------------------------------
# Helpers for the scenarios (they run in the child process).

def now_ms():
    return int(time.time() * 1000)


TIMESTAMP_TYPES = {
    TIMESTAMP_NOT_AVAILABLE: "TIMESTAMP_NOT_AVAILABLE",
    TIMESTAMP_CREATE_TIME: "TIMESTAMP_CREATE_TIME",
    TIMESTAMP_LOG_APPEND_TIME: "TIMESTAMP_LOG_APPEND_TIME",
}


def error_name(exc):
    """KafkaError's name (e.g. TOPIC_ALREADY_EXISTS) from an exception, else its type."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "name"):
        return exc.args[0].name()
    if hasattr(exc, "name") and callable(exc.name):
        return exc.name()
    return type(exc).__name__


def admin_client(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def producer(bootstrap, **extra):
    return Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                     "linger.ms": 5, **extra})


def consumer(bootstrap, group, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", **extra})


def create_topic(admin, name, partitions=1, config=None):
    """Creates the topic and waits until a client's metadata shows all its partitions."""
    future = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                 operation_timeout=10, request_timeout=15)[name]
    future.result()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md is not None and md.error is None and len(md.partitions) == partitions and all(
                p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} was created but its {partitions} partitions never showed in metadata")


def create_error(admin, name, partitions=1, config=None):
    """The error name a CreateTopics of this topic answers, or None if it was created."""
    future = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                 operation_timeout=10, request_timeout=15)[name]
    try:
        future.result()
        return None
    except Exception as e:
        return error_name(e)


def topic_exists(admin, name):
    md = admin.list_topics(timeout=10)
    return name in md.topics


def produce_one(p, topic, timeout=MESSAGE_TIMEOUT_MS / 1000 + 5, **kwargs):
    """Produces one record and flushes; returns what its delivery report said."""
    report = {}

    def on_delivery(err, msg):
        report["error"] = err.name() if err else None
        if not err:
            report["partition"] = msg.partition()
            report["offset"] = msg.offset()
            report["timestamp"] = msg.timestamp()

    try:
        p.produce(topic, on_delivery=on_delivery, **kwargs)
    except (KafkaException, BufferError) as e:
        return {"error": error_name(e)}
    remaining = p.flush(timeout)
    if remaining:
        return {"error": "NOT_DELIVERED_IN_TIME"}
    return report


def high_watermark(bootstrap, topic, partition=0):
    c = consumer(bootstrap, f"{topic}-watermarks")
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return high
    finally:
        c.close()


def consume_records(bootstrap, group, topic, partitions, count, timeout=15):
    """Reads `count` records from the start of the partitions (assigned, no group join)."""
    c = consumer(bootstrap, group)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                records.append({"error": msg.error().name()})
                continue
            records.append(msg)
        return records
    finally:
        c.close()


# ---------------------------------------------------------------------------------------
# The scenarios. Each takes the bootstrap address and returns its observation: a dict of
# JSON values that must be equal on Kafka and on Weir.

SCENARIOS = {}


def scenario(description):
    def register(fn):
        SCENARIOS[fn.__name__] = (fn, description)
        return fn
    return register


@scenario("200 asynchronous offset commits (1..200) then a synchronous one (201): the committed offset")
def async_commits(bootstrap):
    topic = group = "diff-async-commits"
    create_topic(admin_client(bootstrap), topic)
    callbacks = []

    def on_commit(err, partitions):
        callbacks.append((err.name() if err else None, [p.offset for p in partitions],
                          [p.error.name() if p.error else None for p in partitions]))

    c = consumer(bootstrap, group, on_commit=on_commit)
    obs = {}
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        # Until the client knows the group's coordinator it queues commits, and librdkafka
        # may send a queue of them out of order: Kafka then keeps a stale offset (seen on a
        # fresh broker, whose offsets topic is created by the first lookup). Asking for the
        # committed offset first finds the coordinator, so what follows tests the broker.
        obs["committed_before"] = c.committed([tp], timeout=10)[0].offset
        for i in range(1, 201):
            c.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=True)
        try:
            result = c.commit(offsets=[TopicPartition(topic, 0, 201)], asynchronous=False)
            obs["sync_commit"] = {"error": None, "partition_errors": [p.error.name() if p.error else None
                                                                      for p in result]}
        except KafkaException as e:
            obs["sync_commit"] = {"error": error_name(e)}
        deadline = time.monotonic() + 10
        while len(callbacks) < 200 and time.monotonic() < deadline:
            c.poll(0.1)
        obs["committed"] = c.committed([tp], timeout=10)[0].offset
        errors = {}
        for err, _, part_errors in callbacks:
            for name in [err] + part_errors:
                if name:
                    errors[name] = errors.get(name, 0) + 1
        offsets = [o for _, offs, _ in callbacks for o in offs]
        obs["async_commit_callbacks"] = len(callbacks)
        obs["async_commit_errors"] = errors
        obs["async_callbacks_in_commit_order"] = offsets == sorted(offsets)
    finally:
        c.close()
    # What a new member of the group would start from.
    fresh = consumer(bootstrap, group)
    try:
        obs["committed_seen_by_new_consumer"] = fresh.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        fresh.close()
    return obs


@scenario("10 keyed records with headers to 3 partitions: delivery offsets, then consumed back")
def produce_offsets(bootstrap):
    topic = "diff-produce-offsets"
    create_topic(admin_client(bootstrap), topic, partitions=3)
    base = now_ms() - 60_000
    p = producer(bootstrap)
    deliveries = {}

    def on_delivery(i):
        def cb(err, msg):
            deliveries[i] = {"error": err.name() if err else None, "partition": msg.partition(),
                             "offset": msg.offset() if not err else None,
                             "timestamp_type": TIMESTAMP_TYPES.get(msg.timestamp()[0]),
                             "timestamp_equals_produced": msg.timestamp()[1] == base + i}
        return cb

    for i in range(10):
        p.produce(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode(), partition=i % 3,
                  headers=[("index", str(i).encode()), ("h", b"x")], timestamp=base + i, on_delivery=on_delivery(i))
    left = p.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)
    obs = {"undelivered": left, "deliveries": [deliveries.get(i) for i in range(10)]}
    obs["offsets_by_partition"] = {
        str(part): [deliveries[i]["offset"] for i in range(10) if i in deliveries and i % 3 == part]
        for part in range(3)}
    records = consume_records(bootstrap, "diff-produce-offsets", topic, range(3), 10)
    out = []
    for m in records:
        if isinstance(m, dict):
            out.append(m)
            continue
        ts_type, ts = m.timestamp()
        index = int(m.key().decode().split("-")[1]) if m.key() else None
        out.append({
            "partition": m.partition(), "offset": m.offset(),
            "key": m.key().decode() if m.key() is not None else None,
            "value": m.value().decode() if m.value() is not None else None,
            "headers": [[k, v.decode() if v is not None else None] for k, v in (m.headers() or [])],
            "timestamp_type": TIMESTAMP_TYPES.get(ts_type),
            "timestamp_equals_produced": index is not None and ts == base + index,
        })
    obs["consumed"] = sorted(out, key=lambda r: (r.get("partition", -1), r.get("offset", -1)))
    return obs


@scenario("earliest and latest offsets per partition, offsets for timestamps (admin ListOffsets and consumer)")
def list_offsets(bootstrap):
    topic = "diff-list-offsets"
    admin = admin_client(bootstrap)
    create_topic(admin, topic, partitions=2)
    base = (now_ms() - 120_000) // 1000 * 1000
    layout = {0: [0, 1000, 2000, 3000, 4000], 1: [0, 2000, 4000]}  # ms after base
    p = producer(bootstrap)
    errors = []
    for part, offsets in layout.items():
        for d in offsets:
            p.produce(topic, value=f"{part}-{d}".encode(), partition=part, timestamp=base + d,
                      on_delivery=lambda err, msg: errors.append(err.name()) if err else None)
        p.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)  # one partition at a time, in order
    obs = {"produce_errors": errors}
    queries = {"before_first": base - 1000, "middle": base + 2500, "exact_2000": base + 2000,
               "after_last": base + 10_000}

    def rel(ts):
        return ts - base if ts is not None and ts >= 0 else ts

    admin_view = {}
    specs = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(),
             **{name: OffsetSpec.for_timestamp(ts) for name, ts in queries.items()}}
    for name, spec in specs.items():
        futures = admin.list_offsets({TopicPartition(topic, part): spec for part in layout}, request_timeout=15)
        row = {}
        for tp, f in futures.items():
            try:
                r = f.result()
                row[str(tp.partition)] = {"offset": r.offset,
                                          "timestamp": rel(r.timestamp) if name not in ("earliest", "latest")
                                          else None}
            except Exception as e:
                row[str(tp.partition)] = {"error": error_name(e)}
        admin_view[name] = dict(sorted(row.items()))
    obs["admin_list_offsets"] = admin_view
    c = consumer(bootstrap, "diff-list-offsets")
    try:
        obs["consumer_watermarks"] = {
            str(part): list(c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)) for part in layout}
        times = {}
        for name, ts in queries.items():
            res = c.offsets_for_times([TopicPartition(topic, part, ts) for part in layout], timeout=10)
            times[name] = {str(tp.partition): (tp.offset if not tp.error else tp.error.name()) for tp in res}
        obs["consumer_offsets_for_times"] = times
    finally:
        c.close()
    return obs


DESCRIBED = ["cleanup.policy", "retention.ms", "max.message.bytes", "message.timestamp.type", "compression.type",
             "retention.bytes"]


@scenario("a topic created with retention.ms=3600000: its config names, and values and sources of some")
def describe_configs(bootstrap):
    topic = "diff-describe-configs"
    admin = admin_client(bootstrap)
    create_topic(admin, topic, config={"retention.ms": "3600000"})
    resource = ConfigResource("topic", topic)
    deadline = time.monotonic() + 15
    while True:
        try:
            entries = admin.describe_configs([resource], request_timeout=15)[resource].result()
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return {
        "config_names": {name: True for name in sorted(entries)},
        "configs": {name: ({"value": entries[name].value, "source": ConfigSource(entries[name].source).name}
                           if name in entries else None) for name in DESCRIBED},
    }


@scenario("error codes: unknown partition, topic exists, unknown config, invalid config value, delete unknown")
def errors(bootstrap):
    admin = admin_client(bootstrap)
    topic = "diff-errors"
    create_topic(admin, topic)
    obs = {}
    p = producer(bootstrap)
    p.list_topics(topic, timeout=10)  # the partition count is known before producing
    obs["produce_to_partition_5_of_1"] = produce_one(p, topic, value=b"x", partition=5).get("error")
    obs["create_existing_topic"] = create_error(admin, topic)
    obs["create_with_unknown_config"] = create_error(admin, "diff-errors-unknown-config",
                                                     config={"no.such.config": "1"})
    obs["create_with_invalid_value"] = create_error(admin, "diff-errors-invalid-value",
                                                    config={"retention.ms": "soon"})
    obs["refused_topics_listed"] = {t: topic_exists(admin, t)
                                    for t in ("diff-errors-unknown-config", "diff-errors-invalid-value")}
    try:
        admin.delete_topics(["diff-errors-missing"], operation_timeout=10, request_timeout=15)[
            "diff-errors-missing"].result()
        obs["delete_missing_topic"] = None
    except Exception as e:
        obs["delete_missing_topic"] = error_name(e)
    return obs


@scenario("message.timestamp.type=LogAppendTime: a record produced with timestamp 1000000, as delivered and read")
def log_append_time(bootstrap):
    topic = "diff-log-append-time"
    create_topic(admin_client(bootstrap), topic, config={"message.timestamp.type": "LogAppendTime"})
    produced = 1_000_000
    before = now_ms()
    d = produce_one(producer(bootstrap), topic, key=b"k", value=b"v", timestamp=produced)
    obs = {"delivery": {"error": d.get("error")}}
    if "timestamp" in d:
        ts_type, ts = d["timestamp"]
        obs["delivery"].update(timestamp_type=TIMESTAMP_TYPES.get(ts_type), timestamp_equals_produced=ts == produced,
                               timestamp_is_now=abs(ts - before) < 300_000)
    records = consume_records(bootstrap, "diff-log-append-time", topic, [0], 1)
    obs["consumed"] = []
    for m in records:
        if isinstance(m, dict):
            obs["consumed"].append(m)
            continue
        ts_type, ts = m.timestamp()
        obs["consumed"].append({"timestamp_type": TIMESTAMP_TYPES.get(ts_type),
                                "timestamp_equals_produced": ts == produced,
                                "timestamp_is_now": abs(ts - before) < 300_000})
    return obs


@scenario("message.timestamp.before/after.max.ms=3600000: records 55 years old, a day ahead, and current")
def timestamp_bounds(bootstrap):
    topic = "diff-timestamp-bounds"
    create_topic(admin_client(bootstrap), topic, config={"message.timestamp.before.max.ms": "3600000",
                                                         "message.timestamp.after.max.ms": "3600000"})
    p = producer(bootstrap)
    # One at a time: a refused record must not share a batch with an accepted one.
    return {
        "timestamp_1000000": produce_one(p, topic, value=b"old", timestamp=1_000_000).get("error"),
        "timestamp_a_day_ahead": produce_one(p, topic, value=b"future", timestamp=now_ms() + 86_400_000).get("error"),
        "timestamp_now": produce_one(p, topic, value=b"now", timestamp=now_ms()).get("error"),
        "records_stored": high_watermark(bootstrap, topic),
    }


@scenario("max.message.bytes=1000: a 5000-byte value is refused, a 100-byte one accepted")
def max_message_bytes(bootstrap):
    topic = "diff-max-message-bytes"
    create_topic(admin_client(bootstrap), topic, config={"max.message.bytes": "1000"})
    p = producer(bootstrap)
    return {
        "value_5000_bytes": produce_one(p, topic, value=b"x" * 5000).get("error"),
        "value_100_bytes": produce_one(p, topic, value=b"y" * 100).get("error"),
        "records_stored": high_watermark(bootstrap, topic),
    }


def described(admin, topic, names):
    """The values of `names` in the topic's configs, retried while the topic settles."""
    resource = ConfigResource("topic", topic)
    deadline = time.monotonic() + 15
    while True:
        try:
            entries = admin.describe_configs([resource], request_timeout=15)[resource].result()
            return {name: entries[name].value if name in entries else None for name in names}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@scenario("IncrementalAlterConfigs: SET, APPEND, DELETE, an invalid value and an unknown name, described back")
def alter_configs(bootstrap):
    topic = "diff-alter-configs"
    admin = admin_client(bootstrap)
    create_topic(admin, topic, config={"retention.ms": "3600000", "segment.ms": "60000"})
    names = ["retention.ms", "segment.ms", "cleanup.policy", "max.message.bytes"]

    def alter(*entries):
        resource = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=op) for name, value, op in entries])
        try:
            admin.incremental_alter_configs([resource], request_timeout=15)[resource].result()
            return None
        except KafkaException as e:
            return error_name(e)

    obs = {"set_append_delete": alter(("retention.ms", "7200000", AlterConfigOpType.SET),
                                      ("cleanup.policy", "compact", AlterConfigOpType.APPEND),
                                      ("segment.ms", None, AlterConfigOpType.DELETE))}
    obs["after"] = described(admin, topic, names)
    obs["invalid_value"] = alter(("retention.ms", "soon", AlterConfigOpType.SET),
                                 ("max.message.bytes", "5000", AlterConfigOpType.SET))
    obs["unknown_name"] = alter(("no.such.config", "1", AlterConfigOpType.SET))
    obs["append_to_a_number"] = alter(("retention.ms", "5", AlterConfigOpType.APPEND))
    obs["after_refusals"] = described(admin, topic, names)
    return obs


@scenario("ListOffsets MAX_TIMESTAMP: the first record holding a partition's largest timestamp; an empty partition")
def max_timestamp(bootstrap):
    topic = "diff-max-timestamp"
    admin = admin_client(bootstrap)
    create_topic(admin, topic, partitions=2)
    base = (now_ms() - 120_000) // 1000 * 1000
    p = producer(bootstrap)
    for batch in ([0, 4000, 2000, 4000], [4000, 3000]):
        for d in batch:
            p.produce(topic, value=str(d).encode(), partition=0, timestamp=base + d)
        p.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)
    futures = admin.list_offsets({TopicPartition(topic, part): OffsetSpec.max_timestamp() for part in (0, 1)},
                                 request_timeout=15)
    obs = {}
    for tp, f in futures.items():
        try:
            r = f.result()
            obs[str(tp.partition)] = {"offset": r.offset,
                                      "timestamp": r.timestamp - base if r.timestamp >= 0 else r.timestamp}
        except Exception as e:
            obs[str(tp.partition)] = {"error": error_name(e)}
    return dict(sorted(obs.items()))


@scenario("fetch.max.bytes=1000000 over three partitions of 300 KB records: every record read, in order")
def small_fetch(bootstrap):
    topic = "diff-small-fetch"
    create_topic(admin_client(bootstrap), topic, partitions=3)
    # Idempotent, so a batch retried after a transient error keeps its place: a plain
    # producer once put partition 2's first batch last on Kafka (2026-12-06 CI run).
    p = producer(bootstrap, **{"message.max.bytes": 4_000_000, "linger.ms": 50,
                               "enable.idempotence": True})
    for part in range(3):
        for i in range(8):
            p.produce(topic, key=f"{part}-{i}".encode(), value=bytes([97 + i]) * 300_000, partition=part)
    left = p.flush(MESSAGE_TIMEOUT_MS / 1000 + 20)
    c = consumer(bootstrap, "diff-small-fetch", **{"fetch.max.bytes": 1_000_000,
                                                   "receive.message.max.bytes": 1_000_512,
                                                   "max.partition.fetch.bytes": 20_000_000})
    read = {str(part): [] for part in range(3)}
    errors = []
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(3)])
        deadline = time.monotonic() + 40
        while sum(len(v) for v in read.values()) < 24 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error().name())
                continue
            read[str(m.partition())].append([m.offset(), m.key().decode(), len(m.value()), m.value()[:1].decode()])
    finally:
        c.close()
    return {"undelivered": left, "read": read, "consumer_errors": sorted(set(errors))}


@scenario("cleanup.policy=compact: a record without a key is refused, one with a key stored")
def compacted_keyless(bootstrap):
    topic = "diff-compacted-keyless"
    create_topic(admin_client(bootstrap), topic, config={"cleanup.policy": "compact"})
    p = producer(bootstrap)
    return {
        "without_key": produce_one(p, topic, value=b"no key").get("error"),
        "with_key": produce_one(p, topic, key=b"k", value=b"keyed").get("error"),
        "records_stored": high_watermark(bootstrap, topic),
    }


@scenario("an offset commit from outside a group that has an active member (generation -1, no member id)")
def commit_outside_active_group(bootstrap):
    topic = group = "diff-commit-outside"
    create_topic(admin_client(bootstrap), topic)
    member = consumer(bootstrap, group, **{"session.timeout.ms": 10000})
    obs = {}
    try:
        assigned = []
        member.subscribe([topic], on_assign=lambda c, parts: assigned.extend(parts))
        deadline = time.monotonic() + 30
        while not assigned and time.monotonic() < deadline:
            member.poll(0.2)
        obs["member_assigned"] = [p.partition for p in assigned]
        outsider = consumer(bootstrap, group)
        try:
            tp = TopicPartition(topic, 0)
            outsider.assign([tp])
            outsider.committed([tp], timeout=10)
            try:
                result = outsider.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
                obs["outsider_commit"] = [p.error.name() if p.error else None for p in result]
            except KafkaException as e:
                obs["outsider_commit"] = error_name(e)
            obs["committed_after"] = outsider.committed([tp], timeout=10)[0].offset
        finally:
            outsider.close()
    finally:
        member.close()
    return obs


# ---------------------------------------------------------------------------------------
# Comparing.

ABSENT = "<absent>"


def differences(kafka, weir, path=""):
    """(path, kafka value, weir value) for every leaf that differs."""
    if isinstance(kafka, dict) and isinstance(weir, dict):
        for key in sorted(set(kafka) | set(weir), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in kafka:
                yield sub, ABSENT, weir[key]
            elif key not in weir:
                yield sub, kafka[key], ABSENT
            else:
                yield from differences(kafka[key], weir[key], sub)
    elif isinstance(kafka, list) and isinstance(weir, list):
        for i in range(max(len(kafka), len(weir))):
            sub = f"{path}[{i}]"
            if i >= len(kafka):
                yield sub, ABSENT, weir[i]
            elif i >= len(weir):
                yield sub, kafka[i], ABSENT
            else:
                yield from differences(kafka[i], weir[i], sub)
    elif kafka != weir or type(kafka) is not type(weir):
        yield path, kafka, weir


def expected_reason(name, path):
    for (scen, listed), reason in EXPECTED_DIFFERENCES.items():
        if scen == name and (path == listed or path.startswith(listed + ".") or path.startswith(listed + "[")):
            return reason
    return None


def compare(name, kafka, weir):
    diffs = []
    for path, k, w in differences(kafka, weir):
        diffs.append({"path": path or "(whole observation)", "kafka": k, "weir": w,
                      "expected": expected_reason(name, path)})
    stale = [{"path": listed, "reason": reason} for (scen, listed), reason in EXPECTED_DIFFERENCES.items()
             if scen == name and not any(d["path"] == listed or d["path"].startswith(listed + ".")
                                         or d["path"].startswith(listed + "[") for d in diffs)]
    return diffs, stale


# ---------------------------------------------------------------------------------------
# Running.

def run_child(name, bootstrap):
    """Runs one scenario against one system in this process; prints its observation."""
    fn, _ = SCENARIOS[name]
    started = time.monotonic()
    try:
        obs = fn(bootstrap)
    except Exception as e:
        obs = {"scenario_raised": f"{type(e).__name__}: {error_name(e)}"}
        import traceback
        traceback.print_exc()
    sys.stdout.write(f"SECONDS {time.monotonic() - started:.1f}\n")
    sys.stdout.write("OBSERVATION " + json.dumps(obs, sort_keys=True) + "\n")
    sys.stdout.flush()
    # librdkafka handles left open by a failed scenario must not hold the exit up.
    os._exit(0)


def start_child(name, system, bootstrap, logs):
    log = open(logs / f"{name}.{system}.log", "wb")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", name, "--bootstrap", bootstrap],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=kafka_broker.die_with_parent)
    return proc, log


def finish_child(proc, log, deadline):
    """(observation, seconds the scenario took in the child)."""
    try:
        out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        log.close()
        return {"scenario_timed_out": f"no observation within {SCENARIO_TIMEOUT} s"}, None
    log.close()
    obs, seconds = None, None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("OBSERVATION "):
            obs = json.loads(line[len("OBSERVATION "):])
        elif line.startswith("SECONDS "):
            seconds = float(line.split()[1])
    if obs is None:
        obs = {"scenario_crashed": f"exit status {proc.returncode}, no observation"}
    return obs, seconds


def short(value, width=100):
    text = json.dumps(value) if value is not ABSENT else ABSENT
    return text if len(text) <= width else text[: width - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weir", help="the weir binary (e.g. target/debug/weir)")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--out", default=str(ROOT / "target" / "differential"), help="where report.json and logs go")
    ap.add_argument("--kafka-jars", default=None, help="the Kafka jars (default: tests/differential/install's)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        run_child(args.child, args.bootstrap)
    if args.list:
        for name, (_, description) in SCENARIOS.items():
            print(f"{name:20} {description}")
        return 0
    if not args.weir:
        ap.error("--weir PATH is required")
    weir = Path(args.weir).resolve()
    if not os.access(weir, os.X_OK):
        ap.error(f"{weir} is not an executable")
    names = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            ap.error(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()

    jars = Path(args.kafka_jars) if args.kafka_jars else kafka_broker.default_jars_dir()
    report = {"weir": str(weir), "kafka_version": kafka_broker.installed_version(jars), "scenarios": {}}
    if not any(jars.glob("kafka_2.13-*.jar")):
        print(f"no Kafka jars in {jars}: run tests/differential/install; every scenario is skipped")
        for name in names:
            report["scenarios"][name] = {"status": "skipped", "reason": "Kafka is not installed"}
        report.update(passed=0, failed=0, skipped=len(names))
        (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"differential: 0 passed, 0 failed, {len(names)} skipped")
        return 0

    # SIGTERM (a CI time-out, a kill) unwinds like Ctrl-C: the finally below stops both systems.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    kafka = weir_pg = None
    try:
        weir_pg = kafka_broker.WeirPlayground(weir, log_path=logs / "weir.log")
        kafka = kafka_broker.KafkaBroker(jars, log_path=logs / "kafka.log")
        print(f"Kafka {kafka.version} on {kafka.bootstrap}, Weir ({weir}) on {weir_pg.bootstrap}; "
              f"both up in {time.monotonic() - started:.1f} s")
        for name in names:
            t0 = time.monotonic()
            deadline = t0 + SCENARIO_TIMEOUT
            # The two systems are independent: their children run side by side.
            k = start_child(name, "kafka", kafka.bootstrap, logs)
            w = start_child(name, "weir", weir_pg.bootstrap, logs)
            obs_k, secs_k = finish_child(*k, deadline)
            obs_w, secs_w = finish_child(*w, deadline)
            diffs, stale = compare(name, obs_k, obs_w)
            unexpected = [d for d in diffs if d["expected"] is None]
            report["scenarios"][name] = {
                "description": SCENARIOS[name][1], "status": "failed" if unexpected else "passed",
                "seconds": round(time.monotonic() - t0, 1), "kafka_seconds": secs_k, "weir_seconds": secs_w,
                "kafka": obs_k, "weir": obs_w,
                "differences": diffs, "expected_but_same": stale}
    except Exception as e:
        print(f"could not start the systems: {e}")
        for name in names:
            report["scenarios"].setdefault(name, {"status": "failed", "reason": f"not run: {e}"})
    finally:
        if kafka is not None:
            kafka.stop()
        if weir_pg is not None:
            weir_pg.stop()

    passed = failed = 0
    print()
    for name in names:
        r = report["scenarios"][name]
        if r["status"] == "passed":
            passed += 1
        else:
            failed += 1
        if "differences" not in r:
            print(f"== {name}: FAILED ({r.get('reason')})")
            continue
        diffs = r["differences"]
        unexpected = [d for d in diffs if d["expected"] is None]
        verdict = "same" if not diffs else ("differs (all expected)" if not unexpected else
                                            f"DIFFERS in {len(unexpected)} field(s)")
        print(f"== {name} (kafka {r['kafka_seconds']} s, weir {r['weir_seconds']} s): {verdict}")
        for d in diffs:
            mark = "  expected" if d["expected"] else "  DIFF    "
            print(f"{mark} {d['path']}: kafka={short(d['kafka'])} weir={short(d['weir'])}")
            if d["expected"]:
                print(f"             because: {d['expected']}")
        for s in r["expected_but_same"]:
            print(f"  note: listed in EXPECTED_DIFFERENCES but the same now: {s['path']} ({s['reason']})")
    report.update(passed=passed, failed=failed, skipped=0, seconds=round(time.monotonic() - started, 1))
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nreport: {out / 'report.json'}; logs: {logs}; {report['seconds']} s")
    print(f"differential: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
