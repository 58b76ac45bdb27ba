package dev.tessera.stream;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/** The loop of the test drivers ({@link BucketsTrace}, {@link ExactTrace}): one step per stdin line,
 * split on spaces, what each step appends printed at the end. */
final class TraceSteps {
    interface Step {
        void apply(String[] fields, StringBuilder out);
    }

    static void run(Step step) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            step.apply(line.trim().split(" "), out);
        }
        System.out.print(out);
    }

    private TraceSteps() {
    }
}
