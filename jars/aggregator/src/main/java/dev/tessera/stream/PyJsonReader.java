package dev.tessera.stream;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON read as Python's json.loads reads it (CPython's C scanner), so the JVM engine's validator
 * accepts and refuses exactly the messages tessera/events.py does: NaN and Infinity are numbers,
 * integers have any size up to Python's 4,300-digit limit, a repeated key keeps its last value,
 * whitespace is only space, tab, CR and LF, strings may not hold raw control characters, a lone
 * surrogate escape ("\ud800") is kept, and anything after the value is an error.
 *
 * Values: Map (LinkedHashMap), List, String, Long or BigInteger, Double, Boolean, null.
 */
public final class PyJsonReader {
    /** Python's recursion limit is 1,000 frames, less those the worker itself stands on. */
    static final int MAX_DEPTH = 900;
    /** sys.int_info.default_max_str_digits: a longer integer literal is a ValueError in Python. */
    static final int MAX_INT_DIGITS = 4300;

    public static final class NotJson extends Exception {
        private static final long serialVersionUID = 1L;

        NotJson(String message) {
            super(message, null, false, false);  // no stack trace: bad input is routine here
        }
    }

    private final String s;
    private final int n;
    private int pos;
    private int depth;

    private PyJsonReader(String s) {
        this.s = s;
        this.n = s.length();
    }

    public static Object parse(String text) throws NotJson {
        if (text.startsWith("\ufeff")) {
            throw new NotJson("Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)");
        }
        PyJsonReader r = new PyJsonReader(text);
        r.skipWhitespace();
        Object value = r.value();
        r.skipWhitespace();
        if (r.pos != r.n) {
            throw r.error("Extra data", r.pos);
        }
        return value;
    }

    private NotJson error(String what, int at) {
        int line = 1;
        int lineStart = 0;
        for (int i = 0; i < at && i < n; i++) {
            if (s.charAt(i) == '\n') {
                line++;
                lineStart = i + 1;
            }
        }
        return new NotJson(what + ": line " + line + " column " + (at - lineStart + 1) + " (char " + at + ")");
    }

    private void skipWhitespace() {
        while (pos < n) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    private boolean literal(String word) {
        if (s.startsWith(word, pos)) {
            pos += word.length();
            return true;
        }
        return false;
    }

    private Object value() throws NotJson {
        if (pos >= n) {
            throw error("Expecting value", pos);
        }
        switch (s.charAt(pos)) {
            case '"':
                pos++;
                return string();
            case '{':
                return object();
            case '[':
                return array();
            case 'n':
                if (literal("null")) {
                    return null;
                }
                break;
            case 't':
                if (literal("true")) {
                    return Boolean.TRUE;
                }
                break;
            case 'f':
                if (literal("false")) {
                    return Boolean.FALSE;
                }
                break;
            case 'N':
                if (literal("NaN")) {
                    return Double.NaN;
                }
                break;
            case 'I':
                if (literal("Infinity")) {
                    return Double.POSITIVE_INFINITY;
                }
                break;
            case '-':
                if (literal("-Infinity")) {
                    return Double.NEGATIVE_INFINITY;
                }
                break;
            default:
                break;
        }
        return number();
    }

    private static boolean digit(char c) {
        return c >= '0' && c <= '9';
    }

    private Object number() throws NotJson {
        int start = pos;
        int i = pos;
        if (i < n && s.charAt(i) == '-') {
            i++;
        }
        if (i < n && s.charAt(i) >= '1' && s.charAt(i) <= '9') {
            while (i < n && digit(s.charAt(i))) {
                i++;
            }
        } else if (i < n && s.charAt(i) == '0') {
            i++;
        } else {
            throw error("Expecting value", start);
        }
        int intEnd = i;
        boolean isFloat = false;
        if (i + 1 < n && s.charAt(i) == '.' && digit(s.charAt(i + 1))) {
            isFloat = true;
            i += 2;
            while (i < n && digit(s.charAt(i))) {
                i++;
            }
        }
        if (i < n && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
            int eStart = i;
            i++;
            if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
                i++;
            }
            int digitsStart = i;
            while (i < n && digit(s.charAt(i))) {
                i++;
            }
            if (i > digitsStart) {
                isFloat = true;
            } else {
                i = eStart;  // "1e" is the integer 1 followed by something else
            }
        }
        pos = i;
        String text = s.substring(start, i);
        if (isFloat) {
            return Double.parseDouble(text);
        }
        int digits = intEnd - start - (s.charAt(start) == '-' ? 1 : 0);
        if (digits > MAX_INT_DIGITS) {
            throw new NotJson("Exceeds the limit (4300 digits) for integer string conversion: value has " + digits
                    + " digits; use sys.set_int_max_str_digits() to increase the limit");
        }
        if (digits <= 18) {
            return Long.parseLong(text);
        }
        BigInteger big = new BigInteger(text);
        return big.bitLength() < 64 ? (Object) big.longValue() : big;
    }

    private int hex4(int at) throws NotJson {
        if (at + 4 > n) {
            throw error("Invalid \\uXXXX escape", at - 1);
        }
        int v = 0;
        for (int i = at; i < at + 4; i++) {
            int d = Character.digit(s.charAt(i), 16);
            if (d < 0 || s.charAt(i) > 'f') {  // Character.digit also takes non-ASCII digits
                throw error("Invalid \\uXXXX escape", at - 1);
            }
            v = (v << 4) | d;
        }
        return v;
    }

    /** After the opening quote. */
    private String string() throws NotJson {
        int begin = pos - 1;
        StringBuilder b = null;
        int chunk = pos;
        while (true) {
            if (pos >= n) {
                throw error("Unterminated string starting at", begin);
            }
            char c = s.charAt(pos);
            if (c == '"') {
                String out = b == null ? s.substring(chunk, pos) : b.append(s, chunk, pos).toString();
                pos++;
                return out;
            }
            if (c < 0x20) {
                throw error("Invalid control character at", pos);
            }
            if (c != '\\') {
                pos++;
                continue;
            }
            if (b == null) {
                b = new StringBuilder();
            }
            b.append(s, chunk, pos);
            pos++;
            if (pos >= n) {
                throw error("Unterminated string starting at", begin);
            }
            char e = s.charAt(pos);
            switch (e) {
                case '"': b.append('"'); break;
                case '\\': b.append('\\'); break;
                case '/': b.append('/'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'n': b.append('\n'); break;
                case 'r': b.append('\r'); break;
                case 't': b.append('\t'); break;
                case 'u': {
                    int code = hex4(pos + 1);
                    pos += 4;
                    b.append((char) code);
                    // A high surrogate escape followed by a low one is one character in Python; in
                    // Java's UTF-16 the two chars side by side are that character already.
                    break;
                }
                default:
                    throw error("Invalid \\escape", pos - 1);
            }
            pos++;
            chunk = pos;
        }
    }

    private void enter() throws NotJson {
        if (++depth > MAX_DEPTH) {
            throw new NotJson("nested too deeply");
        }
    }

    private Map<String, Object> object() throws NotJson {
        enter();
        pos++;
        Map<String, Object> map = new LinkedHashMap<>();
        skipWhitespace();
        if (pos < n && s.charAt(pos) == '}') {
            pos++;
            depth--;
            return map;
        }
        while (true) {
            if (pos >= n || s.charAt(pos) != '"') {
                throw error("Expecting property name enclosed in double quotes", pos);
            }
            pos++;
            String key = string();
            skipWhitespace();
            if (pos >= n || s.charAt(pos) != ':') {
                throw error("Expecting ':' delimiter", pos);
            }
            pos++;
            skipWhitespace();
            map.put(key, value());
            skipWhitespace();
            if (pos < n && s.charAt(pos) == '}') {
                pos++;
                depth--;
                return map;
            }
            if (pos >= n || s.charAt(pos) != ',') {
                throw error("Expecting ',' delimiter", pos);
            }
            pos++;
            skipWhitespace();
        }
    }

    private List<Object> array() throws NotJson {
        enter();
        pos++;
        List<Object> list = new ArrayList<>();
        skipWhitespace();
        if (pos < n && s.charAt(pos) == ']') {
            pos++;
            depth--;
            return list;
        }
        while (true) {
            list.add(value());
            skipWhitespace();
            if (pos < n && s.charAt(pos) == ']') {
                pos++;
                depth--;
                return list;
            }
            if (pos >= n || s.charAt(pos) != ',') {
                throw error("Expecting ',' delimiter", pos);
            }
            pos++;
            skipWhitespace();
        }
    }
}
