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
    BigInteger n;
    int exp;

    public Exact() {
        this(BigInteger.ZERO, 0);
    }

    Exact(BigInteger n, int exp) {
        this.n = n;
        this.exp = exp;
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
        return new Exact(BigInteger.valueOf(bits < 0 ? -mantissa : mantissa), e + tz);
    }

    public static Exact of(long v) {
        return new Exact(BigInteger.valueOf(v), 0);
    }

    public Exact copy() {
        return new Exact(n, exp);
    }

    public void add(Exact o) {
        combine(o.n, o.exp);
    }

    public void subtract(Exact o) {
        combine(o.n.negate(), o.exp);
    }

    private void combine(BigInteger m, int e) {
        if (m.signum() == 0) {
            return;
        }
        if (n.signum() == 0) {
            n = m;
            exp = e;
        } else if (e == exp) {
            n = n.add(m);
        } else if (e < exp) {
            n = n.shiftLeft(exp - e).add(m);
            exp = e;
        } else {
            n = n.add(m.shiftLeft(e - exp));
        }
        if (n.signum() == 0) {
            exp = 0;
        }
    }

    public boolean isZero() {
        return n.signum() == 0;
    }

    /** The nearest double (ties to even), as Python's float() of the same exact Decimal. */
    public double toDouble() {
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
