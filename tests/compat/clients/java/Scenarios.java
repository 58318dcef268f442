// Scenarios run with the Apache Kafka Java client against a broker given on the command line.
//
//   codecs BOOTSTRAP PREFIX COUNT   produce COUNT keyed records to a 3-partition topic per
//                                   compression codec with idempotence on, read them back,
//                                   and check every record per partition in order.
//   basic BOOTSTRAP TOPIC COUNT     create TOPIC (3 partitions), produce COUNT keyed records,
//                                   read them back, delete TOPIC; prints the records for
//                                   the compatibility runner to check (see run.py).
//   member BOOTSTRAP TOPIC GROUP [STRATEGY [INSTANCE]]
//                                   join GROUP, print "R partition offset value" for each
//                                   record consumed, "A [p, ...]" for the assignment after
//                                   each poll, "K assign|revoke p,p generation" from the
//                                   rebalance listener; commit after each poll; stop on
//                                   stdin close. STRATEGY is range, roundrobin or
//                                   cooperative-sticky; INSTANCE makes the member static.
//   pair BOOTSTRAP TOPIC GROUP [INSTANCE]
//                                   two range members of GROUP in one process, polling from
//                                   the same moment on two threads (static as INSTANCE-0 and
//                                   INSTANCE-1 when given); each line as a member's, after
//                                   "M index ".
//   txn-commit BOOTSTRAP TOPIC COUNT, txn-abort ..., txn-open ..., txn-fence ...,
//   txn-ctp BOOTSTRAP INPUT OUTPUT GROUP COUNT
//                                   the transaction scenarios on topics the runner created
//                                   (3 partitions each); see "Transactions" below for what
//                                   each does and the lines it prints for run.py to check.
//   produce-batch BOOTSTRAP TOPIC SPEC
//                                   one batch to partition 0 of TOPIC, a record per letter of
//                                   SPEC (k keyed, n no key, o two hours old, f two hours
//                                   ahead, L a 2,000-byte value), then "O index offset" per
//                                   record acknowledged, "F index Exception message" per
//                                   record that failed.
//
// codecs prints one line per check (PASS/FAIL) and ends with "N passed, M failed".

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
            case "member":
                member(args[1], args[2], args[3], args.length > 4 ? args[4] : null, args.length > 5 ? args[5] : null, "",
                       new CountDownLatch(0), memberStopper());
                return;
            case "pair": pair(args[1], args[2], args[3], args.length > 4 ? args[4] : null); return;
            case "basic": basic(args[1], args[2], Integer.parseInt(args[3])); return;
            case "produce-batch": produceBatch(args[1], args[2], args[3]); System.exit(0);
            case "txn-commit": case "txn-abort": case "txn-open": case "txn-fence": case "txn-ctp":
                try {
                    transactions(args);
                } catch (Exception e) {
                    System.out.println("E " + errorName(e) + ": " + e.getMessage());
                    System.exit(1);
                }
                System.exit(0);
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

    /** Sends SPEC's records in one batch (a long linger, no idempotence, so a refused batch is
     *  not retried) and prints what each record's future gave. */
    static void produceBatch(String bootstrap, String topic, String spec) throws Exception {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("enable.idempotence", "false");
        pp.put("acks", "all");
        pp.put("linger.ms", "500");
        long now = System.currentTimeMillis(), hour = 3_600_000L;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < spec.length(); i++) {
                char letter = spec.charAt(i);
                String key = letter == 'n' ? null : "k" + i;
                String value = letter == 'L' ? "x".repeat(2000) : "v" + i;
                long ts = letter == 'o' ? now - 2 * hour : letter == 'f' ? now + 2 * hour : now;
                fs.add(p.send(new ProducerRecord<>(topic, 0, ts, key, value)));
            }
            p.flush();
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < fs.size(); i++) {
            try {
                long offset = fs.get(i).get(30, TimeUnit.SECONDS).offset();
                sb.append("O ").append(i).append(' ').append(offset).append('\n');
            } catch (ExecutionException e) {
                sb.append("F ").append(i).append(' ').append(errorName(e)).append(' ').append(e.getCause().getMessage()).append('\n');
            }
        }
        System.out.print(sb);
        System.out.flush();
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

    /** Consumers to wake when stdin closes, so each leaves the group cleanly. */
    static List<KafkaConsumer<?, ?>> memberStopper() {
        List<KafkaConsumer<?, ?>> consumers = new CopyOnWriteArrayList<>();
        Thread watcher = new Thread(() -> {
            try { while (System.in.read() >= 0) {} } catch (Exception e) {}
            for (KafkaConsumer<?, ?> c : consumers) c.wakeup();
        });
        watcher.setDaemon(true);
        watcher.start();
        return consumers;
    }

    static synchronized void emit(String prefix, StringBuilder sb) {
        if (sb.length() == 0) return;
        if (prefix.isEmpty()) {
            System.out.print(sb);
        } else {
            for (String line : sb.toString().split("\n")) System.out.print(prefix + line + "\n");
        }
        System.out.flush();
        sb.setLength(0);
    }

    static void pair(String bootstrap, String topic, String group, String instance) throws Exception {
        List<KafkaConsumer<?, ?>> consumers = memberStopper();
        CountDownLatch start = new CountDownLatch(2);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            final int index = i;
            Thread t = new Thread(() -> {
                try {
                    member(bootstrap, topic, group, "range", instance == null ? null : instance + "-" + index,
                           "M " + index + " ", start, consumers);
                } catch (Exception e) {
                    System.err.println("member " + index + ": " + e);
                }
            });
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) t.join();
    }

    static String parts(Collection<TopicPartition> tps) {
        List<Integer> ps = new ArrayList<>();
        for (TopicPartition tp : tps) ps.add(tp.partition());
        Collections.sort(ps);
        StringBuilder sb = new StringBuilder();
        for (Integer p : ps) sb.append(sb.length() == 0 ? "" : ",").append(p);
        return sb.toString();
    }

    static void member(String bootstrap, String topic, String group, String strategy, String instance, String prefix,
                       CountDownLatch start, List<KafkaConsumer<?, ?>> stoppers) throws Exception {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("group.id", group);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        if (instance != null) cp.put("group.instance.id", instance);
        // COMPAT_GROUP_PROTOCOL=consumer runs the member on the consumer group protocol
        // (KIP-848), where the broker sets session and heartbeat times.
        if ("consumer".equals(System.getenv("COMPAT_GROUP_PROTOCOL"))) {
            cp.put("group.protocol", "consumer");
            String assignor = System.getenv("COMPAT_GROUP_REMOTE_ASSIGNOR");
            if (assignor != null) cp.put("group.remote.assignor", assignor);
        } else {
            cp.put("session.timeout.ms", "6000");
            cp.put("heartbeat.interval.ms", "500");
            if (strategy != null) {
                Map<String, String> classes = Map.of("range", RangeAssignor.class.getName(),
                                                     "roundrobin", RoundRobinAssignor.class.getName(),
                                                     "cooperative-sticky", CooperativeStickyAssignor.class.getName());
                cp.put("partition.assignment.strategy", classes.get(strategy));
            }
        }
        StringBuilder sb = new StringBuilder();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
                public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                    sb.append("K assign ").append(parts(ps)).append(' ').append(c.groupMetadata().generationId()).append('\n');
                }
                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    sb.append("K revoke ").append(parts(ps)).append(' ').append(c.groupMetadata().generationId()).append('\n');
                }
            };
            // A topic starting with "^" is a regular expression: on the consumer protocol the
            // broker resolves it (RE2/J syntax), on the classic one the client does.
            if (topic.startsWith("^") && "consumer".equals(System.getenv("COMPAT_GROUP_PROTOCOL"))) {
                c.subscribe(new org.apache.kafka.clients.consumer.SubscriptionPattern(topic.substring(1)), listener);
            } else if (topic.startsWith("^")) {
                c.subscribe(java.util.regex.Pattern.compile(topic.substring(1)), listener);
            } else {
                c.subscribe(Arrays.asList(topic.split(",")), listener);
            }
            stoppers.add(c);
            start.countDown();
            start.await();
            try {
                while (true) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : rs) sb.append("R ").append(r.partition()).append(' ').append(r.offset()).append(' ').append(r.value()).append('\n');
                    // What was read is printed before the commit: a wakeup (stdin closed)
                    // can interrupt the commit after the broker took it, and a record whose
                    // offset was committed must not go unreported.
                    emit(prefix, sb);
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
                    emit(prefix, sb);
                }
            } catch (org.apache.kafka.common.errors.WakeupException e) {
                // stdin closed: leave the group cleanly.
                emit(prefix, sb);
            }
        }
    }

    // ---------------------------------------------------------------- Transactions
    //
    // Every role prints "P partition offset key value" for each record a transactional
    // producer had acknowledged (committed or aborted alike), "R reader partition offset key
    // value" for each record a reader read (reader: committed, uncommitted or after), "L
    // partition lso hw" for end offsets while a transaction is open, "X event detail" for
    // what a transaction call returned, and "E message" on an error. The keys are k0..k29,
    // so every partition gets records; the value's letter tells which transaction wrote it.

    static final int TXN_TIMEOUT_MS = 10_000;

    static void transactions(String[] args) throws Exception {
        String bootstrap = args[1];
        switch (args[0]) {
            case "txn-commit": txnCommit(bootstrap, args[2], Integer.parseInt(args[3])); break;
            case "txn-abort": txnAbort(bootstrap, args[2], Integer.parseInt(args[3])); break;
            case "txn-open": txnOpen(bootstrap, args[2], Integer.parseInt(args[3])); break;
            case "txn-fence": txnFence(bootstrap, args[2], Integer.parseInt(args[3])); break;
            default: txnConsumeTransformProduce(bootstrap, args[2], args[3], args[4], Integer.parseInt(args[5]));
        }
    }

    static KafkaProducer<String, String> txnProducer(String bootstrap, String transactionalId) {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("transactional.id", transactionalId);
        pp.put("enable.idempotence", "true");
        pp.put("acks", "all");
        pp.put("linger.ms", "5");
        pp.put("transaction.timeout.ms", String.valueOf(TXN_TIMEOUT_MS));
        pp.put("max.block.ms", "30000");
        return new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
    }

    /** Sends LETTER0..LETTER(count-1) under keys k0..k29; the futures are printed by printAcked. */
    static void sendAll(KafkaProducer<String, String> p, String topic, String letter, int count, List<Future<RecordMetadata>> fs, List<String> sent) {
        for (int i = 0; i < count; i++) {
            String k = "k" + (i % 30), v = letter + i;
            fs.add(p.send(new ProducerRecord<>(topic, k, v)));
            sent.add(k + " " + v);
        }
    }

    static void printAcked(List<Future<RecordMetadata>> fs, List<String> sent) throws InterruptedException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < fs.size(); i++) {
            try {
                RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
                sb.append("P ").append(md.partition()).append(' ').append(md.offset()).append(' ').append(sent.get(i)).append('\n');
            } catch (ExecutionException | TimeoutException e) {
                sb.append("E produce ").append(sent.get(i)).append(": ").append(errorName(e)).append('\n');
            }
        }
        System.out.print(sb);
        System.out.flush();
    }

    /** The class names down an exception's cause chain, "KafkaException/ProducerFencedException". */
    static String errorName(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof ExecutionException) continue;
            if (sb.length() > 0) sb.append('/');
            sb.append(c.getClass().getSimpleName());
        }
        return sb.toString();
    }

    static KafkaConsumer<String, String> reader(String bootstrap, String isolation) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("enable.auto.commit", "false");
        cp.put("isolation.level", isolation);
        return new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
    }

    static List<TopicPartition> partitions(String topic) {
        return List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
    }

    /** Reads TOPIC from the start with ISOLATION until WANT records arrived (30 s at most), then
     *  one second more so a record that should not be there has its chance to show. */
    static void readTxn(String bootstrap, String topic, String tag, String isolation, int want) {
        StringBuilder sb = new StringBuilder();
        try (KafkaConsumer<String, String> c = reader(bootstrap, isolation)) {
            c.assign(partitions(topic));
            c.seekToBeginning(partitions(topic));
            int n = 0;
            long deadline = System.currentTimeMillis() + 30_000, extraUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(deadline, extraUntil)) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    sb.append("R ").append(tag).append(' ').append(r.partition()).append(' ').append(r.offset()).append(' ')
                      .append(r.key()).append(' ').append(r.value()).append('\n');
                    n++;
                }
                if (n >= want && extraUntil == Long.MAX_VALUE) extraUntil = System.currentTimeMillis() + 1000;
            }
        }
        System.out.print(sb);
        System.out.flush();
    }

    /** COUNT records in five committed transactions, read back with read_committed. */
    static void txnCommit(String bootstrap, String topic, int count) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<String, String> p = txnProducer(bootstrap, topic + "-tx")) {
            p.initTransactions();
            int per = Math.max(1, count / 5);
            for (int start = 0; start < count; start += per) {
                p.beginTransaction();
                for (int i = start; i < Math.min(count, start + per); i++) {
                    String k = "k" + (i % 30), v = "v" + i;
                    fs.add(p.send(new ProducerRecord<>(topic, k, v)));
                    sent.add(k + " " + v);
                }
                p.commitTransaction();
            }
        }
        printAcked(fs, sent);
        readTxn(bootstrap, topic, "committed", "read_committed", count);
    }

    /** A committed, an aborted (its records flushed to the log first) and a committed
     *  transaction of COUNT/3 records each: "a", "b" and "c". */
    static void txnAbort(String bootstrap, String topic, int count) throws Exception {
        int n = count / 3;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<String, String> p = txnProducer(bootstrap, topic + "-tx")) {
            p.initTransactions();
            p.beginTransaction();
            sendAll(p, topic, "a", n, fs, sent);
            p.commitTransaction();
            p.beginTransaction();
            sendAll(p, topic, "b", n, fs, sent);
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            sendAll(p, topic, "c", n, fs, sent);
            p.commitTransaction();
        }
        printAcked(fs, sent);
        readTxn(bootstrap, topic, "committed", "read_committed", 2 * n);
        readTxn(bootstrap, topic, "uncommitted", "read_uncommitted", 3 * n);
    }

    /** COUNT/2 committed records "a", then COUNT/2 records "b" flushed in a transaction left
     *  open while the end offsets are listed and both readers read; then it commits. */
    static void txnOpen(String bootstrap, String topic, int count) throws Exception {
        int n = count / 2;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<String, String> p = txnProducer(bootstrap, topic + "-tx")) {
            p.initTransactions();
            p.beginTransaction();
            sendAll(p, topic, "a", n, fs, sent);
            p.commitTransaction();
            p.beginTransaction();
            sendAll(p, topic, "b", n, fs, sent);
            p.flush();
            printAcked(fs, sent);
            try (KafkaConsumer<String, String> rc = reader(bootstrap, "read_committed");
                 KafkaConsumer<String, String> ru = reader(bootstrap, "read_uncommitted")) {
                Map<TopicPartition, Long> lso = rc.endOffsets(partitions(topic), Duration.ofSeconds(10));
                Map<TopicPartition, Long> hw = ru.endOffsets(partitions(topic), Duration.ofSeconds(10));
                for (TopicPartition tp : partitions(topic)) System.out.println("L " + tp.partition() + " " + lso.get(tp) + " " + hw.get(tp));
            }
            readTxn(bootstrap, topic, "committed", "read_committed", n);
            readTxn(bootstrap, topic, "uncommitted", "read_uncommitted", 2 * n);
            p.commitTransaction();
            System.out.println("X commit ok");
        }
        readTxn(bootstrap, topic, "after", "read_committed", 2 * n);
    }

    /** A first producer leaves COUNT/2 records "f" in an open transaction; a second one with
     *  the same transactional.id initialises, which fences the first, and commits COUNT/2
     *  records "g". The first then tries one more send and a commit, and an abort if the
     *  commit failed. */
    static void txnFence(String bootstrap, String topic, int count) throws Exception {
        int n = count / 2;
        String id = topic + "-tx";
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> sent = new ArrayList<>();
        KafkaProducer<String, String> first = txnProducer(bootstrap, id);
        first.initTransactions();
        first.beginTransaction();
        sendAll(first, topic, "f", n, fs, sent);
        first.flush();
        try (KafkaProducer<String, String> second = txnProducer(bootstrap, id)) {
            second.initTransactions();
            System.out.println("X second-init ok");
            String outcome = "ok";
            try {
                first.send(new ProducerRecord<>(topic, "k0", "late")).get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                outcome = errorName(e);
            }
            System.out.println("X send " + outcome);
            outcome = "ok";
            try {
                first.commitTransaction();
            } catch (Exception e) {
                outcome = errorName(e);
            }
            System.out.println("X commit " + outcome);
            if (!outcome.equals("ok")) {
                // What an application does after a failed commit: abort, and learn whether the
                // error was abortable or the producer is done.
                outcome = "ok";
                try {
                    first.abortTransaction();
                } catch (Exception e) {
                    outcome = errorName(e);
                }
                System.out.println("X abort " + outcome);
            }
            first.close(Duration.ofSeconds(5));
            second.beginTransaction();
            sendAll(second, topic, "g", n, fs, sent);
            second.commitTransaction();
        }
        printAcked(fs, sent);
        readTxn(bootstrap, topic, "committed", "read_committed", n);
        readTxn(bootstrap, topic, "uncommitted", "read_uncommitted", 2 * n);
    }

    /** Reads INPUT (COUNT records) in GROUP and writes "t-" + value to OUTPUT, each poll in a
     *  transaction that also commits the group's offsets; the third is aborted after its
     *  records were flushed, and its input read again. Ends when every input offset is
     *  committed, then reads OUTPUT both ways. */
    static void txnConsumeTransformProduce(String bootstrap, String input, String output, String group, int count) throws Exception {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("group.id", group);
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "earliest");
        cp.put("isolation.level", "read_committed");
        cp.put("max.poll.records", "100");
        // COMPAT_GROUP_PROTOCOL=consumer: the group's offsets go to the transaction with the
        // member epoch of the consumer group protocol (KIP-848).
        if ("consumer".equals(System.getenv("COMPAT_GROUP_PROTOCOL"))) cp.put("group.protocol", "consumer");
        int aborted = 0, batches = 0;
        Map<Integer, Long> done = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
             KafkaProducer<String, String> p = txnProducer(bootstrap, group + "-tx")) {
            p.initTransactions();
            c.subscribe(List.of(input));
            long deadline = System.currentTimeMillis() + 90_000;
            while (done.values().stream().mapToLong(Long::longValue).sum() < count && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                if (rs.isEmpty()) continue;
                p.beginTransaction();
                for (ConsumerRecord<String, String> r : rs) p.send(new ProducerRecord<>(output, r.key(), "t-" + r.value()));
                batches++;
                if (batches == 3) {
                    p.flush();
                    p.abortTransaction();
                    aborted += rs.count();
                    for (TopicPartition tp : rs.partitions()) c.seek(tp, rs.records(tp).get(0).offset());
                    System.out.println("X aborted " + rs.count());
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (TopicPartition tp : rs.partitions()) {
                    List<ConsumerRecord<String, String>> part = rs.records(tp);
                    offsets.put(tp, new OffsetAndMetadata(part.get(part.size() - 1).offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) done.put(e.getKey().partition(), e.getValue().offset());
                System.out.println("X committed " + rs.count());
            }
        }
        readTxn(bootstrap, output, "committed", "read_committed", count);
        readTxn(bootstrap, output, "uncommitted", "read_uncommitted", count + aborted);
    }
}
