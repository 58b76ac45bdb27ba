package dev.tessera.stream;

import java.math.BigInteger;

/**
 * An exact sum of doubles (and longs): n * 2^exp. Every double is such a dyadic number, so sums
 * and differences stay exact with nothing but shifts and integer additions (no powers of ten, as
 * BigDecimal would need), a window decays to exactly 0, and {@link #toDouble()} rounds the exact
 * value once, half-even, which is what Python's float(Decimal) gives for the same exact value.
 * Mutable: buckets and totals are updated in place.
 */
public final class Exact {
    // The mantissa: `small` while it fits in a long (`big` null), else `big`. Most sums of a bucket
    // fit: one object where a BigInteger and its int[] made three (buckets are most of a job's heap).
    long small;
    BigInteger big;
    int exp;

    public Exact() {
        this(0L, 0);
    }

    private Exact(long small, int exp) {
        this.small = small;
        this.exp = exp;
    }

    Exact(BigInteger n, int exp) {
        set(n, exp);
    }

    /** The mantissa, whichever way it is held. */
    BigInteger n() {
        return big != null ? big : BigInteger.valueOf(small);
    }

    private void set(BigInteger n, int e) {
        if (n.bitLength() < 64) {
            small = n.longValue();
            big = null;
        } else {
            big = n;
        }
        exp = n.signum() == 0 ? 0 : e;
    }

    public static Exact of(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new IllegalArgumentException("cannot sum " + d);
        }
        long bits = Double.doubleToRawLongBits(d);
        int biased = (int) ((bits >>> 52) & 0x7ff);
        long mantissa = bits & 0xfffffffffffffL;
        if (biased != 0) {
            mantissa |= 1L << 52;
        }
        if (mantissa == 0) {
            return new Exact();
        }
        int e = (biased == 0 ? 1 : biased) - 1075;
        int tz = Long.numberOfTrailingZeros(mantissa);
        mantissa >>>= tz;
        return new Exact(bits < 0 ? -mantissa : mantissa, e + tz);
    }

    public static Exact of(long v) {
        return v == Long.MIN_VALUE ? new Exact(BigInteger.valueOf(v), 0) : new Exact(v, 0);
    }

    public Exact copy() {
        Exact c = new Exact(small, exp);
        c.big = big;  // BigIntegers are immutable: sharing one is safe
        return c;
    }

    public void add(Exact o) {
        if (big == null && o.big == null && addSmall(o.small, o.exp)) {
            return;
        }
        combine(o.n(), o.exp);
    }

    public void subtract(Exact o) {
        if (big == null && o.big == null && o.small != Long.MIN_VALUE && addSmall(-o.small, o.exp)) {
            return;
        }
        combine(o.n().negate(), o.exp);
    }

    /** this += m * 2^e within longs; false (nothing changed) if a shift or the sum would overflow. */
    private boolean addSmall(long m, int e) {
        if (m == 0) {
            return true;
        }
        if (small == 0) {
            small = m;
            exp = e;
            return true;
        }
        long a = small, b = m;
        int to = Math.min(exp, e);
        if (exp > e) {
            a = shifted(a, exp - e);
        } else if (e > exp) {
            b = shifted(b, e - exp);
        }
        if (a == Long.MIN_VALUE || b == Long.MIN_VALUE) {
            return false;  // no room left to shift (or the marker of an overflowed shift)
        }
        long r = a + b;
        if (((a ^ r) & (b ^ r)) < 0 || r == Long.MIN_VALUE) {
            return false;  // overflow
        }
        small = r;
        exp = r == 0 ? 0 : to;
        return true;
    }

    /** x * 2^by, or Long.MIN_VALUE if it does not fit in a long. */
    private static long shifted(long x, int by) {
        if (by >= 63) {
            return Long.MIN_VALUE;
        }
        long r = x << by;
        return (r >> by) == x ? r : Long.MIN_VALUE;
    }

    private void combine(BigInteger m, int e) {
        if (m.signum() == 0) {
            return;
        }
        BigInteger n = n();
        if (n.signum() == 0) {
            set(m, e);
        } else if (e == exp) {
            set(n.add(m), exp);
        } else if (e < exp) {
            set(n.shiftLeft(exp - e).add(m), e);
        } else {
            set(n.add(m.shiftLeft(e - exp)), exp);
        }
    }

    public boolean isZero() {
        return big == null ? small == 0 : big.signum() == 0;
    }

    /** The nearest double (ties to even), as Python's float() of the same exact Decimal. */
    public double toDouble() {
        if (big == null && small > -(1L << 53) && small < (1L << 53) && exp >= -1022 && exp <= 1023 - 53) {
            return Math.scalb((double) small, exp);  // 53 bits at a normal exponent: exact
        }
        BigInteger n = n();
        int sign = n.signum();
        if (sign == 0) {
            return 0.0;
        }
        BigInteger a = n.abs();
        int bits = a.bitLength();
        int top = bits - 1 + exp;                       // the value is in [2^top, 2^(top+1))
        if (top > 1023) {
            return sign * Double.POSITIVE_INFINITY;
        }
        int precision = top >= -1022 ? 53 : 53 - (-1022 - top);  // fewer bits below the normal range
        if (precision < 0) {
            return sign * 0.0;                          // below half the smallest subnormal
        }
        int drop = bits - precision;
        double r;
        if (drop <= 0) {
            r = Math.scalb((double) a.longValueExact(), exp);  // fits: exact
        } else {
            long m = a.shiftRight(drop).longValue();
            boolean half = a.testBit(drop - 1);
            boolean sticky = a.getLowestSetBit() < drop - 1;
            if (half && (sticky || (m & 1) == 1)) {
                m++;
            }
            r = Math.scalb((double) m, exp + drop);     // m <= 2^53: exact, and so is the scaling
        }
        return sign < 0 ? -r : r;
    }
}
