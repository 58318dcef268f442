// The Java client's view of authorization, for acl_matrix.py: every API the Java client and
// Kafka's tools use, asked by one principal, each answer printed as one line.
//
//   java AclMatrix setup PROPS             as a super user: the topics, groups, transaction
//                                          and ACLs of the matrix (see acl_matrix.py)
//   java AclMatrix run PROPS USER          every case as USER; prints "case<TAB>answer" lines,
//                                          the answer "OK ..." or "ERR ExceptionClass"
//
// Answers hold only what both brokers must agree on: no offsets of records the other
// principals may or may not have written, no timings, no broker ids.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.stream.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.resource.*;
import org.apache.kafka.common.serialization.*;

public class AclMatrix {
    static final int RECORDS = 5;
    static Properties base;

    interface Case {
        String run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        base = new Properties();
        try (var in = new java.io.FileInputStream(args[1])) {
            base.load(in);
        }
        base.put("default.api.timeout.ms", "15000");
        base.put("request.timeout.ms", "10000");
        if (args[0].equals("setup")) {
            setup();
        } else {
            run(args[2]);
        }
        System.exit(0);
    }

    static Admin admin() {
        return Admin.create(base);
    }

    static Properties producerProps(boolean idempotent, String transactionalId) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("enable.idempotence", String.valueOf(idempotent));
        p.put("acks", idempotent ? "all" : "1");
        p.put("max.block.ms", "10000");
        p.put("delivery.timeout.ms", "15000");
        p.put("linger.ms", "0");
        if (transactionalId != null) p.put("transactional.id", transactionalId);
        return p;
    }

    static KafkaConsumer<String, String> consumer(String group) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        if (group != null) p.put("group.id", group);
        return new KafkaConsumer<>(p);
    }

    static AclBinding allow(ResourceType type, String name, PatternType pattern, String user, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
                new AccessControlEntry("User:" + user, "*", op, AclPermissionType.ALLOW));
    }

    static AclBinding deny(ResourceType type, String name, String user, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, PatternType.LITERAL),
                new AccessControlEntry("User:" + user, "*", op, AclPermissionType.DENY));
    }

    static final ResourceType T = ResourceType.TOPIC, G = ResourceType.GROUP, TX = ResourceType.TRANSACTIONAL_ID,
            C = ResourceType.CLUSTER;
    static final PatternType LIT = PatternType.LITERAL, PRE = PatternType.PREFIXED;

    static void setup() throws Exception {
        try (Admin a = admin()) {
            List<NewTopic> topics = Stream.of("m-describe", "m-delete", "m-alter", "m-configs", "m-produce",
                    "m-consume", "m-records", "m-txn").map(n -> new NewTopic(n, 1, (short) 1)).toList();
            a.createTopics(topics).all().get();
            a.createAcls(List.of(
                    allow(T, "m-describe", LIT, "alice", AclOperation.DESCRIBE),
                    allow(T, "m-create", PRE, "alice", AclOperation.CREATE),
                    allow(T, "m-delete", LIT, "alice", AclOperation.DELETE),
                    allow(T, "m-alter", LIT, "alice", AclOperation.ALTER),
                    allow(T, "m-configs", LIT, "alice", AclOperation.DESCRIBE_CONFIGS),
                    allow(T, "m-configs", LIT, "alice", AclOperation.ALTER_CONFIGS),
                    allow(T, "m-produce", LIT, "alice", AclOperation.WRITE),
                    allow(T, "m-consume", LIT, "alice", AclOperation.READ),
                    allow(G, "g-consume", LIT, "alice", AclOperation.READ),
                    allow(G, "g-delete", LIT, "alice", AclOperation.DELETE),
                    allow(T, "m-records", LIT, "alice", AclOperation.DELETE),
                    allow(TX, "tx-alice", LIT, "alice", AclOperation.WRITE),
                    allow(T, "m-txn", LIT, "alice", AclOperation.WRITE),
                    allow(G, "g-txn", LIT, "alice", AclOperation.READ),
                    allow(C, "kafka-cluster", LIT, "alice", AclOperation.DESCRIBE),
                    // carol: reads every topic but one, one group, her own transactions.
                    allow(T, "*", LIT, "carol", AclOperation.READ),
                    deny(T, "m-consume", "carol", AclOperation.READ),
                    allow(G, "g-consume", LIT, "carol", AclOperation.READ),
                    allow(TX, "tx-carol", LIT, "carol", AclOperation.WRITE),
                    allow(T, "m-txn", LIT, "carol", AclOperation.WRITE)
            )).all().get();
            try (var p = new KafkaProducer<String, String>(producerProps(true, null))) {
                for (int i = 0; i < RECORDS; i++) {
                    p.send(new ProducerRecord<>("m-consume", 0, "k" + i, "v" + i)).get();
                    p.send(new ProducerRecord<>("m-records", 0, "k" + i, "v" + i)).get();
                }
            }
            TopicPartition tp = new TopicPartition("m-consume", 0);
            a.alterConsumerGroupOffsets("g-consume", Map.of(tp, new OffsetAndMetadata(2))).all().get();
            a.alterConsumerGroupOffsets("g-delete", Map.of(tp, new OffsetAndMetadata(1))).all().get();
        }
        System.out.println("setup done");
    }

    static Throwable root(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static void run(String user) throws Exception {
        LinkedHashMap<String, Case> cases = new LinkedHashMap<>();
        Admin a = admin();
        TopicPartition consumeTp = new TopicPartition("m-consume", 0);
        cases.put("list-topics", () -> "OK " + new TreeSet<>(a.listTopics().names().get()).stream()
                .filter(n -> n.startsWith("m-")).collect(Collectors.joining(",")));
        cases.put("describe-topic", () -> "OK partitions=" + a.describeTopics(List.of("m-describe"))
                .allTopicNames().get().get("m-describe").partitions().size());
        cases.put("describe-missing-topic", () -> {
            a.describeTopics(List.of("m-missing")).allTopicNames().get();
            return "OK";
        });
        cases.put("partitions-for", () -> {
            try (var p = new KafkaProducer<String, String>(producerProps(false, null))) {
                return "OK partitions=" + p.partitionsFor("m-describe").size();
            }
        });
        cases.put("create-topic", () -> {
            a.createTopics(List.of(new NewTopic("m-create-" + user, 1, (short) 1))).all().get();
            return "OK";
        });
        cases.put("create-topic-config", () -> {
            var r = a.createTopics(List.of(new NewTopic("m-create2-" + user, 1, (short) 1)));
            r.all().get();
            try {
                return "OK configs=" + r.config("m-create2-" + user).get().entries().size();
            } catch (Exception e) {
                return "OK configs:" + root(e).getClass().getSimpleName();
            }
        });
        cases.put("delete-topic", () -> {
            a.deleteTopics(List.of("m-delete")).all().get();
            return "OK";
        });
        cases.put("delete-missing-topic", () -> {
            a.deleteTopics(List.of("m-delete-missing")).all().get();
            return "OK";
        });
        cases.put("create-partitions", () -> {
            a.createPartitions(Map.of("m-alter", NewPartitions.increaseTo(2))).all().get();
            return "OK";
        });
        ConfigResource configs = new ConfigResource(ConfigResource.Type.TOPIC, "m-configs");
        cases.put("describe-configs", () -> "OK cleanup.policy=" + a.describeConfigs(List.of(configs)).all().get()
                .get(configs).get("cleanup.policy").value());
        cases.put("alter-configs", () -> {
            a.incrementalAlterConfigs(Map.of(configs, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all().get();
            return "OK";
        });
        cases.put("describe-broker-configs", () -> {
            String node = String.valueOf(a.describeCluster().nodes().get().iterator().next().id());
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node);
            a.describeConfigs(List.of(broker)).all().get();
            return "OK";
        });
        cases.put("produce-idempotent", () -> {
            try (var p = new KafkaProducer<String, String>(producerProps(true, null))) {
                p.send(new ProducerRecord<>("m-produce", 0, "k", "v")).get();
                return "OK";
            }
        });
        cases.put("produce-plain", () -> {
            try (var p = new KafkaProducer<String, String>(producerProps(false, null))) {
                p.send(new ProducerRecord<>("m-produce", 0, "k", "v")).get();
                return "OK";
            }
        });
        cases.put("produce-unwritable-topic", () -> {
            try (var p = new KafkaProducer<String, String>(producerProps(false, null))) {
                p.send(new ProducerRecord<>("m-consume", 0, "k", "v")).get();
                return "OK";
            }
        });
        cases.put("consume-assigned", () -> {
            try (var c = consumer(null)) {
                c.assign(List.of(consumeTp));
                c.seekToBeginning(List.of(consumeTp));
                return "OK records=" + pollAll(c);
            }
        });
        cases.put("group-offsets-before", () -> "OK " + offsets(a, "g-consume"));
        cases.put("consume-group", () -> {
            try (var c = consumer("g-consume")) {
                c.subscribe(List.of("m-consume"));
                int n = pollAll(c);
                c.commitSync();
                return "OK records=" + n;
            }
        });
        cases.put("group-offsets-after", () -> "OK " + offsets(a, "g-consume"));
        cases.put("describe-group", () -> {
            var g = a.describeConsumerGroups(List.of("g-consume"),
                    new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true)).all().get().get("g-consume");
            return "OK state=" + g.groupState() + " ops=" + new TreeSet<>(g.authorizedOperations());
        });
        cases.put("list-groups", () -> "OK " + a.listGroups().all().get().stream().map(GroupListing::groupId)
                .filter(g -> g.startsWith("g-")).sorted().collect(Collectors.joining(",")));
        cases.put("alter-offsets", () -> {
            a.alterConsumerGroupOffsets("g-consume", Map.of(consumeTp, new OffsetAndMetadata(1))).all().get();
            return "OK";
        });
        cases.put("delete-offsets", () -> {
            a.deleteConsumerGroupOffsets("g-consume", Set.of(consumeTp)).all().get();
            return "OK";
        });
        cases.put("delete-group", () -> {
            a.deleteConsumerGroups(List.of("g-delete")).all().get();
            return "OK";
        });
        cases.put("list-offsets", () -> "OK latest=" + a.listOffsets(Map.of(consumeTp, OffsetSpec.latest()))
                .all().get().get(consumeTp).offset());
        cases.put("delete-records", () -> "OK low=" + a.deleteRecords(Map.of(new TopicPartition("m-records", 0),
                RecordsToDelete.beforeOffset(1))).lowWatermarks().get(new TopicPartition("m-records", 0))
                .get().lowWatermark());
        cases.put("transaction", () -> {
            try (var p = new KafkaProducer<String, String>(producerProps(true, "tx-" + user))) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>("m-txn", 0, "k", "v")).get();
                p.sendOffsetsToTransaction(Map.of(consumeTp, new OffsetAndMetadata(1)),
                        new ConsumerGroupMetadata("g-txn"));
                p.commitTransaction();
                return "OK";
            }
        });
        cases.put("describe-transaction", () -> {
            // The markers of a commit are written after commitTransaction returns: wait for them.
            TransactionState state = null;
            for (int i = 0; i < 50; i++) {
                state = a.describeTransactions(List.of("tx-alice")).all().get().get("tx-alice").state();
                if (state != TransactionState.PREPARE_COMMIT && state != TransactionState.PREPARE_ABORT) break;
                Thread.sleep(100);
            }
            return "OK state=" + state;
        });
        cases.put("list-transactions", () -> "OK " + a.listTransactions().all().get().stream()
                .map(TransactionListing::transactionalId).filter(t -> t.startsWith("tx-")).sorted()
                .collect(Collectors.joining(",")));
        cases.put("describe-producers", () -> "OK producers=" + a.describeProducers(
                List.of(new TopicPartition("m-txn", 0))).all().get().get(new TopicPartition("m-txn", 0))
                .activeProducers().size());
        cases.put("describe-cluster", () -> {
            var c = a.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            return "OK nodes=" + c.nodes().get().size() + " ops=" + new TreeSet<>(c.authorizedOperations().get());
        });
        cases.put("describe-log-dirs", () -> {
            int node = a.describeCluster().nodes().get().iterator().next().id();
            a.describeLogDirs(List.of(node)).allDescriptions().get();
            return "OK";
        });
        cases.put("list-reassignments", () -> "OK " + a.listPartitionReassignments().reassignments().get().size());
        cases.put("elect-leaders", () -> {
            a.electLeaders(ElectionType.PREFERRED, Set.of(new TopicPartition("m-describe", 0))).all().get();
            return "OK";
        });
        cases.put("describe-acls", () -> "OK acls=" + a.describeAcls(AclBindingFilter.ANY).values().get().size());
        cases.put("create-acls", () -> {
            a.createAcls(List.of(allow(T, "m-x", LIT, user, AclOperation.READ))).all().get();
            return "OK";
        });
        cases.put("delete-acls", () -> {
            a.deleteAcls(List.of(new AclBindingFilter(new ResourcePatternFilter(T, "m-x", LIT),
                    AccessControlEntryFilter.ANY))).all().get();
            return "OK";
        });
        cases.put("describe-scram", () -> "OK " + new TreeSet<>(a.describeUserScramCredentials().users().get()));
        for (var e : cases.entrySet()) {
            String answer;
            try {
                answer = e.getValue().run();
            } catch (Exception ex) {
                answer = "ERR " + root(ex).getClass().getSimpleName();
            }
            System.out.println(e.getKey() + "\t" + answer);
            System.out.flush();
        }
        a.close(Duration.ofSeconds(5));
    }

    static int pollAll(KafkaConsumer<String, String> c) {
        int n = 0;
        long deadline = System.currentTimeMillis() + 15_000;
        while (n < RECORDS && System.currentTimeMillis() < deadline) {
            n += c.poll(Duration.ofMillis(500)).count();
        }
        return n;
    }

    static String offsets(Admin a, String group) throws Exception {
        return a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .entrySet().stream().filter(e -> e.getValue() != null)
                .map(e -> e.getKey() + "=" + e.getValue().offset()).sorted().collect(Collectors.joining(","));
    }
}
