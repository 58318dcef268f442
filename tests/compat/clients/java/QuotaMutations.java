// Topic changes under a controller_mutation_rate quota (KIP-599), driven with the Apache
// Kafka Java admin client against a broker given on the command line:
//
//   QuotaMutations BOOTSTRAP CLIENT_ID PREFIX
//
// The caller has given CLIENT_ID a controller_mutation_rate of 2 partitions per second, so
// its bucket holds 22 partitions. Each step uses a new admin client, so that no step waits
// out the throttle time an earlier response told its connection (KIP-219); with retries on
// quota violations turned off, the steps are
//
//   1. create PREFIX-big (30 partitions) and PREFIX-next (5) in one request: big fits the
//      full bucket, which goes into debt, so next is refused;
//   2. add 5 partitions to PREFIX-big: refused while the bucket is in debt;
//   3. delete PREFIX-big: refused the same way;
//
// then, with the admin client's default (it retries a throttled change after the throttle
// time), 4. create PREFIX-later (1 partition), which succeeds once the bucket refilled.
//
// It prints one line per outcome (the exception's class, and whether it carried a throttle
// time), so that Apache Kafka and weir can be compared line by line
// (tests/security/quotas_requests.py). Exits non-zero only when the program itself fails.

import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.errors.ThrottlingQuotaExceededException;

public class QuotaMutations {
    static void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String outcome(Step step) {
        try {
            step.run();
            return "ok";
        } catch (ExecutionException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            if (c instanceof ThrottlingQuotaExceededException t) {
                return c.getClass().getSimpleName() + " throttle_ms>0=" + (t.throttleTimeMs() > 0);
            }
            return c.getClass().getSimpleName() + ": " + c.getMessage();
        } catch (Exception e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    interface Step {
        void run() throws Exception;
    }

    static Admin admin(String bootstrap, String clientId) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("client.id", clientId);
        return Admin.create(props);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], clientId = args[1], prefix = args[2];
        String big = prefix + "-big", next = prefix + "-next", later = prefix + "-later";
        try (Admin admin = admin(bootstrap, clientId)) {
            CreateTopicsResult r = admin.createTopics(
                List.of(new NewTopic(big, 30, (short) 1), new NewTopic(next, 5, (short) 1)),
                new CreateTopicsOptions().retryOnQuotaViolation(false));
            out("create big(30): " + outcome(() -> r.values().get(big).get()));
            out("create next(5): " + outcome(() -> r.values().get(next).get()));
        }
        try (Admin admin = admin(bootstrap, clientId)) {
            out("create-partitions big(+5): " + outcome(() ->
                admin.createPartitions(Map.of(big, NewPartitions.increaseTo(35)),
                    new CreatePartitionsOptions().retryOnQuotaViolation(false)).all().get()));
        }
        try (Admin admin = admin(bootstrap, clientId)) {
            out("delete big: " + outcome(() ->
                admin.deleteTopics(List.of(big), new DeleteTopicsOptions().retryOnQuotaViolation(false)).all().get()));
        }
        try (Admin admin = admin(bootstrap, clientId)) {
            long started = System.nanoTime();
            String retried = outcome(() ->
                admin.createTopics(List.of(new NewTopic(later, 1, (short) 1))).all().get());
            long waitedMs = (System.nanoTime() - started) / 1_000_000;
            out("create later(1), retrying: " + retried + " waited>=1s=" + (waitedMs >= 1000));
            System.err.println("the retrying create waited " + waitedMs + " ms");
            Set<String> names = new TreeSet<>(admin.listTopics().names().get());
            names.removeIf(n -> !n.startsWith(prefix + "-"));
            out("topics: " + String.join(",", names).replace(prefix + "-", ""));
            int partitions = admin.describeTopics(List.of(big)).allTopicNames().get().get(big).partitions().size();
            out("big partitions: " + partitions);
        }
        System.exit(0);
    }
}
