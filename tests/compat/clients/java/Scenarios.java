// Scenarios run with the Apache Kafka Java client against a broker given on the command line.
//
//   codecs BOOTSTRAP PREFIX COUNT   produce COUNT keyed records to a 3-partition topic per
//                                   compression codec with idempotence on, read them back,
//                                   and check every record per partition in order.
//   basic BOOTSTRAP TOPIC COUNT     create TOPIC (3 partitions), produce COUNT keyed records,
//                                   read them back, delete TOPIC; prints the records for
//                                   the compatibility runner to check (see run.py).
//   member BOOTSTRAP TOPIC GROUP    join GROUP, print "partition offset value" for each record
//                                   consumed, commit after each poll; stop on stdin close.
//
// Prints one line per check (PASS/FAIL) and ends with "N passed, M failed".

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class Scenarios {
    static int passed = 0, failed = 0;

    static void check(String name, boolean ok, String why) {
        if (ok) { passed++; System.out.println("PASS " + name); }
        else { failed++; System.out.println("FAIL " + name + ": " + why); }
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "codecs": codecs(args[1], args[2], Integer.parseInt(args[3])); break;
            case "member": member(args[1], args[2], args[3]); return;
            case "basic": basic(args[1], args[2], Integer.parseInt(args[3])); return;
            default: throw new IllegalArgumentException("unknown scenario " + args[0]);
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    static void codecs(String bootstrap, String prefix, int count) throws Exception {
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
                String topic = prefix + "-" + codec;
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
                Properties pp = new Properties();
                pp.put("bootstrap.servers", bootstrap);
                pp.put("enable.idempotence", "true");
                pp.put("acks", "all");
                pp.put("compression.type", codec);
                pp.put("linger.ms", "5");
                Map<Integer, List<String>> sent = new HashMap<>();
                try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                    List<Future<RecordMetadata>> fs = new ArrayList<>();
                    List<String> values = new ArrayList<>();
                    for (int i = 0; i < count; i++) {
                        String v = codec + "-" + i;
                        fs.add(p.send(new ProducerRecord<>(topic, "key-" + (i % 1000), v)));
                        values.add(v);
                    }
                    p.flush();
                    for (int i = 0; i < count; i++) {
                        RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
                        sent.computeIfAbsent(md.partition(), k -> new ArrayList<>()).add(values.get(i));
                    }
                }
                Map<Integer, List<String>> got = new HashMap<>();
                for (ConsumerRecord<String, String> r : readBack(bootstrap, topic, topic + "-reader", count)) {
                    got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.value());
                }
                check("java " + codec + ": " + count + " records read back per partition in order",
                      sent.equals(got), "sent " + sent.values().stream().mapToInt(List::size).sum() + " got " + got.values().stream().mapToInt(List::size).sum());
            }
        }
    }

    /** Reads the three partitions of TOPIC from their start until COUNT records arrived or 60 s passed. */
    static List<ConsumerRecord<String, String>> readBack(String bootstrap, String topic, String group, int count) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("enable.auto.commit", "false");
        if (group != null) cp.put("group.id", group);
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60_000;
            while (out.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) out.add(r);
            }
        }
        return out;
    }

    static void basic(String bootstrap, String topic, int count) throws Exception {
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
            int parts = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic).partitions().size();
            System.out.println("T " + parts);
            Properties pp = new Properties();
            pp.put("bootstrap.servers", bootstrap);
            pp.put("linger.ms", "5");
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < count; i++) fs.add(p.send(new ProducerRecord<>(topic, "k" + (i % 30), "v" + i)));
                p.flush();
                StringBuilder sb = new StringBuilder();
                for (int i = 0; i < count; i++) {
                    try {
                        RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
                        sb.append("P ").append(md.partition()).append(' ').append(md.offset()).append(" k").append(i % 30).append(" v").append(i).append('\n');
                    } catch (ExecutionException e) {
                        sb.append("E produce: ").append(e.getCause()).append('\n');
                    }
                }
                System.out.print(sb);
            }
            StringBuilder sb = new StringBuilder();
            for (ConsumerRecord<String, String> r : readBack(bootstrap, topic, null, count)) {
                sb.append("C ").append(r.partition()).append(' ').append(r.offset()).append(' ').append(r.key()).append(' ').append(r.value()).append('\n');
            }
            System.out.print(sb);
            admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            System.out.println("D");
        } catch (Exception e) {
            System.out.println("E " + e);
            System.exit(1);
        }
        System.exit(0);
    }

    static void member(String bootstrap, String topic, String group) throws Exception {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("group.id", group);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        cp.put("session.timeout.ms", "6000");
        cp.put("heartbeat.interval.ms", "500");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            c.subscribe(List.of(topic));
            Thread watcher = new Thread(() -> { try { while (System.in.read() >= 0) {} } catch (Exception e) {} c.wakeup(); });
            watcher.setDaemon(true);
            watcher.start();
            try {
                while (true) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    StringBuilder sb = new StringBuilder();
                    for (ConsumerRecord<String, String> r : rs) sb.append("R ").append(r.partition()).append(' ').append(r.offset()).append(' ').append(r.value()).append('\n');
                    if (!rs.isEmpty()) {
                        try {
                            c.commitSync();
                        } catch (org.apache.kafka.clients.consumer.CommitFailedException
                                 | org.apache.kafka.common.errors.RebalanceInProgressException e) {
                            // Refused while the group rebalances; the next commit covers the same positions.
                            System.err.println("commit refused: " + e);
                        }
                    }
                    Set<TopicPartition> a = c.assignment();
                    List<Integer> ps = new ArrayList<>();
                    for (TopicPartition tp : a) ps.add(tp.partition());
                    Collections.sort(ps);
                    sb.append("A ").append(ps).append('\n');
                    System.out.print(sb);
                    System.out.flush();
                }
            } catch (org.apache.kafka.common.errors.WakeupException e) {
                // stdin closed: leave the group cleanly.
            }
        }
    }
}
