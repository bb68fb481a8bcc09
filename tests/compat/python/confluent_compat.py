"""confluent-kafka (Python, librdkafka) in Weir's compatibility scenario.

    python confluent_compat.py BOOTSTRAP TOPIC

AdminClient for topics, offsets, configs (incremental_alter_configs to alter them) and
delete_records; an idempotent Producer (acks=all); Consumer with subscribe() for the
groups (default assignor range,roundrobin, then cooperative-sticky with incremental
assign). Checks live in scenario.py.
"""

import logging
import sys
import time

from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   OffsetSpec)

import scenario

TIMEOUT = scenario.PATIENCE_S


# librdkafka's timestamp types, as Kafka's.
TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: scenario.TIMESTAMP_CREATE_TIME,
                   TIMESTAMP_LOG_APPEND_TIME: scenario.TIMESTAMP_LOG_APPEND_TIME}


class ConfluentConsumer(scenario.Consumer):
    def __init__(self, conf, topic, partitions=None):
        """Subscribed to topic, or assigned its partitions when given."""
        self.topic = topic
        self.async_sent = set()  # (partition, offset) of each commit_async
        self.async_outcomes = []  # [({partition: offset}, error or None)]
        self.c = Consumer({**conf, "on_commit": self.on_commit})
        if partitions is None:
            self.c.subscribe([topic])
        else:
            self.c.assign([TopicPartition(topic, p) for p in partitions])

    def on_commit(self, err, partitions):
        offsets = {tp.partition: tp.offset for tp in partitions if tp.topic == self.topic}
        if offsets and all((p, o) in self.async_sent for p, o in offsets.items()):
            errors = [str(tp.error) for tp in partitions if tp.error]
            self.async_outcomes.append((offsets, str(err) if err else (errors[0] if errors else None)))

    def poll(self, timeout_s):
        out = []
        for m in self.c.consume(num_messages=1000, timeout=timeout_s):
            if m.error():
                raise KafkaException(m.error())
            ts_type, ts = m.timestamp()
            out.append(scenario.Rec(m.partition(), m.offset(), m.key(), m.value(), m.headers(), ts,
                                    TIMESTAMP_TYPES.get(ts_type)))
        return out

    def commit(self, offsets):
        tps = [TopicPartition(self.topic, p, o) for p, o in offsets.items()]
        for tp in self.c.commit(offsets=tps, asynchronous=False):
            if tp.error:
                raise KafkaException(tp.error)

    def commit_async(self, offsets):
        self.async_sent.update(offsets.items())
        self.c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=True)

    def async_commit_outcomes(self, count, timeout_s):
        # on_commit is served by poll(); with auto-commit off nothing else is committed.
        deadline = time.monotonic() + timeout_s
        while len(self.async_outcomes) < count and time.monotonic() < deadline:
            self.c.poll(0.1)
        return list(self.async_outcomes)

    def committed(self, partitions):
        tps = self.c.committed([TopicPartition(self.topic, p) for p in partitions], timeout=TIMEOUT)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        self.c.close()


class Confluent(scenario.Client):
    name = "confluent-kafka"

    def __init__(self, bootstrap):
        self.common = {"bootstrap.servers": bootstrap, "client.id": "weir-compat-confluent"}
        self.admin = AdminClient(self.common)

    def create_topic(self, topic, partitions, configs=None):
        new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=configs or {})
        for _, f in self.admin.create_topics([new]).items():
            f.result(timeout=TIMEOUT)

    def produce(self, topic, records, idempotent):
        acks, errors, fatal = {}, [], []

        def on_error(err):
            if err.fatal():
                fatal.append(str(err))

        class FatalLog(logging.Handler):
            # librdkafka logs a fatal error before confluent-kafka raises it from flush()
            def emit(self, rec):
                if "Fatal error" in rec.getMessage():
                    fatal.append(rec.getMessage())

        logger = logging.getLogger(f"librdkafka-{idempotent}")
        logger.addHandler(FatalLog())
        logger.addHandler(logging.StreamHandler(sys.stderr))
        p = Producer({**self.common, "acks": "all", "enable.idempotence": idempotent, "linger.ms": 5,
                      "error_cb": on_error}, logger=logger)

        def on_delivery(i):
            def cb(err, msg):
                if err is not None:
                    errors.append(f"record {i}: {err}")
                else:
                    acks[i] = (msg.partition(), msg.offset())
            return cb

        for i, key, value, headers, ts in records:
            while True:
                try:
                    p.produce(topic, key=key, value=value, headers=headers, timestamp=ts, on_delivery=on_delivery(i))
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
            if errors or fatal:
                break
        try:
            remaining = p.flush(TIMEOUT)
        except Exception:
            try:
                p.poll(1)  # serve error_cb, which says why the producer stopped
            except Exception:
                pass
            if fatal:
                raise scenario.Fail(f"fatal producer error: {fatal[0]}") from None
            raise
        if fatal:
            raise scenario.Fail(f"fatal producer error: {fatal[0]}")
        if errors:
            raise scenario.Fail(f"{len(errors)} delivery errors, first: {errors[0]}")
        scenario.check(remaining == 0, f"{remaining} records still unacknowledged after {TIMEOUT} s")
        return acks

    def send(self, topic, records, large=False):
        # librdkafka's defaults fit records of 300,000 bytes: message.max.bytes (its largest
        # request) and batch.size are 1,000,000; linger.ms lets batches fill.
        p = Producer({**self.common, "acks": "all", "linger.ms": 100})
        acks, errors = [None] * len(records), []

        def on_delivery(n):
            def cb(err, msg):
                if err is not None:
                    errors.append(f"record {n}: {err}")
                else:
                    ts_type, ts = msg.timestamp()
                    acks[n] = (msg.partition(), msg.offset(), ts if ts_type in TIMESTAMP_TYPES else None)
            return cb

        for n, (partition, key, value, ts) in enumerate(records):
            extra = {"timestamp": ts} if ts is not None else {}
            p.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery(n), **extra)
        remaining = p.flush(TIMEOUT)
        scenario.check(not errors, f"{len(errors)} delivery errors, first: {errors[:1]}")
        scenario.check(remaining == 0, f"{remaining} records still unacknowledged after {TIMEOUT} s")
        return acks

    def consumer(self, topic, group, assignor=None):
        conf = {**self.common, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
        if assignor:
            conf["partition.assignment.strategy"] = assignor
        return ConfluentConsumer(conf, topic)

    def assigned_consumer(self, topic, group, partitions, small_fetch=False):
        conf = {**self.common, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
        if small_fetch:
            # receive.message.max.bytes (the largest response librdkafka reads) must exceed
            # fetch.max.bytes by at least 512.
            conf.update({"fetch.max.bytes": scenario.FETCH_MAX_BYTES,
                         "receive.message.max.bytes": scenario.FETCH_MAX_BYTES + 512,
                         "max.partition.fetch.bytes": scenario.PARTITION_FETCH_MAX_BYTES})
        return ConfluentConsumer(conf, topic, partitions)

    def cooperative_assignor(self):
        return "cooperative-sticky"

    def list_offsets(self, topic, partitions, spec):
        if spec == "earliest":
            s = OffsetSpec.earliest()
        elif spec == "latest":
            s = OffsetSpec.latest()
        else:
            s = OffsetSpec.for_timestamp(spec)
        futures = self.admin.list_offsets({TopicPartition(topic, p): s for p in partitions})
        return {tp.partition: f.result(timeout=TIMEOUT).offset for tp, f in futures.items()}

    def describe_configs(self, topic):
        futures = self.admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        (f,) = futures.values()
        return {name: entry.value for name, entry in f.result(timeout=TIMEOUT).items()}

    def alter_configs(self, topic, changes):
        ops = {"set": AlterConfigOpType.SET, "append": AlterConfigOpType.APPEND, "delete": AlterConfigOpType.DELETE}
        entries = [ConfigEntry(name, value, incremental_operation=ops[op]) for op, name, value in changes]
        futures = self.admin.incremental_alter_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)])
        (f,) = futures.values()
        try:
            f.result(timeout=TIMEOUT)
        except KafkaException as e:
            err = e.args[0]
            raise scenario.Refused(err.code(), f"{err.name()}: {err.str()}") from e

    def delete_records(self, topic, offsets):
        futures = self.admin.delete_records([TopicPartition(topic, p, o) for p, o in offsets.items()],
                                            operation_timeout=30)
        low = {}
        for tp, f in futures.items():
            try:
                low[tp.partition] = f.result(timeout=TIMEOUT).low_watermark
            except KafkaException as e:
                err = e.args[0]
                raise scenario.Refused(err.code(), f"{err.name()}: {err.str()}") from e
        return low

    def delete_topic(self, topic):
        for _, f in self.admin.delete_topics([topic], operation_timeout=30).items():
            f.result(timeout=TIMEOUT)

    def list_topics(self):
        return set(self.admin.list_topics(timeout=TIMEOUT).topics)


if __name__ == "__main__":
    bootstrap, topic = sys.argv[1], sys.argv[2]
    scenario.run(Confluent(bootstrap), topic)
