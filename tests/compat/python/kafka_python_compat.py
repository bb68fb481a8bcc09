"""kafka-python in Weir's compatibility scenario.

    python kafka_python_compat.py BOOTSTRAP TOPIC

KafkaAdminClient for topics and configs (alter_configs with incremental=False, so
AlterConfigs: the incremental API is covered by the Java and confluent-kafka programs);
an idempotent KafkaProducer (acks=all); KafkaConsumer with subscribe() for the groups
(default assignors range,roundrobin, then cooperative-sticky) and for offset lookups.
Checks live in scenario.py.
"""

import re
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.consumer.group import OffsetAndMetadata

import scenario

TIMEOUT = scenario.PATIENCE_S


class KPConsumer(scenario.Consumer):
    def __init__(self, topic, **conf):
        self.topic = topic
        self.c = KafkaConsumer(**conf)
        self.c.subscribe([topic])

    def poll(self, timeout_s):
        out = []
        for tp, msgs in self.c.poll(timeout_ms=int(timeout_s * 1000), max_records=1000).items():
            for m in msgs:
                out.append(scenario.Rec(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp))
        return out

    def commit(self, offsets):
        self.c.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})

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

    def create_topic(self, topic, partitions):
        self.admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])

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

    def consumer(self, topic, group, assignor=None):
        conf = dict(self.common, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
        if assignor:
            conf["partition_assignment_strategy"] = [assignor]
        return KPConsumer(topic, **conf)

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

    def delete_topic(self, topic):
        self.admin.delete_topics([topic])

    def list_topics(self):
        return set(self.admin.list_topics())


if __name__ == "__main__":
    bootstrap, topic = sys.argv[1], sys.argv[2]
    scenario.run(KafkaPython(bootstrap), topic)
