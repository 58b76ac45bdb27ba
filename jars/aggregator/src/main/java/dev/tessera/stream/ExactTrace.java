package dev.tessera.stream;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * {@link Exact} driven by a script on stdin, for tests/streaming/test_exact.py to check against
 * Python's Fraction. Each line "add X" or "sub X" (X a double, as Python's repr writes it; "addl N"
 * for a long) changes one running sum, and "snap" carries on with a copy; after each line the
 * sum's nearest double is printed as its raw bits (hex), so that -0.0 and the last bit count.
 */
public final class ExactTrace {
    public static void main(String[] args) throws Exception {
        Exact sum = new Exact();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "add":
                    sum.add(Exact.of(Double.parseDouble(f[1])));
                    break;
                case "sub":
                    sum.subtract(Exact.of(Double.parseDouble(f[1])));
                    break;
                case "addl":
                    sum.add(Exact.of(Long.parseLong(f[1])));
                    break;
                case "snap":
                    sum = sum.copy();
                    break;
                default:
                    throw new IllegalArgumentException("unknown step " + line);
            }
            out.append(Long.toHexString(Double.doubleToRawLongBits(sum.toDouble()))).append('\n');
        }
        System.out.print(out);
    }
}
