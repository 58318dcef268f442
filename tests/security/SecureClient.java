// The Apache Kafka Java client and Kafka's own CLI tools in one JVM, for tls_sasl.py: a JVM
// start costs seconds, so every Java check against one broker goes through one process.
//
// Reads one command per line from stdin, fields separated by tabs:
//
//   roundtrip PROPS TOPIC COUNT   with the client properties in the file PROPS, produce COUNT
//                                 keyed records to TOPIC (record i: key "k{i%7}", value
//                                 "java-v{i}"), then read every partition of TOPIC from its
//                                 start; answers "OK" with "key=value" lines in the order read
//   probe PROPS                   ask for the cluster's nodes through an Admin client;
//                                 answers "OK" with the node count
//   scram-users PROPS             describeUserScramCredentials for every user; answers "OK"
//                                 with "user MECHANISM iterations=N, ..." lines, sorted
//   tool CLASS STDIN ARGS...      run a Kafka CLI tool's main class with ARGS, its stdin read
//                                 from the file STDIN ("-" for none); answers its exit code
//                                 with what it printed on stdout, then on stderr
//
// Each answer is a header line "STATUS LENGTH" and LENGTH bytes of UTF-8 text. A command that
// fails answers "ERR" with "ExceptionClass: message" (the cause of an ExecutionException).

import java.io.*;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;
import org.apache.kafka.common.utils.internals.Exit;

public class SecureClient {
    /** How long one command may take; a refused connection is retried until then. */
    static final int COMMAND_TIMEOUT_MS = 20_000;
    /** How long a probe waits: a plaintext client on a TLS listener only ever times out. */
    static final int PROBE_TIMEOUT_MS = 8_000;

    /** Unwinds a tool that asked to exit; an Error, so the tools' catch (Exception) pass it on. */
    static final class ToolExit extends Error {
        ToolExit() {
            super(null, null, false, false);
        }
    }

    /** An output stream whose target changes per tool run. */
    static final class Switch extends OutputStream {
        volatile OutputStream target = OutputStream.nullOutputStream();

        @Override
        public void write(int b) throws IOException {
            target.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            target.write(b, off, len);
        }
    }

    static PrintStream realOut;
    static final Switch toolOut = new Switch(), toolErr = new Switch();
    static int toolExitCode = -1;

    public static void main(String[] ignored) throws Exception {
        realOut = System.out;
        InputStream realIn = System.in;
        System.setOut(new PrintStream(toolOut, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(toolErr, true, StandardCharsets.UTF_8));
        Exit.Procedure exit = (code, message) -> {
            if (toolExitCode < 0) {
                toolExitCode = code;
            }
            throw new ToolExit();
        };
        Exit.setExitProcedure(exit);
        Exit.setHaltProcedure(exit);
        BufferedReader in = new BufferedReader(new InputStreamReader(realIn, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split("\t", -1);
            String status = "OK";
            String body;
            try {
                switch (f[0]) {
                    case "roundtrip": body = roundtrip(load(f[1]), f[2], Integer.parseInt(f[3])); break;
                    case "probe": body = probe(load(f[1])); break;
                    case "scram-users": body = scramUsers(load(f[1])); break;
                    case "tool":
                        String[] r = tool(f[1], f[2], Arrays.copyOfRange(f, 3, f.length));
                        status = r[0];
                        body = r[1];
                        break;
                    default: throw new IllegalArgumentException("unknown command " + f[0]);
                }
            } catch (Exception e) {
                status = "ERR";
                body = describe(e);
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            realOut.print(status + " " + bytes.length + "\n");
            realOut.write(bytes);
            realOut.flush();
        }
        System.exit(0);
    }

    static Properties load(String path) throws IOException {
        Properties p = new Properties();
        try (Reader r = new InputStreamReader(new FileInputStream(path), StandardCharsets.UTF_8)) {
            p.load(r);
        }
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", String.valueOf(COMMAND_TIMEOUT_MS));
        return p;
    }

    static String describe(Throwable e) {
        while ((e instanceof ExecutionException || e instanceof CompletionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e.getClass().getSimpleName() + ": " + e.getMessage();
    }

    static String probe(Properties props) throws Exception {
        props.put("request.timeout.ms", String.valueOf(PROBE_TIMEOUT_MS / 2));
        props.put("default.api.timeout.ms", String.valueOf(PROBE_TIMEOUT_MS));
        try (Admin admin = Admin.create(props)) {
            return String.valueOf(admin.describeCluster().nodes().get(COMMAND_TIMEOUT_MS, TimeUnit.MILLISECONDS).size());
        }
    }

    static String scramUsers(Properties props) throws Exception {
        try (Admin admin = Admin.create(props)) {
            List<String> lines = new ArrayList<>();
            for (Map.Entry<String, UserScramCredentialsDescription> e :
                     admin.describeUserScramCredentials().all().get(COMMAND_TIMEOUT_MS, TimeUnit.MILLISECONDS).entrySet()) {
                List<String> infos = new ArrayList<>();
                for (ScramCredentialInfo info : e.getValue().credentialInfos()) {
                    infos.add(info.mechanism().mechanismName() + " iterations=" + info.iterations());
                }
                Collections.sort(infos);
                lines.add(e.getKey() + " " + String.join(", ", infos));
            }
            Collections.sort(lines);
            return String.join("\n", lines) + "\n";
        }
    }

    static String roundtrip(Properties props, String topic, int count) throws Exception {
        Properties pp = new Properties();
        pp.putAll(props);
        pp.put("acks", "all");
        pp.put("linger.ms", "5");
        pp.put("delivery.timeout.ms", String.valueOf(COMMAND_TIMEOUT_MS));
        pp.put("max.block.ms", String.valueOf(COMMAND_TIMEOUT_MS));
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, "k" + (i % 7), "java-v" + i)));
            }
            p.flush();
            for (Future<RecordMetadata> f : sent) {
                f.get(COMMAND_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }
        StringBuilder got = new StringBuilder();
        int read = 0;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic)) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + COMMAND_TIMEOUT_MS;
            while (read < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.append(r.key()).append('=').append(r.value()).append('\n');
                    read++;
                }
            }
        }
        return got.toString();
    }

    /** Runs a tool's main in this JVM, as a JVM of its own would: its exit code and output. */
    static String[] tool(String cls, String stdin, String[] args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        toolOut.target = out;
        toolErr.target = err;
        toolExitCode = -1;
        InputStream savedIn = System.in;
        System.setIn(stdin.equals("-") ? InputStream.nullInputStream() : new FileInputStream(stdin));
        int code = 0;
        try {
            Class.forName(cls).getMethod("main", String[].class).invoke(null, (Object) args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            if (!(e.getCause() instanceof ToolExit)) {
                System.err.print("Exception in thread \"main\" ");
                e.getCause().printStackTrace(System.err);
                code = 1;
            }
        } finally {
            System.out.flush();
            System.err.flush();
            toolOut.target = OutputStream.nullOutputStream();
            toolErr.target = OutputStream.nullOutputStream();
            System.in.close();
            System.setIn(savedIn);
        }
        if (toolExitCode >= 0) {
            code = toolExitCode;
        }
        return new String[] {String.valueOf(code), out.toString(StandardCharsets.UTF_8) + err.toString(StandardCharsets.UTF_8)};
    }
}
