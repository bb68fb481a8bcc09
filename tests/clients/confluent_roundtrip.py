"""confluent-kafka (Python, librdkafka 2.16) against a Weir Kafka listener.

    python confluent_roundtrip.py BOOTSTRAP TOPIC

Creates TOPIC with 3 partitions, produces keyed records with headers and explicit
timestamps with every compression codec (acks=all, no idempotence: Weir has no
InitProducerId yet), then checks what a user of the client would: every record is
acknowledged, offsets per partition are dense from 0 and follow the send order, an
assigning consumer reads every record back exactly once with key, value, headers and
timestamp intact, and watermarks, offsets_for_times and AdminClient.list_offsets agree.
Run by tests/kafka_python.rs; exits non-zero with a message on the first mismatch.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

PARTITIONS = 3
PER_CODEC = 2000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BASE_TS = 1_650_000_000_000
# A bound against hanging, not a timing assertion.
PATIENCE_S = 120


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def record(i, codec):
    key = f"key-{i % 300}".encode()
    value = f"{codec} value {i} ".encode() + bytes((i * 7 + j) % 256 for j in range(i % 120))
    headers = [("seq", str(i).encode()), ("codec", codec.encode())]
    return key, value, headers, BASE_TS + i


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    common = {"bootstrap.servers": bootstrap, "client.id": "weir-e2e-python"}

    admin = AdminClient(common)
    for name, future in admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
    ).items():
        future.result(timeout=PATIENCE_S)  # raises if not created

    sent = []  # (i, key, value, headers, ts) in send order
    acked = {}  # i -> (partition, offset)
    errors = []

    def on_delivery(i):
        def report(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                acked[i] = (msg.partition(), msg.offset())

        return report

    for n, codec in enumerate(CODECS):
        producer = Producer(
            {
                **common,
                "enable.idempotence": False,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": codec,
            }
        )
        for i in range(n * PER_CODEC, (n + 1) * PER_CODEC):
            key, value, headers, ts = record(i, codec)
            sent.append((i, key, value, headers, ts))
            while True:
                try:
                    producer.produce(
                        topic, value=value, key=key, headers=headers, timestamp=ts,
                        on_delivery=on_delivery(i),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        left = producer.flush(PATIENCE_S)
        check(left == 0, f"{codec}: {left} records never got a delivery report")
    check(not errors, f"every record is acknowledged; errors: {errors[:5]}")
    check(len(acked) == len(sent), f"{len(acked)} of {len(sent)} acknowledged")

    by_partition = {}
    key_partition = {}
    for i, key, value, headers, ts in sent:
        partition, offset = acked[i]
        check(key_partition.setdefault(key, partition) == partition,
              f"every record of key {key!r} goes to one partition")
        by_partition.setdefault(partition, []).append((offset, i))
    check(sorted(by_partition) == list(range(PARTITIONS)),
          f"records landed on every partition: {sorted(by_partition)}")
    expected = {}
    for partition, acks in by_partition.items():
        acks.sort()
        offsets = [offset for offset, _ in acks]
        check(offsets == list(range(len(acks))),
              f"partition {partition}: acknowledged offsets are dense from 0")
        order = [i for _, i in acks]
        check(order == sorted(order),
              f"partition {partition}: offsets follow the send order")
        expected[partition] = [sent[i] for i in order]

    consumer = Consumer(
        {
            **common,
            # Required by the client, unused by an assigning consumer.
            "group.id": "weir-e2e-python-assign",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    for partition, records in expected.items():
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=PATIENCE_S
        )
        check((low, high) == (0, len(records)),
              f"partition {partition}: watermarks {(low, high)}, want {(0, len(records))}")

    consumer.assign([TopicPartition(topic, p, 0) for p in expected])
    got = {p: [] for p in expected}
    deadline = time.monotonic() + PATIENCE_S
    while any(len(got[p]) < len(expected[p]) for p in expected):
        if time.monotonic() > deadline:
            fail(f"consumed {[len(got[p]) for p in sorted(got)]} of "
                 f"{[len(expected[p]) for p in sorted(expected)]} records per partition")
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            print(f"consumer error: {msg.error()}", file=sys.stderr)
            continue
        got[msg.partition()].append(msg)
    for partition, records in expected.items():
        offsets = [msg.offset() for msg in got[partition]]
        check(offsets == list(range(len(records))),
              f"partition {partition}: offsets read back are 0..{len(records)}, once each")
        for (i, key, value, headers, ts), msg in zip(records, got[partition]):
            where = f"partition {partition} offset {msg.offset()}"
            check(msg.key() == key, f"{where}: key {msg.key()!r}, want {key!r}")
            check(msg.value() == value, f"{where}: value differs from record {i}")
            check(msg.headers() == headers, f"{where}: headers {msg.headers()}, want {headers}")
            check(msg.timestamp()[1] == ts, f"{where}: timestamp {msg.timestamp()}, want {ts}")

    # The first offset at or after a time, through the consumer and the admin client.
    for partition, records in expected.items():
        pick = records[len(records) // 2]
        want = next(n for n, r in enumerate(records) if r[4] >= pick[4])
        found = consumer.offsets_for_times(
            [TopicPartition(topic, partition, pick[4])], timeout=PATIENCE_S
        )[0]
        check(found.error is None and found.offset == want,
              f"partition {partition}: offsets_for_times({pick[4]}) = {found.offset}, want {want}")
        for spec, want in [
            (OffsetSpec.earliest(), 0),
            (OffsetSpec.latest(), len(records)),
            (OffsetSpec.for_timestamp(pick[4]), want),
        ]:
            tp = TopicPartition(topic, partition)
            result = admin.list_offsets({tp: spec})[tp].result(timeout=PATIENCE_S)
            check(result.offset == want,
                  f"partition {partition}: list_offsets({spec}) = {result.offset}, want {want}")
    consumer.close()
    print(f"ok {len(sent)} records over {PARTITIONS} partitions, codecs {', '.join(CODECS)}")


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        fail(f"client error: {e}")
