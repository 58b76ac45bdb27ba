package dev.tessera.stream;

/**
 * {@link Exact} driven by a script on stdin, for tests/streaming/test_exact.py to check against
 * Python's Fraction. Each line "add X" or "sub X" (X a double, as Python's repr writes it; "addl N"
 * for a long) changes one running sum, and "snap" carries on with a copy; after each line the
 * sum's nearest double is printed as its raw bits (hex), so that -0.0 and the last bit count.
 */
public final class ExactTrace {
    private Exact sum = new Exact();

    public static void main(String[] args) throws Exception {
        ExactTrace trace = new ExactTrace();
        TraceSteps.run(trace::step);
    }

    private void step(String[] f, StringBuilder out) {
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
                throw new IllegalArgumentException("unknown step " + String.join(" ", f));
        }
        out.append(Long.toHexString(Double.doubleToRawLongBits(sum.toDouble()))).append('\n');
    }
}
