import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.kafka.common.utils.internals.Exit;

/**
 * Runs Apache Kafka's CLI tools one after another in one JVM, so a long list of invocations
 * pays for one JVM start instead of one each (tests/compat/tools.py uses it).
 *
 * Reads one invocation per line from stdin: the tool's main class and its arguments,
 * separated by tabs. For each it calls the class's main method with System.out and
 * System.err captured, and writes to the real stdout the exit code, a newline, the byte
 * length of the captured text, a newline and the text: what the tool printed on stdout,
 * then what it printed on stderr, as a separate JVM run of the tool would give.
 *
 * The tools end through Kafka's Exit class, whose exit procedure is replaced here by one
 * that records the first code and unwinds the tool with an Error; a tool that returns
 * without calling it exited with 0.
 */
public final class ToolRunner {
    /** Unwinds a tool that asked to exit; an Error, so the tools' catch (Exception) pass it on. */
    static final class ToolExit extends Error {
        final int code;

        ToolExit(int code) {
            super(null, null, false, false);
            this.code = code;
        }
    }

    /** An output stream whose target changes with each invocation, so a tool that kept a
     * reference to System.out from an earlier run still writes into the current capture. */
    static final class Switch extends OutputStream {
        volatile OutputStream target;

        @Override
        public void write(int b) {
            try {
                target.write(b);
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            try {
                target.write(b, off, len);
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    public static void main(String[] ignored) throws Exception {
        PrintStream realOut = System.out;
        Switch out = new Switch();
        Switch err = new Switch();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        // The first exit ends the run: its code is the tool's, and what the tool prints
        // after it (a catch (Throwable) that reports the unwinding, a second exit) is
        // dropped, as a JVM that had exited would never print it.
        int[] exitCode = {-1};
        OutputStream dropped = OutputStream.nullOutputStream();
        Exit.Procedure exit = (code, message) -> {
            if (exitCode[0] < 0) {
                exitCode[0] = code;
                out.target = dropped;
                err.target = dropped;
            }
            throw new ToolExit(code);
        };
        Exit.setExitProcedure(exit);
        Exit.setHaltProcedure(exit);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", -1);
            ByteArrayOutputStream stdout = new ByteArrayOutputStream();
            ByteArrayOutputStream stderr = new ByteArrayOutputStream();
            out.target = stdout;
            err.target = stderr;
            exitCode[0] = -1;
            int code = 0;
            try {
                Class.forName(parts[0]).getMethod("main", String[].class)
                    .invoke(null, (Object) Arrays.copyOfRange(parts, 1, parts.length));
            } catch (java.lang.reflect.InvocationTargetException e) {
                Throwable cause = e.getCause();
                if (!(cause instanceof ToolExit) && exitCode[0] < 0) {
                    // What the JVM does with an exception out of main: print it, exit 1.
                    System.err.print("Exception in thread \"main\" ");
                    cause.printStackTrace(System.err);
                    code = 1;
                }
            }
            if (exitCode[0] >= 0) {
                code = exitCode[0];
            }
            System.out.flush();
            System.err.flush();
            byte[] text = (stdout.toString(StandardCharsets.UTF_8) + stderr.toString(StandardCharsets.UTF_8))
                .getBytes(StandardCharsets.UTF_8);
            realOut.print(code + "\n" + text.length + "\n");
            realOut.write(text);
            realOut.flush();
        }
    }
}
