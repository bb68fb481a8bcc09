// Java kafka-clients in Weir's compatibility scenario: one source, compiled and run against
// 3.9.1 (client "java") and 4.4.0 ("java-4.4", whose consumer keeps the default classic
// group protocol).
//
//     java -cp <classes>:<jars> WeirCompat BOOTSTRAP TOPIC
//
// Admin for topics, offsets, configs (incrementalAlterConfigs to alter them) and
// deleteRecords; the producer with its defaults made explicit (acks=all, enable.idempotence=true);
// KafkaConsumer with subscribe() for the groups (its default assignors, range then
// cooperative-sticky, and CooperativeStickyAssignor alone). Prints one JSON line per step
// for tests/compat/run.py; the scenario and its checks are the same as
// tests/compat/python/scenario.py's.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class WeirCompat {
    static final int PARTITIONS = 4;
    static final int RECORDS = 10_000;
    static final long BASE_TS = 1_700_000_000_000L;
    static final long PATIENCE_MS = 60_000; // a bound against hanging, not a timing assertion
    static final String RETENTION_MS = "7200000";
    static final String DEFAULT_RETENTION_MS = "604800000"; // Kafka's retention.ms default, 7 days
    static final int ASYNC_COMMITS = 200; // async_commits: offsets 1..200, then 201 synchronously
    static final long LOG_APPEND_TS = 1_000_000L; // log_append_time: the timestamp the producer sets
    static final long CLOCK_SLACK_MS = 1000; // the append time may be this far outside the produce
    // small_fetch: 12 records of 300,000 bytes in each of 3 partitions, read with a total fetch
    // limit of 1,000,000 bytes and a per-partition limit of 20,000,000.
    static final int BIG_PARTITIONS = 3, BIG_RECORDS = 12, BIG_SIZE = 300_000;
    static final int FETCH_MAX_BYTES = 1_000_000, PARTITION_FETCH_MAX_BYTES = 20_000_000;
    // delete_records: 10 records in each of 2 partitions; partition 0 loses those before offset
    // 4, partition 1 everything (-1 is the high watermark); offset 11 of partition 0 is past it.
    static final int DR_PARTITIONS = 2, DR_RECORDS = 10, DR_BEFORE = 4;
    static final long HIGH_WATERMARK = -1;

    static String bootstrap, topic;
    static Admin admin;
    static Map<Integer, long[]> acks = new HashMap<>(); // i -> {partition, offset}
    static Map<Integer, long[]> seen = new HashMap<>();
    static Map<Integer, Long> committed = new HashMap<>();

    static class Fail extends RuntimeException {
        Fail(String m) { super(m); }
    }

    static class NotSupported extends RuntimeException {
        NotSupported(String m) { super(m); }
    }

    static void check(boolean cond, String message) {
        if (!cond) throw new Fail(message);
    }

    interface Step { void run() throws Exception; }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static void step(String name, Step body) {
        System.err.println("== " + name);
        long t0 = System.nanoTime();
        try {
            body.run();
            System.out.println("{\"step\":" + json(name) + ",\"ok\":true}");
        } catch (NotSupported e) {
            System.out.println("{\"step\":" + json(name) + ",\"skip\":" + json(e.getMessage()) + "}");
        } catch (Throwable e) {
            e.printStackTrace();
            Throwable root = e;
            while (root.getCause() != null && root != root.getCause()) root = root.getCause();
            String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
            if (root != e) msg += " (cause " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
            System.out.println("{\"step\":" + json(name) + ",\"ok\":false,\"error\":" + json(msg) + "}");
        }
        System.out.flush();
        System.err.printf("   %s: %.1f s%n", name, (System.nanoTime() - t0) / 1e9);
    }

    static byte[] key(int i) { return ("key-" + i).getBytes(StandardCharsets.UTF_8); }

    static byte[] value(int i) {
        byte[] prefix = ("value-" + i + "-").getBytes(StandardCharsets.UTF_8);
        byte[] v = Arrays.copyOf(prefix, prefix.length + i % 200);
        for (int j = 0; j < i % 200; j++) v[prefix.length + j] = (byte) ((i * 31 + j) % 256);
        return v;
    }

    static Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "weir-compat-java");
        return p;
    }

    static int verify(ConsumerRecord<byte[], byte[]> r) {
        String k = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
        check(k.startsWith("key-"), "unexpected key " + k);
        int i = Integer.parseInt(k.substring(4));
        check(Arrays.equals(r.value(), value(i)), "record " + i + ": value differs");
        List<String> hs = new ArrayList<>();
        for (Header h : r.headers()) hs.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
        check(hs.equals(List.of("seq=" + i, "origin=weir-compat")), "record " + i + ": headers " + hs);
        check(r.timestamp() == BASE_TS + i, "record " + i + ": timestamp " + r.timestamp() + ", sent " + (BASE_TS + i));
        long[] a = acks.get(i);
        if (a != null)
            check(a[0] == r.partition() && a[1] == r.offset(), "record " + i + " read at " + r.partition() + "/"
                    + r.offset() + ", producer was acked " + a[0] + "/" + a[1]);
        return i;
    }

    static KafkaConsumer<byte[], byte[]> consumer(String group, String assignor) {
        Properties p = common();
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        if (assignor != null) p.put("partition.assignment.strategy", assignor);
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p);
        c.subscribe(List.of(topic));
        return c;
    }

    /** A consumer of group assigned (not subscribed) to partitions of t, auto-commit off, from the
     *  committed offset or else the earliest. */
    static KafkaConsumer<byte[], byte[]> assignedConsumer(String t, String group, List<Integer> partitions,
                                                         boolean smallFetch) {
        Properties p = common();
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        if (smallFetch) {
            p.put("fetch.max.bytes", Integer.toString(FETCH_MAX_BYTES));
            p.put("max.partition.fetch.bytes", Integer.toString(PARTITION_FETCH_MAX_BYTES));
        }
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p);
        List<TopicPartition> tps = new ArrayList<>();
        for (int part : partitions) tps.add(new TopicPartition(t, part));
        c.assign(tps);
        return c;
    }

    static Long committedOffset(KafkaConsumer<byte[], byte[]> c, TopicPartition tp) {
        OffsetAndMetadata om = c.committed(Set.of(tp), Duration.ofMillis(PATIENCE_MS)).get(tp);
        return om == null ? null : om.offset();
    }

    /** Polls c until count records were read; returns them in the order read. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(KafkaConsumer<byte[], byte[]> c, int count, String what) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.currentTimeMillis() + PATIENCE_MS;
        while (out.size() < count) {
            check(System.currentTimeMillis() < deadline, what + ": read " + out.size() + " of " + count + " records");
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofSeconds(1))) out.add(r);
        }
        return out;
    }

    static void waitListed(String t) throws Exception {
        long deadline = System.currentTimeMillis() + PATIENCE_MS;
        while (!admin.listTopics().names().get(60, TimeUnit.SECONDS).contains(t)) {
            check(System.currentTimeMillis() < deadline, t + " not listed after create");
            Thread.sleep(200);
        }
    }

    /** small_fetch's record j of a partition: BIG_SIZE bytes, distinct per record. */
    static byte[] bigValue(int partition, int j) {
        byte[] prefix = ("big-" + partition + "-" + j + "-").getBytes(StandardCharsets.UTF_8);
        byte[] v = new byte[BIG_SIZE];
        System.arraycopy(prefix, 0, v, 0, prefix.length);
        int start = (partition * BIG_RECORDS + j) % 256;
        for (int k = prefix.length; k < BIG_SIZE; k++) v[k] = (byte) ((start + k - prefix.length) % 256);
        return v;
    }

    static Map<Integer, long[]> produce(boolean idempotent) throws Exception {
        Properties p = common();
        p.put("acks", "all");
        p.put("enable.idempotence", Boolean.toString(idempotent));
        p.put("linger.ms", "5");
        p.put("delivery.timeout.ms", "60000");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        Map<Integer, long[]> got = Collections.synchronizedMap(new HashMap<>());
        List<String> errors = Collections.synchronizedList(new ArrayList<>());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (int n = 0; n < RECORDS && errors.isEmpty(); n++) {
                final int i = n;
                ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, null, BASE_TS + i, key(i), value(i));
                rec.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                rec.headers().add("origin", "weir-compat".getBytes(StandardCharsets.UTF_8));
                producer.send(rec, (md, e) -> {
                    if (e != null) errors.add("record " + i + ": " + e);
                    else got.put(i, new long[] {md.partition(), md.offset()});
                });
            }
            producer.flush();
        }
        if (!errors.isEmpty()) throw new Fail(errors.size() + " send errors, first: " + errors.get(0));
        return got;
    }

    static void checkAcks(Map<Integer, long[]> a) {
        check(a.size() == RECORDS, a.size() + " of " + RECORDS + " records acknowledged");
        Map<Long, List<Long>> byPart = new TreeMap<>();
        for (long[] po : a.values()) byPart.computeIfAbsent(po[0], x -> new ArrayList<>()).add(po[1]);
        check(byPart.size() == PARTITIONS, "keys landed in partitions " + byPart.keySet());
        for (Map.Entry<Long, List<Long>> e : byPart.entrySet()) {
            List<Long> offs = e.getValue();
            Collections.sort(offs);
            for (int j = 0; j < offs.size(); j++)
                check(offs.get(j) == j, "partition " + e.getKey() + ": acked offsets are not dense from 0");
        }
    }

    static Map<Integer, Long> listOffsets(List<Integer> parts, OffsetSpec spec) throws Exception {
        return listOffsets(topic, parts, spec);
    }

    static Map<Integer, Long> listOffsets(String t, List<Integer> parts, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int p : parts) req.put(new TopicPartition(t, p), spec);
        Map<Integer, Long> out = new TreeMap<>();
        admin.listOffsets(req).all().get(60, TimeUnit.SECONDS).forEach((tp, info) -> out.put(tp.partition(), info.offset()));
        return out;
    }

    /** Admin.deleteRecords of {partition: offset} of t; returns {partition: low watermark}. */
    static Map<Integer, Long> deleteRecords(String t, Map<Integer, Long> offsets) throws Exception {
        Map<TopicPartition, RecordsToDelete> req = new HashMap<>();
        offsets.forEach((p, o) -> req.put(new TopicPartition(t, p), RecordsToDelete.beforeOffset(o)));
        Map<Integer, Long> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, org.apache.kafka.common.KafkaFuture<DeletedRecords>> e
                : admin.deleteRecords(req).lowWatermarks().entrySet())
            out.put(e.getKey().partition(), e.getValue().get(60, TimeUnit.SECONDS).lowWatermark());
        return out;
    }

    static Map<String, String> topicConfigs(ConfigResource r) throws Exception {
        Map<String, String> out = new TreeMap<>();
        for (ConfigEntry e : admin.describeConfigs(List.of(r)).all().get(60, TimeUnit.SECONDS).get(r).entries())
            out.put(e.name(), e.value());
        return out;
    }

    static List<String> policies(Map<String, String> configs) {
        String v = configs.get("cleanup.policy");
        return v == null ? List.of() : Arrays.asList(v.split(","));
    }

    static Set<Integer> assigned(KafkaConsumer<byte[], byte[]> c) {
        Set<Integer> s = new TreeSet<>();
        for (TopicPartition tp : c.assignment()) s.add(tp.partition());
        return s;
    }

    static void groupSplit(String assignor) {
        String group = topic + "-split-" + (assignor == null ? "default" : "coop");
        long deadline = System.currentTimeMillis() + PATIENCE_MS;
        KafkaConsumer<byte[], byte[]> a = consumer(group, assignor), b = null;
        try {
            while (assigned(a).size() < PARTITIONS) {
                check(System.currentTimeMillis() < deadline, "a lone consumer got " + assigned(a));
                a.poll(Duration.ofMillis(200));
            }
            b = consumer(group, assignor);
            int stable = 0;
            while (stable < 5) {
                check(System.currentTimeMillis() < deadline,
                        "no split: a has " + assigned(a) + ", b has " + assigned(b));
                a.poll(Duration.ofMillis(200));
                b.poll(Duration.ofMillis(200));
                Set<Integer> sa = assigned(a), sb = assigned(b);
                Set<Integer> both = new TreeSet<>(sa);
                both.retainAll(sb);
                Set<Integer> all = new TreeSet<>(sa);
                all.addAll(sb);
                if (!sa.isEmpty() && !sb.isEmpty() && both.isEmpty() && all.size() == PARTITIONS) stable++;
                else stable = 0;
            }
        } finally {
            a.close();
            if (b != null) b.close();
        }
    }

    /** The kafka-clients version on the classpath, from the properties file its jar carries
     *  (AppInfoParser, which reads it, moved to an internals package in 4.x). */
    static String clientVersion() {
        try (java.io.InputStream in = KafkaConsumer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown (" + e + ")";
        }
    }

    public static void main(String[] args) {
        bootstrap = args[0];
        topic = args[1];
        System.err.println("kafka-clients " + clientVersion());
        admin = Admin.create(common());
        List<Integer> parts = List.of(0, 1, 2, 3);

        step("create_topic", () -> {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(60, TimeUnit.SECONDS);
            check(admin.listTopics().names().get(60, TimeUnit.SECONDS).contains(topic), "not listed after create");
        });

        step("produce", () -> {
            String fallback = null;
            Map<Integer, long[]> got;
            try {
                got = produce(true);
            } catch (Exception e) {
                e.printStackTrace();
                Throwable root = e;
                while (root.getCause() != null && root != root.getCause()) root = root.getCause();
                fallback = "idempotent produce failed: " + e + (root != e ? " (cause " + root + ")" : "");
                System.err.println("   producing without idempotence for the steps after this one");
                got = produce(false);
            }
            checkAcks(got);
            acks = got;
            if (fallback != null) throw new Fail(fallback + " (without idempotence all 10,000 were acknowledged)");
        });

        step("consume_commit", () -> {
            try (KafkaConsumer<byte[], byte[]> c = consumer(topic + "-g", null)) {
                long deadline = System.currentTimeMillis() + PATIENCE_MS;
                while (seen.size() < RECORDS / 2) {
                    check(System.currentTimeMillis() < deadline, "read " + seen.size() + " records, wanted " + RECORDS / 2);
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofSeconds(1))) {
                        int i = verify(r);
                        check(!seen.containsKey(i), "record " + i + " delivered twice");
                        seen.put(i, new long[] {r.partition(), r.offset()});
                    }
                }
                Map<Integer, Long> next = new TreeMap<>();
                for (long[] po : seen.values()) next.merge((int) po[0], po[1] + 1, Math::max);
                Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
                next.forEach((p, o) -> commit.put(new TopicPartition(topic, p), new OffsetAndMetadata(o)));
                c.commitSync(commit);
                Set<TopicPartition> tps = new HashSet<>();
                for (int p : parts) tps.add(new TopicPartition(topic, p));
                Map<TopicPartition, OffsetAndMetadata> back = c.committed(tps);
                for (int p : parts) {
                    OffsetAndMetadata om = back.get(new TopicPartition(topic, p));
                    Long got = om == null ? null : om.offset();
                    check(Objects.equals(got, next.get(p)), "partition " + p + ": committed offset reads back " + got
                            + ", committed " + next.get(p));
                }
                committed = next;
            }
        });

        step("resume", () -> {
            check(!committed.isEmpty(), "nothing was committed by consume_commit");
            Map<Integer, Long> first = new TreeMap<>();
            Map<Integer, long[]> again = new HashMap<>();
            try (KafkaConsumer<byte[], byte[]> c = consumer(topic + "-g", null)) {
                long deadline = System.currentTimeMillis() + PATIENCE_MS;
                while (seen.size() + again.size() < RECORDS) {
                    check(System.currentTimeMillis() < deadline, "after restart read " + again.size() + " records, "
                            + (RECORDS - seen.size()) + " remained");
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofSeconds(1))) {
                        first.putIfAbsent(r.partition(), r.offset());
                        int i = verify(r);
                        check(!seen.containsKey(i), "record " + i + " was read before the commit and again after restart");
                        check(!again.containsKey(i), "record " + i + " delivered twice after restart");
                        again.put(i, new long[] {r.partition(), r.offset()});
                    }
                }
            }
            for (Map.Entry<Integer, Long> e : first.entrySet()) {
                long want = committed.getOrDefault(e.getKey(), 0L);
                check(e.getValue() == want, "partition " + e.getKey() + ": restarted consumer began at offset "
                        + e.getValue() + ", committed " + want);
            }
            seen.putAll(again);
        });

        step("async_commits", () -> {
            // A new group, its consumer assigned to partition 0; it learns the group's coordinator
            // first (librdkafka queues commits until it knows it, so every client does the same).
            String group = topic + "-async";
            TopicPartition tp0 = new TopicPartition(topic, 0);
            List<String> errors = Collections.synchronizedList(new ArrayList<>());
            int[] completed = {0};
            try (KafkaConsumer<byte[], byte[]> c = assignedConsumer(topic, group, List.of(0), false)) {
                Long before = committedOffset(c, tp0);
                check(before == null, "a new group has committed offset " + before + " for partition 0");
                for (int o = 1; o <= ASYNC_COMMITS; o++) {
                    final int off = o;
                    c.commitAsync(Map.of(tp0, new OffsetAndMetadata(o)), (offsets, e) -> {
                        synchronized (completed) { completed[0]++; }
                        if (e != null) errors.add("commit of " + off + ": " + e);
                    });
                }
                c.commitSync(Map.of(tp0, new OffsetAndMetadata(ASYNC_COMMITS + 1)));
                Long got = committedOffset(c, tp0);
                check(Objects.equals(got, (long) ASYNC_COMMITS + 1), "after " + ASYNC_COMMITS
                        + " asynchronous commits of 1.." + ASYNC_COMMITS + " and a synchronous commit of "
                        + (ASYNC_COMMITS + 1) + ", the committed offset reads back " + got);
                System.err.println("   callbacks run by the commitSync of " + (ASYNC_COMMITS + 1) + ": " + completed[0]);
                c.commitSync(Map.of()); // runs any callbacks still outstanding (an empty commitSync waits for them)
                check(errors.isEmpty(), errors.size() + " of the asynchronous commits failed, first: "
                        + (errors.isEmpty() ? "" : errors.get(0)));
                check(completed[0] == ASYNC_COMMITS, completed[0] + " of " + ASYNC_COMMITS
                        + " asynchronous commits completed");
            }
            try (KafkaConsumer<byte[], byte[]> c = assignedConsumer(topic, group, List.of(0), false)) {
                Long got = committedOffset(c, tp0);
                check(Objects.equals(got, (long) ASYNC_COMMITS + 1), "a new consumer of the group reads committed offset "
                        + got + ", expected " + (ASYNC_COMMITS + 1));
            }
        });

        step("list_offsets", () -> {
            Map<Integer, long[]> placed = seen.size() == RECORDS ? seen : acks;
            check(placed.size() == RECORDS, "only " + placed.size() + " records known");
            Map<Integer, Long> counts = new TreeMap<>();
            Map<Integer, TreeMap<Long, Integer>> byPart = new TreeMap<>();
            for (int p : parts) counts.put(p, 0L);
            placed.forEach((i, po) -> {
                counts.merge((int) po[0], 1L, Long::sum);
                byPart.computeIfAbsent((int) po[0], x -> new TreeMap<>()).put(po[1], i);
            });
            Map<Integer, Long> earliest = listOffsets(parts, OffsetSpec.earliest());
            check(earliest.equals(Map.of(0, 0L, 1, 0L, 2, 0L, 3, 0L)), "earliest offsets " + earliest);
            Map<Integer, Long> latest = listOffsets(parts, OffsetSpec.latest());
            check(latest.equals(counts), "latest offsets " + latest + ", expected " + counts);
            for (int p : parts) {
                List<Map.Entry<Long, Integer>> rows = new ArrayList<>(byPart.get(p).entrySet());
                Map.Entry<Long, Integer> mid = rows.get(rows.size() / 2);
                long found = listOffsets(List.of(p), OffsetSpec.forTimestamp(BASE_TS + mid.getValue())).get(p);
                check(found == mid.getKey(), "partition " + p + ": offset for timestamp " + (BASE_TS + mid.getValue())
                        + " is " + found + ", expected " + mid.getKey());
            }
            Map<Integer, Long> after = listOffsets(parts, OffsetSpec.forTimestamp(BASE_TS + RECORDS + 1000));
            for (int p : parts)
                check(after.get(p) == -1L, "a timestamp after every record gave " + after + ", expected -1 everywhere");
        });

        step("describe_configs", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(List.of(r)).all().get(60, TimeUnit.SECONDS).get(r);
            ConfigEntry e = config.get("cleanup.policy");
            check(e != null, "cleanup.policy missing from " + config.entries().size() + " entries");
            check("delete".equals(e.value()), "cleanup.policy is " + e.value());
        });

        step("alter_configs", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(r, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", RETENTION_MS), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                    .all().get(60, TimeUnit.SECONDS);
            Map<String, String> c = topicConfigs(r);
            check(RETENTION_MS.equals(c.get("retention.ms")), "after SET retention.ms=" + RETENTION_MS
                    + " it is " + c.get("retention.ms"));
            check(policies(c).containsAll(List.of("delete", "compact")),
                    "after APPEND cleanup.policy=compact it is " + c.get("cleanup.policy"));
            try {
                admin.incrementalAlterConfigs(Map.of(r, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                        .all().get(60, TimeUnit.SECONDS);
                throw new Fail("SET retention.ms=soon was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof InvalidConfigurationException,
                        "SET retention.ms=soon failed with " + e.getCause() + ", expected InvalidConfigurationException");
            }
            c = topicConfigs(r);
            check(RETENTION_MS.equals(c.get("retention.ms")), "after the refused SET retention.ms is "
                    + c.get("retention.ms") + ", was " + RETENTION_MS);
            admin.incrementalAlterConfigs(Map.of(r, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE))))
                    .all().get(60, TimeUnit.SECONDS);
            c = topicConfigs(r);
            check(DEFAULT_RETENTION_MS.equals(c.get("retention.ms")), "after DELETE retention.ms it is "
                    + c.get("retention.ms") + ", expected the default " + DEFAULT_RETENTION_MS);
            check(policies(c).containsAll(List.of("delete", "compact")),
                    "after DELETE retention.ms cleanup.policy is " + c.get("cleanup.policy"));
        });

        step("log_append_time", () -> {
            String lat = topic + "-lat";
            admin.createTopics(List.of(new NewTopic(lat, 1, (short) 1)
                    .configs(Map.of("message.timestamp.type", "LogAppendTime")))).all().get(60, TimeUnit.SECONDS);
            waitListed(lat);
            long before = System.currentTimeMillis();
            RecordMetadata md;
            Properties p = common();
            p.put("acks", "all");
            p.put("key.serializer", ByteArraySerializer.class.getName());
            p.put("value.serializer", ByteArraySerializer.class.getName());
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                md = producer.send(new ProducerRecord<>(lat, 0, LOG_APPEND_TS, "lat".getBytes(StandardCharsets.UTF_8),
                        "log-append-time".getBytes(StandardCharsets.UTF_8))).get(60, TimeUnit.SECONDS);
            }
            long after = System.currentTimeMillis();
            check(md.partition() == 0 && md.offset() == 0, "the record was acknowledged at " + md.partition() + "/"
                    + md.offset() + ", expected 0/0");
            ConsumerRecord<byte[], byte[]> r;
            try (KafkaConsumer<byte[], byte[]> c = assignedConsumer(lat, lat + "-reader", List.of(0), false)) {
                r = readAll(c, 1, lat).get(0);
            }
            check(r.timestampType() == TimestampType.LOG_APPEND_TIME, "record read with timestamp type "
                    + r.timestampType() + ", expected LogAppendTime");
            check(r.timestamp() != LOG_APPEND_TS, "record read with the producer's timestamp " + LOG_APPEND_TS
                    + ", not the append time");
            check(before - CLOCK_SLACK_MS <= r.timestamp() && r.timestamp() <= after + CLOCK_SLACK_MS,
                    "record read with timestamp " + r.timestamp() + ", produced between " + before + " and " + after);
            check(md.timestamp() == r.timestamp(), "the producer's acknowledgement gave timestamp " + md.timestamp()
                    + ", the record reads " + r.timestamp());
        });

        step("small_fetch", () -> {
            String big = topic + "-big";
            admin.createTopics(List.of(new NewTopic(big, BIG_PARTITIONS, (short) 1))).all().get(60, TimeUnit.SECONDS);
            waitListed(big);
            Properties p = common();
            p.put("acks", "all");
            p.put("key.serializer", ByteArraySerializer.class.getName());
            p.put("value.serializer", ByteArraySerializer.class.getName());
            // Batches of three records (Kafka's max.message.bytes is 1 MiB), and requests that carry
            // every batch ready for the broker.
            p.put("batch.size", "1000000");
            p.put("max.request.size", "16000000");
            p.put("linger.ms", "100");
            List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
            List<int[]> placed = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                for (int j = 0; j < BIG_RECORDS; j++)
                    for (int part = 0; part < BIG_PARTITIONS; part++) {
                        sent.add(producer.send(new ProducerRecord<>(big, part,
                                ("big-" + part + "-" + j).getBytes(StandardCharsets.UTF_8), bigValue(part, j))));
                        placed.add(new int[] {part, j});
                    }
                producer.flush();
                for (int n = 0; n < sent.size(); n++) {
                    RecordMetadata md = sent.get(n).get(60, TimeUnit.SECONDS);
                    int[] pj = placed.get(n);
                    check(md.partition() == pj[0] && md.offset() == pj[1], "record big-" + pj[0] + "-" + pj[1]
                            + " was acknowledged at " + md.partition() + "/" + md.offset());
                }
            }
            List<ConsumerRecord<byte[], byte[]>> got;
            List<Integer> bigParts = new ArrayList<>();
            for (int part = 0; part < BIG_PARTITIONS; part++) bigParts.add(part);
            try (KafkaConsumer<byte[], byte[]> c = assignedConsumer(big, big + "-reader", bigParts, true)) {
                got = readAll(c, BIG_RECORDS * BIG_PARTITIONS, big + " with fetch.max.bytes=" + FETCH_MAX_BYTES);
            }
            for (int part = 0; part < BIG_PARTITIONS; part++) {
                List<Long> offsets = new ArrayList<>();
                List<ConsumerRecord<byte[], byte[]>> mine = new ArrayList<>();
                for (ConsumerRecord<byte[], byte[]> r : got)
                    if (r.partition() == part) { offsets.add(r.offset()); mine.add(r); }
                List<Long> want = new ArrayList<>();
                for (long j = 0; j < BIG_RECORDS; j++) want.add(j);
                check(offsets.equals(want), "partition " + part + ": read offsets " + offsets + ", expected 0.."
                        + (BIG_RECORDS - 1));
                for (int j = 0; j < mine.size(); j++) {
                    byte[] v = mine.get(j).value();
                    check(v != null && v.length == BIG_SIZE, "partition " + part + " offset " + j + ": "
                            + (v == null ? 0 : v.length) + " bytes, sent " + BIG_SIZE);
                    check(Arrays.equals(v, bigValue(part, j)), "partition " + part + " offset " + j
                            + ": value differs from the one sent");
                }
            }
        });

        step("delete_records", () -> {
            String dr = topic + "-dr";
            List<Integer> drParts = List.of(0, 1);
            admin.createTopics(List.of(new NewTopic(dr, DR_PARTITIONS, (short) 1))).all().get(60, TimeUnit.SECONDS);
            waitListed(dr);
            Properties p = common();
            p.put("acks", "all");
            p.put("key.serializer", ByteArraySerializer.class.getName());
            p.put("value.serializer", ByteArraySerializer.class.getName());
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
                for (int j = 0; j < DR_RECORDS; j++)
                    for (int part : drParts)
                        sent.add(producer.send(new ProducerRecord<>(dr, part, ("dr-" + part + "-" + j).getBytes(StandardCharsets.UTF_8),
                                ("dr-value-" + part + "-" + j).getBytes(StandardCharsets.UTF_8))));
                producer.flush();
                for (int n = 0; n < sent.size(); n++) {
                    RecordMetadata md = sent.get(n).get(60, TimeUnit.SECONDS);
                    int part = drParts.get(n % DR_PARTITIONS), j = n / DR_PARTITIONS;
                    check(md.partition() == part && md.offset() == j, "record dr-" + part + "-" + j
                            + " was acknowledged at " + md.partition() + "/" + md.offset());
                }
            }
            Map<Integer, Long> want = Map.of(0, (long) DR_BEFORE, 1, (long) DR_RECORDS);
            Map<Integer, Long> low = deleteRecords(dr, Map.of(0, (long) DR_BEFORE, 1, HIGH_WATERMARK));
            check(low.equals(want), "deleteRecords before offset " + DR_BEFORE + " of partition 0 and " + HIGH_WATERMARK
                    + " (the high watermark) of partition 1 answered low watermarks " + low + ", expected " + want);
            Map<Integer, Long> earliest = listOffsets(dr, drParts, OffsetSpec.earliest());
            check(earliest.equals(want), "after deleteRecords the earliest offsets are " + earliest + ", expected " + want);
            Map<Integer, Long> latest = listOffsets(dr, drParts, OffsetSpec.latest());
            check(latest.equals(Map.of(0, (long) DR_RECORDS, 1, (long) DR_RECORDS)),
                    "after deleteRecords the latest offsets are " + latest + ", expected " + DR_RECORDS + " everywhere");
            List<ConsumerRecord<byte[], byte[]>> got;
            try (KafkaConsumer<byte[], byte[]> c = assignedConsumer(dr, dr + "-reader", List.of(0), false)) {
                got = readAll(c, DR_RECORDS - DR_BEFORE, dr + " partition 0 from the beginning");
            }
            List<Long> offsets = new ArrayList<>(), wantOffsets = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : got) offsets.add(r.offset());
            for (long j = DR_BEFORE; j < DR_RECORDS; j++) wantOffsets.add(j);
            check(offsets.equals(wantOffsets), "a consumer from the beginning of partition 0 read offsets " + offsets
                    + ", expected " + DR_BEFORE + ".." + (DR_RECORDS - 1));
            for (ConsumerRecord<byte[], byte[]> r : got) {
                String k = new String(r.key(), StandardCharsets.UTF_8), v = new String(r.value(), StandardCharsets.UTF_8);
                check(r.partition() == 0 && k.equals("dr-0-" + r.offset()) && v.equals("dr-value-0-" + r.offset()),
                        "partition " + r.partition() + " offset " + r.offset() + ": read " + k + "=" + v);
            }
            try {
                deleteRecords(dr, Map.of(0, (long) DR_RECORDS + 1));
                throw new Fail("deleteRecords before offset " + (DR_RECORDS + 1) + " of partition 0, past its high "
                        + "watermark " + DR_RECORDS + ", was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof OffsetOutOfRangeException, "deleteRecords before offset " + (DR_RECORDS + 1)
                        + " of partition 0 (high watermark " + DR_RECORDS + ") failed with " + e.getCause()
                        + ", expected OffsetOutOfRangeException");
            }
            earliest = listOffsets(dr, List.of(0), OffsetSpec.earliest());
            check(earliest.equals(Map.of(0, (long) DR_BEFORE)), "after the refused deleteRecords partition 0's earliest "
                    + "offset is " + earliest.get(0) + ", was " + DR_BEFORE);
        });

        step("group_split", () -> groupSplit(null));
        step("group_split_cooperative", () -> groupSplit(CooperativeStickyAssignor.class.getName()));

        step("delete_topic", () -> {
            admin.deleteTopics(List.of(topic)).all().get(60, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + PATIENCE_MS;
            while (admin.listTopics().names().get(60, TimeUnit.SECONDS).contains(topic)) {
                check(System.currentTimeMillis() < deadline, topic + " still listed after delete");
                Thread.sleep(200);
            }
        });
        admin.close(Duration.ofSeconds(5));
        System.exit(0);
    }
}
