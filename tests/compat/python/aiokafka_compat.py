"""aiokafka in Weir's compatibility scenario.

    python aiokafka_compat.py BOOTSTRAP TOPIC

AIOKafkaAdminClient for topics, configs (alter_configs is AlterConfigs; aiokafka has
no incremental API) and delete_records; an idempotent AIOKafkaProducer (acks=all);
AIOKafkaConsumer with subscribe() for the groups (its default assignors, range and
roundrobin; aiokafka has no cooperative-sticky) and for offset lookups. The coroutines
run on one event loop driven from scenario.py's steps, so consumers' background tasks
(heartbeats, rebalances) progress while a step polls. Checks live in scenario.py.
"""

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import BrokerResponseError
from aiokafka.structs import OffsetAndMetadata

import scenario

LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)


def wait(coro):
    return LOOP.run_until_complete(asyncio.wait_for(coro, scenario.PATIENCE_S))


def started(cls, *args, **kwargs):
    """aiokafka objects are made inside a coroutine, on the loop that runs them."""
    async def make():
        obj = cls(*args, **kwargs)
        await obj.start()
        return obj
    return wait(make())


def check_errors(response, what):
    for t in response.to_object().get("topic_errors", response.to_object().get("topic_error_codes", [])):
        code = t.get("error_code", 0)
        scenario.check(code == 0, f"{what} {t.get('topic')}: error code {code} {t.get('error_message') or ''}")


class AIOConsumer(scenario.Consumer):
    def __init__(self, topic, partitions=None, **conf):
        """Subscribed to topic, or assigned its partitions when given."""
        self.topic = topic
        if partitions is None:
            self.c = started(AIOKafkaConsumer, topic, **conf)
        else:
            async def assigned():
                c = AIOKafkaConsumer(**conf)
                await c.start()
                c.assign([TopicPartition(topic, p) for p in partitions])  # on the loop, as it makes futures
                return c
            self.c = wait(assigned())

    def poll(self, timeout_s):
        out = []
        for tp, msgs in wait(self.c.getmany(timeout_ms=int(timeout_s * 1000), max_records=1000)).items():
            for m in msgs:
                out.append(scenario.Rec(m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp,
                                        m.timestamp_type))
        return out

    def commit(self, offsets):
        wait(self.c.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "") for p, o in offsets.items()}))

    def commit_async(self, offsets):
        raise scenario.NotSupported(
            "aiokafka has no pipelined commits: commit() is a coroutine, and GroupCoordinator.commit_offsets "
            "holds its _commit_lock across each OffsetCommit request and its response, so commits fired "
            "as concurrent tasks go out one at a time (and a commit awaited directly goes out before the tasks "
            "fired ahead of it)")

    def committed(self, partitions):
        return {p: wait(self.c.committed(TopicPartition(self.topic, p))) for p in partitions}

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        wait(self.c.stop())


class AIOKafka(scenario.Client):
    name = "aiokafka"

    def __init__(self, bootstrap):
        self.common = {"bootstrap_servers": bootstrap, "client_id": "weir-compat-aiokafka"}
        self.admin = started(AIOKafkaAdminClient, **self.common)
        self.lookup = started(AIOKafkaConsumer, **self.common, enable_auto_commit=False)

    def create_topic(self, topic, partitions, configs=None):
        new = NewTopic(topic, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})
        check_errors(wait(self.admin.create_topics([new])), "create topic")

    def produce(self, topic, records, idempotent):
        async def go():
            p = AIOKafkaProducer(**self.common, acks="all", enable_idempotence=idempotent, linger_ms=5)
            await p.start()
            try:
                futures = []
                for i, key, value, headers, ts in records:
                    futures.append((i, await p.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)))
                acks = {}
                for i, f in futures:
                    md = await f
                    acks[i] = (md.partition, md.offset)
                return acks
            finally:
                await p.stop()
        return wait(go())

    def send(self, topic, records, large=False):
        async def go():
            conf = dict(self.common, acks="all", linger_ms=100)
            if large:
                # A batch of three 300,000-byte records (Kafka's max.message.bytes is 1 MiB),
                # and requests that carry every batch ready for the broker.
                conf.update(max_batch_size=1_000_000, max_request_size=16_000_000)
            p = AIOKafkaProducer(**conf)
            await p.start()
            try:
                futures = [await p.send(topic, key=key, value=value, partition=partition, timestamp_ms=ts)
                           for partition, key, value, ts in records]
                out = []
                for f in futures:
                    md = await f
                    out.append((md.partition, md.offset, md.timestamp))
                return out
            finally:
                await p.stop()
        return wait(go())

    def consumer(self, topic, group, assignor=None):
        conf = dict(self.common, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
        if assignor:
            conf["partition_assignment_strategy"] = [assignor]
        return AIOConsumer(topic, **conf)

    def assigned_consumer(self, topic, group, partitions, small_fetch=False):
        conf = dict(self.common, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
        if small_fetch:
            conf.update(fetch_max_bytes=scenario.FETCH_MAX_BYTES,
                        max_partition_fetch_bytes=scenario.PARTITION_FETCH_MAX_BYTES)
        return AIOConsumer(topic, partitions, **conf)

    def list_offsets(self, topic, partitions, spec):
        tps = [TopicPartition(topic, p) for p in partitions]
        if spec == "earliest":
            found = wait(self.lookup.beginning_offsets(tps))
        elif spec == "latest":
            found = wait(self.lookup.end_offsets(tps))
        else:
            found = {tp: (o.offset if o is not None else -1)
                     for tp, o in wait(self.lookup.offsets_for_times({tp: spec for tp in tps})).items()}
        return {tp.partition: o for tp, o in found.items()}

    def describe_configs(self, topic):
        (response,) = wait(self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
        configs = {}
        for res in response.to_object()["resources"]:
            scenario.check(res["error_code"] == 0, f"describe configs: error code {res['error_code']} {res.get('error_message')}")
            for entry in res["config_entries"]:
                configs[entry["config_names"]] = entry["config_value"]
        return configs

    incremental_alter_configs = False

    def alter_configs(self, topic, changes):
        scenario.check(all(op == "set" for op, _, _ in changes), f"AlterConfigs can only set: {changes}")
        configs = {name: value for _, name, value in changes}
        (response,) = wait(self.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)]))
        resources = response.to_object()["resources"]
        scenario.check([r["resource_name"] for r in resources] == [topic],
                       f"AlterConfigs for {topic} answered for {[r['resource_name'] for r in resources]}")
        for res in resources:
            if res["error_code"] != 0:
                raise scenario.Refused(res["error_code"], res.get("error_message"))

    def delete_records(self, topic, offsets):
        try:
            # {TopicPartition: low watermark}; a partition's error code is raised as its class.
            return {tp.partition: low for tp, low in wait(self.admin.delete_records(
                {TopicPartition(topic, p): RecordsToDelete(o) for p, o in offsets.items()},
                timeout_ms=scenario.PATIENCE_S * 1000)).items()}
        except BrokerResponseError as e:
            raise scenario.Refused(e.errno, f"{type(e).__name__}: {e}") from e

    def delete_topic(self, topic):
        check_errors(wait(self.admin.delete_topics([topic])), "delete topic")

    def list_topics(self):
        return set(wait(self.admin.list_topics()))


if __name__ == "__main__":
    bootstrap, topic = sys.argv[1], sys.argv[2]
    scenario.run(AIOKafka(bootstrap), topic)
