"""kafka-python in Weir's compatibility scenario.

    python kafka_python_compat.py BOOTSTRAP TOPIC

KafkaAdminClient for topics, configs (alter_configs with incremental=False, so
AlterConfigs: the incremental API is covered by the Java and confluent-kafka programs)
and delete_records; an idempotent KafkaProducer (acks=all); KafkaConsumer with
subscribe() for the groups (default assignors range,roundrobin, then cooperative-sticky)
and for offset lookups. Checks live in scenario.py.
"""

import re
import sys
import time

import kafka.errors
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.consumer.group import OffsetAndMetadata

import scenario

TIMEOUT = scenario.PATIENCE_S


class KPConsumer(scenario.Consumer):
    def __init__(self, topic, partitions=None, **conf):
        """Subscribed to topic, or assigned its partitions when given."""
        self.topic = topic
        self.async_futures = []
        self.c = KafkaConsumer(**conf)
        if partitions is None:
            self.c.subscribe([topic])
        else:
            self.c.assign([TopicPartition(topic, p) for p in partitions])

    def poll(self, timeout_s):
        out = []
        for tp, msgs in self.c.poll(timeout_ms=int(timeout_s * 1000), max_records=1000).items():
            for m in msgs:
                out.append(scenario.Rec(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp,
                                        m.timestamp_type))
        return out

    def offsets(self, offsets):
        return {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}

    def commit(self, offsets):
        self.c.commit(self.offsets(offsets))

    def commit_async(self, offsets):
        # Sent at once on the coordinator's connection: kafka-python fails a request beyond
        # max_in_flight_requests_per_connection with NodeNotReadyError ("Node paused"), so
        # assigned_consumer raises that above the step's 200 commits.
        self.async_futures.append((offsets, self.c.commit_async(self.offsets(offsets))))

    def async_commit_outcomes(self, count, timeout_s):
        deadline = time.monotonic() + timeout_s
        while sum(f.is_done for _, f in self.async_futures) < count and time.monotonic() < deadline:
            self.c.poll(timeout_ms=100)
        return [(offsets, None if f.succeeded() else repr(f.exception)) for offsets, f in self.async_futures if f.is_done]

    def committed(self, partitions):
        return {p: self.c.committed(TopicPartition(self.topic, p)) for p in partitions}

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        self.c.close()


class KafkaPython(scenario.Client):
    name = "kafka-python"

    def __init__(self, bootstrap):
        self.common = {"bootstrap_servers": bootstrap, "client_id": "weir-compat-kafka-python"}
        self.admin = KafkaAdminClient(**self.common)
        self.lookup = KafkaConsumer(**self.common, enable_auto_commit=False)

    def create_topic(self, topic, partitions, configs=None):
        self.admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                           topic_configs=configs or {})])

    def produce(self, topic, records, idempotent):
        p = KafkaProducer(**self.common, acks="all", enable_idempotence=idempotent, linger_ms=5)
        try:
            futures = [(i, p.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
                       for i, key, value, headers, ts in records]
            p.flush(timeout=TIMEOUT)
            acks = {}
            for i, f in futures:
                md = f.get(timeout=TIMEOUT)
                acks[i] = (md.partition, md.offset)
            return acks
        finally:
            p.close(timeout=5)

    def send(self, topic, records, large=False):
        conf = dict(self.common, acks="all", linger_ms=100)
        if large:
            # A batch of three 300,000-byte records (Kafka's max.message.bytes is 1 MiB), and
            # requests that carry every batch ready for the broker.
            conf.update(batch_size=1_000_000, max_request_size=16_000_000)
        p = KafkaProducer(**conf)
        try:
            futures = [p.send(topic, key=key, value=value, partition=partition, timestamp_ms=ts)
                       for partition, key, value, ts in records]
            p.flush(timeout=TIMEOUT)
            out = []
            for f in futures:
                md = f.get(timeout=TIMEOUT)
                out.append((md.partition, md.offset, md.timestamp))
            return out
        finally:
            p.close(timeout=5)

    def consumer(self, topic, group, assignor=None):
        conf = dict(self.common, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
        if assignor:
            conf["partition_assignment_strategy"] = [assignor]
        return KPConsumer(topic, **conf)

    def assigned_consumer(self, topic, group, partitions, small_fetch=False):
        conf = dict(self.common, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                    max_in_flight_requests_per_connection=scenario.ASYNC_COMMITS + 16)
        if small_fetch:
            conf.update(fetch_max_bytes=scenario.FETCH_MAX_BYTES,
                        max_partition_fetch_bytes=scenario.PARTITION_FETCH_MAX_BYTES)
        return KPConsumer(topic, partitions, **conf)

    def cooperative_assignor(self):
        from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
        return CooperativeStickyAssignor

    def list_offsets(self, topic, partitions, spec):
        tps = [TopicPartition(topic, p) for p in partitions]
        if spec == "earliest":
            found = self.lookup.beginning_offsets(tps)
        elif spec == "latest":
            found = self.lookup.end_offsets(tps)
        else:
            found = {tp: (o.offset if o is not None else -1)
                     for tp, o in self.lookup.offsets_for_times({tp: spec for tp in tps}).items()}
        return {tp.partition: o for tp, o in found.items()}

    def describe_configs(self, topic):
        r = self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        return {k: v["value"] for k, v in r["topic"][topic].items()}

    incremental_alter_configs = False

    def alter_configs(self, topic, changes):
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        if changes:
            scenario.check(all(op == "set" for op, _, _ in changes), f"AlterConfigs can only set: {changes}")
            resource.configs = {name: value for _, name, value in changes}
            # kafka-python adds the topic's other modified configs to the request, so that
            # AlterConfigs does not reset them; in the scenario there are none.
            result = self.admin.alter_configs([resource], incremental=False)
        else:
            # A reset of the whole topic: AlterConfigs naming no config.
            result = self.admin.reset_configs([resource], incremental=False)
        # {"topic": {name: "OK" or str(the error class for the response's error code)}}
        outcome = result["topic"][topic]
        if outcome != "OK":
            m = re.match(r"\[Error (-?\d+)\] (.*)", outcome, re.S)
            if not m:
                raise scenario.Fail(f"alter configs: {outcome}")
            raise scenario.Refused(int(m[1]), m[2])

    def delete_records(self, topic, offsets):
        try:
            # {TopicPartition: the response's partition, as a dict}
            result = self.admin.delete_records({TopicPartition(topic, p): o for p, o in offsets.items()},
                                               timeout_ms=TIMEOUT * 1000)
        except kafka.errors.BrokerResponseError as e:
            # One partition's error code is raised as its class; several as BrokerResponseError.
            raise scenario.Refused(e.errno, str(e)) from e
        return {tp.partition: r["low_watermark"] for tp, r in result.items()}

    def delete_topic(self, topic):
        self.admin.delete_topics([topic])

    def list_topics(self):
        return set(self.admin.list_topics())


if __name__ == "__main__":
    bootstrap, topic = sys.argv[1], sys.argv[2]
    scenario.run(KafkaPython(bootstrap), topic)
