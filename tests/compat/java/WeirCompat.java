// Java kafka-clients (3.9.1) in Weir's compatibility scenario.
//
//     java -cp <classes>:<jars> WeirCompat BOOTSTRAP TOPIC
//
// Admin for topics, offsets and configs (incrementalAlterConfigs to alter them); the
// producer with its defaults made explicit (acks=all, enable.idempotence=true);
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
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class WeirCompat {
    static final int PARTITIONS = 4;
    static final int RECORDS = 10_000;
    static final long BASE_TS = 1_700_000_000_000L;
    static final long PATIENCE_MS = 60_000; // a bound against hanging, not a timing assertion
    static final String RETENTION_MS = "7200000";
    static final String DEFAULT_RETENTION_MS = "604800000"; // Kafka's retention.ms default, 7 days

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
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int p : parts) req.put(new TopicPartition(topic, p), spec);
        Map<Integer, Long> out = new TreeMap<>();
        admin.listOffsets(req).all().get(60, TimeUnit.SECONDS).forEach((tp, info) -> out.put(tp.partition(), info.offset()));
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

    public static void main(String[] args) {
        bootstrap = args[0];
        topic = args[1];
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
