package dev.tessera.stream;

/**
 * {@link Buckets} driven by a script on stdin, its contents printed after each step, for
 * tests/streaming/test_buckets.py to check against a plain sorted map. Two slots: 0 counts, 1 sums.
 *
 *   add LEAVE SLOT VALUE   find-or-create the bucket, then count (slot 0) or add VALUE (slot 1)
 *   drop AS_OF             drop the oldest buckets while they leave at or before AS_OF
 *   copy                   carry on with a copy
 *   fork LEAVE SLOT VALUE  copy, apply the add to the original, print the copy (which must not change)
 *
 *   capacity               print the arrays' capacity (how many buckets they have room for)
 *
 * Each printed line: "leave:count:sum" per bucket, oldest first, space-separated ("-" for no sum).
 * The one argument, if any: how many buckets the window holds at once ({@link Buckets#limit});
 * without it the arrays grow by doubling alone.
 */
public final class BucketsTrace {
    private Buckets b = new Buckets();
    private final int limit;

    private BucketsTrace(int limit) {
        this.limit = limit;
    }

    public static void main(String[] args) throws Exception {
        BucketsTrace trace = new BucketsTrace(args.length > 0 ? Buckets.limit(Long.parseLong(args[0])) : Integer.MAX_VALUE);
        TraceSteps.run(trace::step);
    }

    private void step(String[] f, StringBuilder out) {
        switch (f[0]) {
            case "add":
                add(b, f);
                dump(b, out);
                break;
            case "drop":
                long asOf = Long.parseLong(f[1]);
                while (b.size() > 0 && b.leave(b.oldest()) <= asOf) {
                    b.dropOldest();
                }
                dump(b, out);
                break;
            case "copy":
                b = b.copy();
                dump(b, out);
                break;
            case "fork":
                Buckets before = b.copy();
                add(b, f);
                dump(before, out);
                break;
            case "capacity":
                out.append(b.leaves.length).append('\n');
                break;
            default:
                throw new IllegalArgumentException("unknown step " + String.join(" ", f));
        }
    }

    private void add(Buckets b, String[] f) {
        int p = b.find(Long.parseLong(f[1]), 2, limit);
        if (Integer.parseInt(f[2]) == 0) {
            b.addCount(p, 0);
        } else {
            b.addSum(p, 1, Exact.of(Long.parseLong(f[3])));
        }
    }

    private static void dump(Buckets b, StringBuilder out) {
        for (int p = b.oldest(); p < b.oldest() + b.size(); p++) {
            Exact sum = b.sum(p, 1);
            out.append(b.leave(p)).append(':').append(b.count(p, 0)).append(':')
                    .append(sum == null ? "-" : Long.toString((long) sum.toDouble())).append(' ');
        }
        out.append('\n');
    }
}
