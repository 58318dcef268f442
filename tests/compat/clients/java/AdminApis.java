// The admin APIs a single node answers without doing anything, driven with the Apache Kafka
// Java client against a broker given on the command line:
//
//   AdminApis BOOTSTRAP PREFIX
//
// It creates PREFIX-a (2 partitions) and PREFIX-b (1 partition), writes 5 records to
// PREFIX-a partition 0, and prints one line per observation, with the broker's own node id
// written as N, so that Apache Kafka and weir can be compared line by line (admin_apis.py):
//
//   describe ...     describeTopics (DescribeTopicPartitions in 4.x): partitions, leader,
//                    replicas, ISR, eligible leader replicas, authorized operations; one page
//                    of a single partition at a time; an unknown topic
//   elect ...        electLeaders, preferred and unclean, on a partition, on every partition,
//                    on an unknown topic and an unknown partition
//   reassign ...     alterPartitionReassignments to this node, to a broker that does not
//                    exist, to this node twice, and a cancellation; then
//                    listPartitionReassignments
//   features ...     describeFeatures: supported and finalized levels (the epoch only as
//                    present or not, since it is the metadata log offset on Kafka)
//   epoch ...        a consumer seeking with a leader epoch (OffsetForLeaderEpoch):
//                    within the log it reads on; past the end it sees a truncation
//
// Exits non-zero only when the program itself fails; the lines are what is compared.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.*;

public class AdminApis {
    static int node;

    static void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String ids(Collection<Node> nodes) {
        if (nodes == null) return "null";
        List<String> s = new ArrayList<>();
        for (Node n : nodes) s.add(n.id() == node ? "N" : String.valueOf(n.id()));
        return String.join(",", s);
    }

    static String error(Throwable e) {
        Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return c.getClass().getSimpleName() + ": " + c.getMessage();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], prefix = args[1];
        String a = prefix + "-a", b = prefix + "-b";
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(props)) {
            node = admin.describeCluster().nodes().get().iterator().next().id();
            admin.createTopics(List.of(new NewTopic(a, 2, (short) 1), new NewTopic(b, 1, (short) 1))).all().get();
            produce(bootstrap, a);
            describe(admin, a, b, prefix);
            elect(admin, a, prefix);
            reassign(admin, a, prefix);
            features(admin);
            epoch(bootstrap, a);
            admin.deleteTopics(List.of(a, b)).all().get();
        }
        System.exit(0);
    }

    static void produce(String bootstrap, String topic) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        try (Producer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 5; i++) producer.send(new ProducerRecord<>(topic, 0, null, "v" + i)).get();
        }
    }

    static void describe(Admin admin, String a, String b, String prefix) throws Exception {
        for (int limit : new int[] {2000, 1}) {
            DescribeTopicsOptions o = new DescribeTopicsOptions().includeAuthorizedOperations(true)
                .partitionSizeLimitPerResponse(limit);
            Map<String, TopicDescription> all = admin.describeTopics(List.of(a, b), o).allTopicNames().get();
            for (String name : List.of(a, b)) {
                TopicDescription d = all.get(name);
                out("describe limit=" + limit + " " + name.replace(prefix, "P") + " internal=" + d.isInternal()
                    + " ops=" + new TreeSet<>(d.authorizedOperations()));
                for (TopicPartitionInfo pi : d.partitions()) {
                    out("describe limit=" + limit + " " + name.replace(prefix, "P") + "-" + pi.partition()
                        + " leader=" + ids(List.of(pi.leader())) + " replicas=" + ids(pi.replicas())
                        + " isr=" + ids(pi.isr()) + " elr=" + ids(pi.elr()) + " lastKnownElr=" + ids(pi.lastKnownElr()));
                }
            }
        }
        try {
            admin.describeTopics(List.of(prefix + "-none")).allTopicNames().get();
            out("describe unknown: found");
        } catch (ExecutionException e) {
            out("describe unknown: " + error(e).replace(prefix, "P"));
        }
    }

    static void elect(Admin admin, String a, String prefix) {
        List<TopicPartition> cases = List.of(new TopicPartition(a, 0), new TopicPartition(prefix + "-none", 0),
            new TopicPartition(a, 5));
        for (ElectionType type : ElectionType.values()) {
            for (TopicPartition tp : cases) {
                String what = "elect " + type + " " + tp.toString().replace(prefix, "P") + ": ";
                try {
                    Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(type, Set.of(tp)).partitions().get();
                    out(what + r.get(tp).map(AdminApis::error).orElse("elected").replace(prefix, "P"));
                } catch (Exception e) {
                    out(what + error(e).replace(prefix, "P"));
                }
            }
            try {
                Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(type, null).partitions().get();
                long mine = r.keySet().stream().filter(tp -> tp.topic().startsWith(prefix)).count();
                out("elect " + type + " all: " + mine + " of this run's partitions listed, "
                    + r.values().stream().filter(Optional::isPresent).count() + " errors");
            } catch (Exception e) {
                out("elect " + type + " all: " + error(e));
            }
        }
    }

    static void reassign(Admin admin, String a, String prefix) throws Exception {
        Map<String, Optional<NewPartitionReassignment>> cases = new LinkedHashMap<>();
        cases.put("to N", Optional.of(new NewPartitionReassignment(List.of(node))));
        cases.put("to 7", Optional.of(new NewPartitionReassignment(List.of(7))));
        cases.put("to N,7", Optional.of(new NewPartitionReassignment(List.of(node, 7))));
        cases.put("to N,N", Optional.of(new NewPartitionReassignment(List.of(node, node))));
        cases.put("cancel", Optional.empty());
        for (Map.Entry<String, Optional<NewPartitionReassignment>> c : cases.entrySet()) {
            for (TopicPartition tp : List.of(new TopicPartition(a, 0), new TopicPartition(a, 5),
                    new TopicPartition(prefix + "-none", 0))) {
                String what = "reassign " + tp.toString().replace(prefix, "P") + " " + c.getKey() + ": ";
                try {
                    admin.alterPartitionReassignments(Map.of(tp, c.getValue())).all().get();
                    out(what + "ok");
                } catch (Exception e) {
                    out(what + error(e).replace(prefix, "P").replace(" " + node + ",", " N,").replace(" " + node + " ", " N "));
                }
            }
        }
        Map<TopicPartition, PartitionReassignment> listed = admin.listPartitionReassignments().reassignments().get();
        out("reassign list all: " + listed.size());
        listed = admin.listPartitionReassignments(Set.of(new TopicPartition(a, 0))).reassignments().get();
        out("reassign list P-a-0: " + listed.size());
    }

    static void features(Admin admin) throws Exception {
        FeatureMetadata f = admin.describeFeatures().featureMetadata().get();
        for (Map.Entry<String, SupportedVersionRange> e : new TreeMap<>(f.supportedFeatures()).entrySet()) {
            out("features supported " + e.getKey() + " " + e.getValue().minVersion() + ".." + e.getValue().maxVersion());
        }
        for (Map.Entry<String, FinalizedVersionRange> e : new TreeMap<>(f.finalizedFeatures()).entrySet()) {
            out("features finalized " + e.getKey() + " " + e.getValue().minVersionLevel() + ".." + e.getValue().maxVersionLevel());
        }
        out("features epoch present=" + f.finalizedFeaturesEpoch().isPresent());
    }

    static void epoch(String bootstrap, String topic) {
        TopicPartition tp = new TopicPartition(topic, 0);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("auto.offset.reset", "none");
        p.put("enable.auto.commit", "false");
        try (Consumer<String, String> c = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            c.assign(List.of(tp));
            // Within the log: the position is validated against epoch 0's end offset, 5.
            c.seek(tp, new OffsetAndMetadata(3, Optional.of(0), ""));
            List<String> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 15000;
            while (got.size() < 2 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r.offset() + ":" + r.value() + ":epoch=" + r.leaderEpoch().orElse(-1));
                }
            }
            out("epoch seek 3 with epoch 0: read " + got);
            // Past the end: epoch 0 ends at 5, before the position, so the log was truncated.
            c.seek(tp, new OffsetAndMetadata(50, Optional.of(0), ""));
            String seen = "nothing";
            deadline = System.currentTimeMillis() + 15000;
            while (seen.equals("nothing") && System.currentTimeMillis() < deadline) {
                try {
                    if (!c.poll(Duration.ofMillis(200)).isEmpty()) seen = "records";
                } catch (LogTruncationException e) {
                    seen = "LogTruncationException divergent=" + e.divergentOffsets().get(tp);
                } catch (Exception e) {
                    seen = e.getClass().getSimpleName();
                }
            }
            out("epoch seek 50 with epoch 0: " + seen);
        }
    }
}
