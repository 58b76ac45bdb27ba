package dev.tessera.stream;

import java.math.BigDecimal;
import java.math.BigInteger;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.io.schubfach.DoubleToDecimal;

/**
 * JSON written byte for byte as Python's json.dumps writes it (ensure_ascii, float repr), so both
 * engines put identical rows on the features topic and their outputs can be compared as strings.
 */
public final class PyJson {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private PyJson() {
    }

    public static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                case '\b': b.append("\\b"); break;
                case '\f': b.append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) {  // Python escapes everything outside ' '..'~'
                        b.append("\\u").append(HEX[(c >> 12) & 15]).append(HEX[(c >> 8) & 15])
                                .append(HEX[(c >> 4) & 15]).append(HEX[c & 15]);
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }

    /**
     * Java writes at least two significant digits where one would round-trip, and then the closest two:
     * Double.MIN_VALUE is "4.9E-324", Python's repr "5e-324". Only subnormals have so few bits that the
     * closest two digits are not "d.0". Returns the decimal point, with `digits` cut to one if one will do.
     */
    private static int oneDigit(double x, StringBuilder digits, int decpt) {
        BigDecimal exact = new BigDecimal(x);
        BigDecimal best = null;
        int first = digits.charAt(0) - '0';
        for (int d = first; d <= first + 1; d++) {
            BigDecimal candidate = new BigDecimal(BigInteger.valueOf(d), 1 - decpt);  // d * 10^(decpt - 1)
            if (Double.parseDouble(candidate.toString()) == x
                    && (best == null || candidate.subtract(exact).abs().compareTo(best.subtract(exact).abs()) < 0)) {
                best = candidate;
            }
        }
        if (best == null) {
            return decpt;
        }
        String one = best.unscaledValue().toString();  // "1" to "10"
        digits.setLength(0);
        digits.append(one.charAt(0));
        return decpt + one.length() - 1;
    }

    /** float.__repr__: the shortest digits that round-trip, in fixed notation for 1e-4 <= |x| < 1e16. */
    public static void number(StringBuilder b, double x) {
        if (Double.isNaN(x)) {
            b.append("NaN");
            return;
        }
        if (Double.isInfinite(x)) {
            b.append(x > 0 ? "Infinity" : "-Infinity");
            return;
        }
        if (x == 0) {
            b.append((Double.doubleToRawLongBits(x) < 0) ? "-0.0" : "0.0");
            return;
        }
        // Java's shortest form, e.g. "1.2345E-5" or "123.45": split it into digits and a decimal exponent.
        String java = DoubleToDecimal.toString(x);
        int start = 0;
        if (java.charAt(0) == '-') {
            b.append('-');
            start = 1;
        }
        int e = java.indexOf('E');
        String mantissa = e < 0 ? java.substring(start) : java.substring(start, e);
        int exp10 = e < 0 ? 0 : Integer.parseInt(java.substring(e + 1));
        int dot = mantissa.indexOf('.');
        StringBuilder digits = new StringBuilder(mantissa.length());
        digits.append(mantissa, 0, dot).append(mantissa, dot + 1, mantissa.length());
        int decpt = dot + exp10;  // value = 0.DIGITS * 10^decpt
        int lead = 0;
        while (lead < digits.length() - 1 && digits.charAt(lead) == '0') {
            lead++;
            decpt--;
        }
        digits.delete(0, lead);
        int end = digits.length();
        while (end > 1 && digits.charAt(end - 1) == '0') {
            end--;
        }
        digits.setLength(end);
        if (digits.length() == 2 && Math.abs(x) < Double.MIN_NORMAL) {
            decpt = oneDigit(Math.abs(x), digits, decpt);
        }
        int n = digits.length();
        if (decpt <= -4 || decpt > 16) {
            b.append(digits.charAt(0));
            if (n > 1) {
                b.append('.').append(digits, 1, n);
            }
            int exp = decpt - 1;
            b.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            if (a < 10) {
                b.append('0');
            }
            b.append(a);
        } else if (decpt <= 0) {
            b.append("0.");
            for (int i = 0; i < -decpt; i++) {
                b.append('0');
            }
            b.append(digits);
        } else if (decpt >= n) {
            b.append(digits);
            for (int i = n; i < decpt; i++) {
                b.append('0');
            }
            b.append(".0");
        } else {
            b.append(digits, 0, decpt).append('.').append(digits, decpt, n);
        }
    }
}
