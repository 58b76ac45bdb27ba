package dev.tessera.stream;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * Validate's steps (RecordValidator) without a cluster, for the equivalence test against the Python validator
 * (tests/streaming/test_jvm_validation.py). Input lines: "PARTITION NOW_MS WRITTEN_MS BASE64" ("-" for a
 * message without a value); output, one line each: "event <Event.toJson()>" or "dlq <envelope>".
 *
 *     java -cp tessera-aggregator.jar:flink-dist.jar dev.tessera.stream.CheckEvents PARTITIONS IDLE_MS
 */
public final class CheckEvents {
    private CheckEvents() {
    }

    public static void main(String[] args) throws Exception {
        RecordValidator validator = new RecordValidator(Integer.parseInt(args[0]), Long.parseLong(args[1]));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] parts = line.split(" ", -1);
            int partition = Integer.parseInt(parts[0]);
            long now = Long.parseLong(parts[1]);
            long written = Long.parseLong(parts[2]);
            byte[] raw = parts[3].equals("-") ? null : Base64.getDecoder().decode(parts[3]);
            Object result = validator.check(raw, partition, now, written);
            out.write(result instanceof Event ? "event " + ((Event) result).toJson() : "dlq " + result);
            out.newLine();
        }
        out.flush();
    }
}
