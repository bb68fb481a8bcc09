"""The compatibility scenario for the Python clients, written once over a small adapter.

Each client's program (confluent_compat.py, kafka_python_compat.py, aiokafka_compat.py)
implements `Client` with that client's own API and calls `run(client)`; the checks live
here so that the three clients are held to exactly the same outcomes. Results go to stdout
as one JSON object per step, the protocol tests/compat/run.py reads.
"""

import json
import sys
import time
import traceback

PARTITIONS = 4
RECORDS = 10_000
BASE_TS = 1_700_000_000_000
# A bound against hanging, not a timing assertion.
PATIENCE_S = 60
RETENTION_MS = "7200000"
DEFAULT_RETENTION_MS = "604800000"  # Kafka's retention.ms default, 7 days
INVALID_CONFIG = 40  # Kafka's error code for an unknown config or an invalid value
ASYNC_COMMITS = 200  # async_commits: offsets 1..200, then 201 synchronously
LOG_APPEND_TS = 1_000_000  # log_append_time: the timestamp the producer sets (1970)
CLOCK_SLACK_MS = 1000  # log_append_time: the append time may be this far outside the produce
# small_fetch: 12 records of 300,000 bytes in each of 3 partitions, read with a total fetch
# limit of 1,000,000 bytes and a per-partition limit of 20,000,000.
BIG_PARTITIONS = 3
BIG_RECORDS = 12
BIG_SIZE = 300_000
FETCH_MAX_BYTES = 1_000_000
PARTITION_FETCH_MAX_BYTES = 20_000_000
TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME = 0, 1  # Kafka's timestamp types
# delete_records: 10 records in each of 2 partitions; partition 0 loses those before offset
# 4, partition 1 everything (-1 is the high watermark); offset 11 of partition 0 is past it.
DR_PARTITIONS = 2
DR_RECORDS = 10
DR_BEFORE = 4
HIGH_WATERMARK = -1
OFFSET_OUT_OF_RANGE = 1  # Kafka's error code


def report(step, ok=True, error=None, skip=None):
    msg = {"step": step}
    if skip is not None:
        msg["skip"] = skip
    else:
        msg["ok"] = ok
        if error:
            msg["error"] = error
    print(json.dumps(msg), flush=True)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Fail(message)


def record(i):
    """Record i of the scenario: unique key, a value of varying length, two headers."""
    key = f"key-{i}".encode()
    value = f"value-{i}-".encode() + bytes((i * 31 + j) % 256 for j in range(i % 200))
    headers = [("seq", str(i).encode()), ("origin", b"weir-compat")]
    return key, value, headers, BASE_TS + i


_BIG_PATTERN = bytes(range(256)) * (BIG_SIZE // 256 + 2)


def big_value(partition, j):
    """small_fetch's record j of a partition: BIG_SIZE bytes, distinct per record."""
    prefix = f"big-{partition}-{j}-".encode()
    start = (partition * BIG_RECORDS + j) % 256
    return prefix + _BIG_PATTERN[start:start + BIG_SIZE - len(prefix)]


class Rec:
    __slots__ = ("partition", "offset", "key", "value", "headers", "timestamp", "timestamp_type")

    def __init__(self, partition, offset, key, value, headers, timestamp, timestamp_type=None):
        self.partition, self.offset, self.key, self.value = partition, offset, key, value
        self.headers = [(k, bytes(v) if v is not None else None) for k, v in (headers or [])]
        self.timestamp = timestamp
        self.timestamp_type = timestamp_type  # TIMESTAMP_CREATE_TIME or TIMESTAMP_LOG_APPEND_TIME


class NotSupported(Exception):
    """The client has no API for this step."""


class Refused(Exception):
    """The broker answered a request with a Kafka error code."""

    def __init__(self, code, message):
        super().__init__(f"error code {code}: {message}")
        self.code = code


class Client:
    """What a client program implements. Methods raise on error."""

    name = "?"
    idempotent = True  # whether the producer is idempotent in produce()

    def create_topic(self, topic, partitions, configs=None):
        """configs: {name: value} for the new topic, or None."""
        raise NotImplementedError
    def produce(self, topic, records, idempotent):
        """records: [(i, key, value, headers, ts)]; returns {i: (partition, offset)}."""
        raise NotImplementedError
    def send(self, topic, records, large=False):
        """records: [(partition, key, value, ts or None)], sent with acks=all, as few requests as the
        client allows; large: records of BIG_SIZE bytes (the producer's batch and request limits
        set for them where its defaults do not fit). Returns [(partition, offset, timestamp)] in the order sent, the
        timestamp being the one the acknowledgement gives the record (the broker's append
        time for a LogAppendTime topic), or None where the client does not tell."""
        raise NotImplementedError
    def consumer(self, topic, group, assignor=None): raise NotImplementedError
    def assigned_consumer(self, topic, group, partitions, small_fetch=False):
        """A consumer of group, assigned (not subscribed) to the topic's partitions, auto-commit
        off, starting at the committed offset or else the earliest. small_fetch: a total fetch
        limit of FETCH_MAX_BYTES and a per-partition limit of PARTITION_FETCH_MAX_BYTES."""
        raise NotImplementedError
    def list_offsets(self, topic, partitions, spec):
        """spec: "earliest", "latest" or a timestamp; returns {partition: offset or -1}."""
        raise NotImplementedError
    def describe_configs(self, topic): raise NotImplementedError
    # Whether alter_configs is IncrementalAlterConfigs (True) or AlterConfigs (False).
    incremental_alter_configs = True
    def alter_configs(self, topic, changes):
        """changes: [(op, name, value)]. Incrementally (op "set", "append" or "delete"), or
        with AlterConfigs, where every op is "set" and the topic's configs become exactly
        those named (an empty list puts every config back to its default). Raises Refused
        for an error code in the response."""
        raise NotImplementedError
    def delete_records(self, topic, offsets):
        """offsets: {partition: the offset before which its records go, or HIGH_WATERMARK}, in one
        call of the client's admin API. Returns {partition: the low watermark answered}; raises
        Refused for an error code in the response."""
        raise NotSupported("no DeleteRecords in this client's admin API")
    def delete_topic(self, topic): raise NotImplementedError
    def list_topics(self): raise NotImplementedError
    def cooperative_assignor(self):
        """The client's name for cooperative-sticky, or raise NotSupported."""
        raise NotSupported("no cooperative-sticky assignor in this client")


class Consumer:
    """What a client's group consumer implements."""

    def poll(self, timeout_s): raise NotImplementedError  # -> [Rec]
    def commit(self, offsets): raise NotImplementedError  # {partition: next offset}, synchronous
    def commit_async(self, offsets):
        """Sends a commit of {partition: next offset} without waiting for it."""
        raise NotSupported("no asynchronous commit in this client")
    def async_commit_outcomes(self, count, timeout_s):
        """Waits (driving the client) until `count` asynchronous commits have completed, or the
        timeout; returns [(committed offsets, error or None)] of those completed."""
        raise NotImplementedError
    def committed(self, partitions): raise NotImplementedError  # -> {partition: offset or None}
    def assignment(self): raise NotImplementedError  # -> set of partitions
    def close(self): raise NotImplementedError


def verify(rec, acks):
    """The record read back equals the one sent, at the offset its producer was told."""
    check(rec.key is not None and rec.key.startswith(b"key-"), f"unexpected key {rec.key!r}")
    i = int(rec.key[4:])
    key, value, headers, ts = record(i)
    check(rec.value == value, f"record {i}: value differs ({len(rec.value or b'')} bytes read, {len(value)} sent)")
    check(rec.headers == headers, f"record {i}: headers {rec.headers!r}, sent {headers!r}")
    check(rec.timestamp == ts, f"record {i}: timestamp {rec.timestamp}, sent {ts}")
    if i in acks:
        check(acks[i] == (rec.partition, rec.offset),
              f"record {i} read at {rec.partition}/{rec.offset}, producer was acked {acks[i]}")
    return i


def run(client, topic):
    state = {"acks": {}, "seen": {}, "committed": {}}
    steps = [
        ("create_topic", lambda: step_create(client, topic)),
        ("produce", lambda: step_produce(client, topic, state)),
        ("consume_commit", lambda: step_consume_commit(client, topic, state)),
        ("resume", lambda: step_resume(client, topic, state)),
        ("async_commits", lambda: step_async_commits(client, topic)),
        ("list_offsets", lambda: step_list_offsets(client, topic, state)),
        ("describe_configs", lambda: step_describe_configs(client, topic)),
        ("alter_configs", lambda: step_alter_configs(client, topic)),
        ("log_append_time", lambda: step_log_append_time(client, topic)),
        ("small_fetch", lambda: step_small_fetch(client, topic)),
        ("delete_records", lambda: step_delete_records(client, topic)),
        ("group_split", lambda: step_group_split(client, topic, None)),
        ("group_split_cooperative", lambda: step_group_split(client, topic, client.cooperative_assignor())),
        ("delete_topic", lambda: step_delete(client, topic)),
    ]
    for name, fn in steps:
        log(f"== {name}")
        started = time.monotonic()
        try:
            fn()
            report(name)
        except NotSupported as e:
            report(name, skip=str(e))
        except Exception as e:  # every other outcome is this step's failure
            log(traceback.format_exc())
            report(name, ok=False, error=f"{type(e).__name__}: {e}")
        log(f"   {name}: {time.monotonic() - started:.1f} s")


def step_create(client, topic):
    client.create_topic(topic, PARTITIONS)
    deadline = time.monotonic() + PATIENCE_S
    while topic not in client.list_topics():
        check(time.monotonic() < deadline, f"{topic} not listed after create")
        time.sleep(0.2)


def step_produce(client, topic, state):
    records = [(i,) + record(i) for i in range(RECORDS)]
    try:
        acks = client.produce(topic, records, idempotent=client.idempotent)
        fallback = None
    except Exception as e:
        if not client.idempotent:
            raise
        # Keep the steps after this one meaningful: produce the same records without
        # idempotence (an idempotent producer that cannot start sends nothing), and
        # still report this step's failure.
        log(traceback.format_exc())
        fallback = f"idempotent produce failed: {type(e).__name__}: {e}"
        log(f"   {fallback}; producing without idempotence for the steps after this one")
        acks = client.produce(topic, records, idempotent=False)
    check_acks(acks)
    state["acks"] = acks
    if fallback:
        raise Fail(fallback + " (without idempotence all 10,000 were acknowledged)")


def check_acks(acks):
    check(len(acks) == RECORDS, f"{len(acks)} of {RECORDS} records acknowledged")
    by_partition = {}
    for i, (p, off) in acks.items():
        by_partition.setdefault(p, []).append(off)
    check(set(by_partition) == set(range(PARTITIONS)),
          f"keys landed in partitions {sorted(by_partition)}, expected all of 0..{PARTITIONS - 1}")
    for p, offs in by_partition.items():
        check(sorted(offs) == list(range(len(offs))), f"partition {p}: acked offsets are not dense from 0")


def step_consume_commit(client, topic, state):
    acks, seen = state["acks"], state["seen"]
    group = f"{topic}-g"
    c = client.consumer(topic, group)
    try:
        deadline = time.monotonic() + PATIENCE_S
        while len(seen) < RECORDS // 2:
            check(time.monotonic() < deadline, f"read {len(seen)} records in {PATIENCE_S} s, wanted {RECORDS // 2}")
            for rec in c.poll(1.0):
                i = verify(rec, acks)
                check(i not in seen, f"record {i} delivered twice")
                seen[i] = (rec.partition, rec.offset)
        nexts = {}
        for p, off in seen.values():
            nexts[p] = max(nexts.get(p, 0), off + 1)
        c.commit(nexts)
        committed = c.committed(list(range(PARTITIONS)))
        for p in range(PARTITIONS):
            check(committed.get(p) == nexts.get(p),
                  f"partition {p}: committed offset reads back {committed.get(p)}, committed {nexts.get(p)}")
        state["committed"] = nexts
    finally:
        c.close()


def step_resume(client, topic, state):
    acks, seen, committed = state["acks"], state["seen"], state["committed"]
    check(committed, "nothing was committed by consume_commit")
    c = client.consumer(topic, f"{topic}-g")
    first = {}
    again = {}
    try:
        deadline = time.monotonic() + PATIENCE_S
        while len(seen) + len(again) < RECORDS:
            check(time.monotonic() < deadline,
                  f"after restart read {len(again)} records in {PATIENCE_S} s, {RECORDS - len(seen)} remained")
            for rec in c.poll(1.0):
                first.setdefault(rec.partition, rec.offset)
                i = verify(rec, acks)
                check(i not in seen, f"record {i} ({rec.partition}/{rec.offset}) was read before the commit and again after restart")
                check(i not in again, f"record {i} delivered twice after restart")
                again[i] = (rec.partition, rec.offset)
        for p, off in first.items():
            check(off == committed.get(p, 0),
                  f"partition {p}: restarted consumer began at offset {off}, committed {committed.get(p, 0)}")
    finally:
        c.close()
    seen.update(again)


def step_async_commits(client, topic):
    """ASYNC_COMMITS asynchronous commits of offsets 1..ASYNC_COMMITS of partition 0, sent without
    waiting, then a synchronous commit of one more: that last one is what the group holds."""
    group = f"{topic}-async"
    final = ASYNC_COMMITS + 1
    c = client.assigned_consumer(topic, group, [0])
    try:
        # The client learns the group's coordinator first: librdkafka queues commits until
        # it knows it (and may reorder that queue, against Kafka too).
        before = c.committed([0]).get(0)
        check(before is None, f"a new group has committed offset {before} for partition 0")
        for off in range(1, ASYNC_COMMITS + 1):
            c.commit_async({0: off})
        c.commit({0: final})
        got = c.committed([0]).get(0)
        check(got == final, f"after {ASYNC_COMMITS} asynchronous commits of 1..{ASYNC_COMMITS} and a synchronous "
                            f"commit of {final}, the committed offset reads back {got}")
        outcomes = c.async_commit_outcomes(ASYNC_COMMITS, PATIENCE_S)
        failed = [(offs, err) for offs, err in outcomes if err is not None]
        check(not failed, f"{len(failed)} of the asynchronous commits failed, first: {failed[:1]}")
        check(len(outcomes) == ASYNC_COMMITS,
              f"{len(outcomes)} of {ASYNC_COMMITS} asynchronous commits completed within {PATIENCE_S} s")
    finally:
        c.close()
    c = client.assigned_consumer(topic, group, [0])
    try:
        got = c.committed([0]).get(0)
        check(got == final, f"a new consumer of the group reads committed offset {got}, expected {final}")
    finally:
        c.close()


def read_all(c, count, what):
    """Polls c until `count` records were read; returns them in the order read."""
    out = []
    deadline = time.monotonic() + PATIENCE_S
    while len(out) < count:
        check(time.monotonic() < deadline, f"{what}: read {len(out)} of {count} records in {PATIENCE_S} s")
        out.extend(c.poll(1.0))
    return out


def step_log_append_time(client, topic):
    """A record produced with timestamp LOG_APPEND_TS to a LogAppendTime topic is read back with
    the broker's append time and the LogAppendTime type."""
    lat = f"{topic}-lat"
    client.create_topic(lat, 1, {"message.timestamp.type": "LogAppendTime"})
    wait_listed(client, lat)
    before = int(time.time() * 1000)
    ((partition, offset, acked_ts),) = client.send(lat, [(0, b"lat", b"log-append-time", LOG_APPEND_TS)])
    after = int(time.time() * 1000)
    check((partition, offset) == (0, 0), f"the record was acknowledged at {partition}/{offset}, expected 0/0")
    c = client.assigned_consumer(lat, f"{lat}-reader", [0])
    try:
        (rec,) = read_all(c, 1, lat)
    finally:
        c.close()
    check(rec.timestamp_type == TIMESTAMP_LOG_APPEND_TIME,
          f"record read with timestamp type {rec.timestamp_type}, expected LogAppendTime ({TIMESTAMP_LOG_APPEND_TIME})")
    check(rec.timestamp != LOG_APPEND_TS, f"record read with the producer's timestamp {LOG_APPEND_TS}, not the append time")
    check(before - CLOCK_SLACK_MS <= rec.timestamp <= after + CLOCK_SLACK_MS,
          f"record read with timestamp {rec.timestamp}, produced between {before} and {after}")
    if acked_ts is not None:
        check(acked_ts == rec.timestamp,
              f"the producer's acknowledgement gave timestamp {acked_ts}, the record reads {rec.timestamp}")


def step_small_fetch(client, topic):
    """BIG_RECORDS records of BIG_SIZE bytes in each of BIG_PARTITIONS partitions, read by a
    consumer whose total fetch limit (FETCH_MAX_BYTES) is far below what the partitions hold."""
    big = f"{topic}-big"
    parts = list(range(BIG_PARTITIONS))
    client.create_topic(big, BIG_PARTITIONS)
    wait_listed(client, big)
    records = [(p, f"big-{p}-{j}".encode(), big_value(p, j), None) for j in range(BIG_RECORDS) for p in parts]
    acks = client.send(big, records, large=True)
    for (p, key, _, _), (ap, off, _) in zip(records, acks):
        j = int(key.split(b"-")[2])
        check((ap, off) == (p, j), f"record {key.decode()} was acknowledged at {ap}/{off}, expected {p}/{j}")
    c = client.assigned_consumer(big, f"{big}-reader", parts, small_fetch=True)
    try:
        got = read_all(c, BIG_RECORDS * BIG_PARTITIONS, f"{big} with fetch.max.bytes={FETCH_MAX_BYTES}")
    finally:
        c.close()
    for p in parts:
        mine = [r for r in got if r.partition == p]
        offsets = [r.offset for r in mine]
        check(offsets == list(range(BIG_RECORDS)), f"partition {p}: read offsets {offsets}, expected 0..{BIG_RECORDS - 1}")
        for j, r in enumerate(mine):
            want = big_value(p, j)
            check(len(r.value or b"") == BIG_SIZE, f"partition {p} offset {j}: {len(r.value or b'')} bytes, sent {BIG_SIZE}")
            check(r.value == want, f"partition {p} offset {j}: value differs from the one sent")


def dr_value(partition, j):
    """delete_records's record j of a partition."""
    return f"dr-value-{partition}-{j}".encode()


def step_delete_records(client, topic):
    """DeleteRecords before offset DR_BEFORE of partition 0 and at the high watermark of partition 1
    of a topic with DR_RECORDS records in each; then one past the high watermark, refused."""
    dr = f"{topic}-dr"
    parts = list(range(DR_PARTITIONS))
    client.create_topic(dr, DR_PARTITIONS)
    wait_listed(client, dr)
    records = [(p, f"dr-{p}-{j}".encode(), dr_value(p, j), None) for j in range(DR_RECORDS) for p in parts]
    acks = client.send(dr, records)
    for (p, key, _, _), (ap, off, _) in zip(records, acks):
        j = int(key.split(b"-")[2])
        check((ap, off) == (p, j), f"record {key.decode()} was acknowledged at {ap}/{off}, expected {p}/{j}")
    low = client.delete_records(dr, {0: DR_BEFORE, 1: HIGH_WATERMARK})
    want = {0: DR_BEFORE, 1: DR_RECORDS}
    check(low == want, f"DeleteRecords before offset {DR_BEFORE} of partition 0 and {HIGH_WATERMARK} (the high "
                       f"watermark) of partition 1 answered low watermarks {low}, expected {want}")
    earliest = client.list_offsets(dr, parts, "earliest")
    check(earliest == want, f"after DeleteRecords the earliest offsets are {earliest}, expected {want}")
    latest = client.list_offsets(dr, parts, "latest")
    check(latest == {p: DR_RECORDS for p in parts},
          f"after DeleteRecords the latest offsets are {latest}, expected {DR_RECORDS} everywhere")
    c = client.assigned_consumer(dr, f"{dr}-reader", [0])
    try:
        got = read_all(c, DR_RECORDS - DR_BEFORE, f"{dr} partition 0 from the beginning")
    finally:
        c.close()
    offsets = [(r.partition, r.offset) for r in got]
    check(offsets == [(0, j) for j in range(DR_BEFORE, DR_RECORDS)],
          f"a consumer from the beginning of partition 0 read {offsets}, expected offsets {DR_BEFORE}..{DR_RECORDS - 1}")
    for r in got:
        check(r.key == f"dr-0-{r.offset}".encode() and r.value == dr_value(0, r.offset),
              f"partition 0 offset {r.offset}: read key {r.key!r} value {r.value!r}, sent dr-0-{r.offset}")
    try:
        client.delete_records(dr, {0: DR_RECORDS + 1})
    except Refused as e:
        check(e.code == OFFSET_OUT_OF_RANGE, f"DeleteRecords before offset {DR_RECORDS + 1} of partition 0 (high "
                                             f"watermark {DR_RECORDS}) was refused with {e}, expected error code "
                                             f"{OFFSET_OUT_OF_RANGE} (OFFSET_OUT_OF_RANGE)")
    else:
        raise Fail(f"DeleteRecords before offset {DR_RECORDS + 1} of partition 0, past its high watermark "
                   f"{DR_RECORDS}, was accepted")
    earliest = client.list_offsets(dr, [0], "earliest")
    check(earliest == {0: DR_BEFORE}, f"after the refused DeleteRecords partition 0's earliest offset is "
                                      f"{earliest.get(0)}, was {DR_BEFORE}")


def wait_listed(client, topic):
    deadline = time.monotonic() + PATIENCE_S
    while topic not in client.list_topics():
        check(time.monotonic() < deadline, f"{topic} not listed after create")
        time.sleep(0.2)


def step_list_offsets(client, topic, state):
    placed = state["seen"] or state["acks"]
    check(len(placed) == RECORDS, f"only {len(placed)} records known, cannot check offsets")
    counts = {p: 0 for p in range(PARTITIONS)}
    for p, _ in placed.values():
        counts[p] += 1
    parts = list(range(PARTITIONS))
    earliest = client.list_offsets(topic, parts, "earliest")
    check(earliest == {p: 0 for p in parts}, f"earliest offsets {earliest}, expected 0 everywhere")
    latest = client.list_offsets(topic, parts, "latest")
    check(latest == counts, f"latest offsets {latest}, expected {counts}")
    # By timestamp: record i has timestamp BASE_TS + i; for each partition ask for the
    # timestamp of the record in its middle and expect that record's offset.
    by_part = {}
    for i, (p, off) in placed.items():
        by_part.setdefault(p, []).append((off, i))
    for p in parts:
        rows = sorted(by_part[p])
        off, i = rows[len(rows) // 2]
        found = client.list_offsets(topic, [p], BASE_TS + i)
        check(found.get(p) == off, f"partition {p}: offset for timestamp {BASE_TS + i} is {found.get(p)}, expected {off}")
    found = client.list_offsets(topic, parts, BASE_TS + RECORDS + 1000)
    check(all(found.get(p) in (-1, None) for p in parts),
          f"a timestamp after every record gave {found}, expected -1 (none) everywhere")


def step_describe_configs(client, topic):
    configs = client.describe_configs(topic)
    check(configs, "no configs described")
    check("cleanup.policy" in configs, f"cleanup.policy missing from {sorted(configs)}")
    check(configs["cleanup.policy"] == "delete", f"cleanup.policy is {configs['cleanup.policy']!r}")


def step_alter_configs(client, topic):
    incremental = client.incremental_alter_configs
    api = "IncrementalAlterConfigs" if incremental else "AlterConfigs"
    if incremental:
        client.alter_configs(topic, [("set", "retention.ms", RETENTION_MS), ("append", "cleanup.policy", "compact")])
    else:
        client.alter_configs(topic, [("set", "retention.ms", RETENTION_MS)])
    configs = client.describe_configs(topic)
    check(configs.get("retention.ms") == RETENTION_MS,
          f"after {api} set retention.ms={RETENTION_MS} it is {configs.get('retention.ms')!r}")
    if incremental:
        policies = (configs.get("cleanup.policy") or "").split(",")
        check("delete" in policies and "compact" in policies,
              f"after {api} append cleanup.policy=compact it is {configs.get('cleanup.policy')!r}")

    try:
        client.alter_configs(topic, [("set", "retention.ms", "soon")])
    except Refused as e:
        check(e.code == INVALID_CONFIG, f"{api} retention.ms=soon was refused with {e}, expected error code "
                                        f"{INVALID_CONFIG} (INVALID_CONFIG)")
    else:
        raise Fail(f"{api} retention.ms=soon was accepted")
    configs = client.describe_configs(topic)
    check(configs.get("retention.ms") == RETENTION_MS,
          f"after the refused {api} retention.ms is {configs.get('retention.ms')!r}, was {RETENTION_MS}")

    if incremental:
        client.alter_configs(topic, [("delete", "retention.ms", None)])
        how = f"{api} delete retention.ms"
    else:
        client.alter_configs(topic, [])
        how = f"{api} naming no config"
    configs = client.describe_configs(topic)
    check(configs.get("retention.ms") == DEFAULT_RETENTION_MS,
          f"after {how} retention.ms is {configs.get('retention.ms')!r}, expected the default {DEFAULT_RETENTION_MS}")
    if incremental:
        policies = (configs.get("cleanup.policy") or "").split(",")
        check("delete" in policies and "compact" in policies,
              f"after {how} cleanup.policy is {configs.get('cleanup.policy')!r}, expected delete and compact")


def step_group_split(client, topic, assignor):
    group = f"{topic}-split-{assignor or 'default'}"
    a = client.consumer(topic, group, assignor)
    b = None
    try:
        # a owns everything first, then b joins and the group rebalances.
        deadline = time.monotonic() + PATIENCE_S
        while len(a.assignment()) < PARTITIONS:
            check(time.monotonic() < deadline, f"a lone consumer got {sorted(a.assignment())}")
            a.poll(0.2)
        b = client.consumer(topic, group, assignor)
        stable = 0
        while stable < 5:
            check(time.monotonic() < deadline,
                  f"no split within {PATIENCE_S} s: a has {sorted(a.assignment())}, b has {sorted(b.assignment())}")
            a.poll(0.2)
            b.poll(0.2)
            sa, sb = a.assignment(), b.assignment()
            if sa and sb and not (sa & sb) and (sa | sb) == set(range(PARTITIONS)):
                stable += 1
            else:
                stable = 0
    finally:
        a.close()
        if b is not None:
            b.close()


def step_delete(client, topic):
    client.delete_topic(topic)
    deadline = time.monotonic() + PATIENCE_S
    while topic in client.list_topics():
        check(time.monotonic() < deadline, f"{topic} still listed {PATIENCE_S} s after delete")
        time.sleep(0.2)
