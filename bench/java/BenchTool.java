// Workloads Kafka's own perf tools do not cover, run with the Apache Kafka Java client so
// both brokers are measured by the same client:
//
//   e2e BOOTSTRAP TOPIC RATE SECONDS SIZE   end-to-end latency at a fixed offered rate
//   rebalance BOOTSTRAP TOPIC MEMBERS       time for a group to get every partition assigned,
//                                           then to reassign after one member leaves
//   commit BOOTSTRAP TOPIC SECONDS THREADS  offset commits per second
//   group BOOTSTRAP TOPIC MEMBERS RECORDS   MEMBERS consumers (threads of one process, one
//                                           group) read RECORDS records from the start:
//                                           records/s from the first record to the last,
//                                           and the time until every member had partitions
//
// Prints one JSON object per line.

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class BenchTool {
    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "e2e": e2e(a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4]), Integer.parseInt(a[5])); break;
            case "rebalance": rebalance(a[1], a[2], Integer.parseInt(a[3])); break;
            case "commit": commit(a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4])); break;
            case "group": group(a[1], a[2], Integer.parseInt(a[3]), Long.parseLong(a[4])); break;
            default: throw new IllegalArgumentException(a[0]);
        }
        System.exit(0);
    }

    static Properties consumerProps(String bootstrap, String group) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "latest");
        p.put("session.timeout.ms", "10000");
        p.put("heartbeat.interval.ms", "1000");
        p.put("max.poll.interval.ms", "300000");
        return p;
    }

    static double pct(long[] sorted, double q) {
        if (sorted.length == 0) return Double.NaN;
        int i = (int) Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
        return sorted[Math.max(0, i)] / 1000.0;
    }

    static void e2e(String bootstrap, String topic, int rate, int seconds, int size) throws Exception {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("acks", "1");
        pp.put("linger.ms", "0");
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap, "e2e-" + UUID.randomUUID()), new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> tps = new ArrayList<>();
        for (var pi : c.partitionsFor(topic)) tps.add(new TopicPartition(topic, pi.partition()));
        c.assign(tps);
        c.seekToEnd(tps);
        for (TopicPartition tp : tps) c.position(tp);
        int total = rate * seconds;
        long[] lat = new long[total];
        AtomicInteger received = new AtomicInteger();
        Thread reader = new Thread(() -> {
            while (received.get() < total) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    long sent = ByteBuffer.wrap(r.value()).getLong();
                    int n = received.getAndIncrement();
                    if (n < total) lat[n] = (System.nanoTime() - sent) / 1000;
                }
            }
        });
        reader.start();
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            long start = System.nanoTime();
            long intervalNs = 1_000_000_000L / rate;
            for (int i = 0; i < total; i++) {
                long due = start + i * intervalNs;
                long now;
                while ((now = System.nanoTime()) < due) { if (due - now > 200_000) Thread.sleep(0, 100_000); }
                byte[] v = new byte[Math.max(size, 8)];
                ByteBuffer.wrap(v).putLong(System.nanoTime());
                p.send(new ProducerRecord<>(topic, v));
            }
            p.flush();
        }
        reader.join(60_000);
        int n = Math.min(received.get(), total);
        long[] s = Arrays.copyOf(lat, n);
        Arrays.sort(s);
        System.out.printf(Locale.ROOT, "{\"workload\":\"e2e\",\"rate\":%d,\"received\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}%n",
            rate, n, pct(s, 0.5), pct(s, 0.99), pct(s, 0.999), n > 0 ? s[n - 1] / 1000.0 : Double.NaN);
    }

    static void rebalance(String bootstrap, String topic, int members) throws Exception {
        String group = "rebalance-" + UUID.randomUUID();
        int partitions;
        try (KafkaConsumer<byte[], byte[]> probe = new KafkaConsumer<>(consumerProps(bootstrap, group + "-probe"), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            partitions = probe.partitionsFor(topic).size();
        }
        // Each member's partition count, as its own poll thread last saw it (a consumer may
        // only be touched by the thread that polls it).
        ConcurrentHashMap<Integer, Integer> owned = new ConcurrentHashMap<>();
        Set<Integer> stopped = ConcurrentHashMap.newKeySet();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int i = 0; i < members; i++) {
            final int idx = i;
            Thread th = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap, group), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                    c.subscribe(List.of(topic));
                    while (!stop.get() && !stopped.contains(idx)) {
                        c.poll(Duration.ofMillis(50));
                        owned.put(idx, c.assignment().size());
                    }
                    owned.remove(idx);
                }
            });
            th.start();
            threads.add(th);
        }
        double join = waitAssigned(owned, members, stopped, partitions, t0);
        stopped.add(0);
        long t1 = System.nanoTime();
        double leave = waitAssigned(owned, members, stopped, partitions, t1);
        stop.set(true);
        for (Thread th : threads) th.join(60_000);
        System.out.printf(Locale.ROOT, "{\"workload\":\"rebalance\",\"members\":%d,\"partitions\":%d,\"all_assigned_ms\":%.1f,\"after_leave_ms\":%.1f}%n",
            members, partitions, join, leave);
    }

    /** Milliseconds from t0 until the live members hold every partition, each member some. */
    static double waitAssigned(Map<Integer, Integer> owned, int members, Set<Integer> stopped, int partitions, long t0) throws Exception {
        long deadline = System.nanoTime() + 300_000_000_000L;
        while (System.nanoTime() < deadline) {
            int total = 0;
            boolean everyone = true;
            for (int i = 0; i < members; i++) {
                if (stopped.contains(i)) continue;
                int n = owned.getOrDefault(i, 0);
                if (n == 0) everyone = false;
                total += n;
            }
            if (everyone && total == partitions) return (System.nanoTime() - t0) / 1e6;
            Thread.sleep(5);
        }
        return Double.NaN;
    }

    static void commit(String bootstrap, String topic, int seconds, int threads) throws Exception {
        AtomicLong commits = new AtomicLong();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread th = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap, "commit-" + UUID.randomUUID()), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                    TopicPartition tp = new TopicPartition(topic, 0);
                    c.assign(List.of(tp));
                    long off = 0;
                    while (System.nanoTime() < end) {
                        c.commitSync(Map.of(tp, new OffsetAndMetadata(++off)));
                        commits.incrementAndGet();
                    }
                }
            });
            th.start();
            ts.add(th);
        }
        for (Thread th : ts) th.join();
        System.out.printf(Locale.ROOT, "{\"workload\":\"commit\",\"threads\":%d,\"commits_per_s\":%.1f}%n", threads, commits.get() / (double) seconds);
    }

    static void group(String bootstrap, String topic, int members, long records) throws Exception {
        String group = "bench-group-" + UUID.randomUUID();
        AtomicLong consumed = new AtomicLong();
        AtomicLong firstNs = new AtomicLong(0), lastNs = new AtomicLong(0);
        AtomicInteger withPartitions = new AtomicInteger();
        AtomicLong allAssignedNs = new AtomicLong(0);
        long t0 = System.nanoTime();
        List<Thread> ts = new ArrayList<>();
        for (int m = 0; m < members; m++) {
            Thread th = new Thread(() -> {
                Properties p = consumerProps(bootstrap, group);
                p.put("auto.offset.reset", "earliest");
                p.put("enable.auto.commit", "true");
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                    boolean counted = false;
                    c.subscribe(List.of(topic));
                    long deadline = System.nanoTime() + 600_000_000_000L;
                    while (consumed.get() < records && System.nanoTime() < deadline) {
                        int n = c.poll(Duration.ofMillis(100)).count();
                        if (!counted && !c.assignment().isEmpty()) {
                            counted = true;
                            if (withPartitions.incrementAndGet() == members) allAssignedNs.compareAndSet(0, System.nanoTime());
                        }
                        if (n > 0) {
                            long now = System.nanoTime();
                            firstNs.compareAndSet(0, now);
                            if (consumed.addAndGet(n) >= records) lastNs.compareAndSet(0, now);
                        }
                    }
                }
            });
            th.start();
            ts.add(th);
        }
        for (Thread th : ts) th.join();
        double secs = (lastNs.get() - firstNs.get()) / 1e9;
        System.out.printf(Locale.ROOT, "{\"workload\":\"group\",\"members\":%d,\"records\":%d,\"records_per_s\":%.1f,\"all_assigned_ms\":%.1f}%n",
                          members, consumed.get(), consumed.get() / secs, allAssignedNs.get() == 0 ? -1.0 : (allAssignedNs.get() - t0) / 1e6);
    }
}
