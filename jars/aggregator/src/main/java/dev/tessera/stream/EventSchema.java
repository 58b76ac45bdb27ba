package dev.tessera.stream;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * tessera/events.py's parse_event for the JVM engine: the same rules in the same order, the same
 * rejection codes and, for every code but not_json, the same reason text. The equivalence test
 * (tests/streaming/test_jvm_validation.py) holds the two to that on fuzzed input.
 */
public final class EventSchema {
    static final String[] FIELDS = {"event_id", "event_type", "event_time", "user_id", "ad_id", "campaign_id", "cost"};
    static final String[] STRING_FIELDS = {"event_id", "event_type"};
    static final String[] INT_FIELDS = {"event_time", "user_id", "ad_id", "campaign_id"};
    static final String[] EVENT_TYPES = {"impression", "click", "conversion"};
    static final long DAY_MS = 86_400_000L;
    static final long MAX_FUTURE_MS = DAY_MS;
    static final long MAX_EVENT_TIME_MS = 253_370_764_800_000L;
    static final int MAX_EVENT_ID_BYTES = 512;
    static final BigInteger COST_LIMIT = BigInteger.valueOf(1_000_000_000_000_000L);

    /** Why a message was refused: a stable code and the reason, as tessera.events.Rejection. */
    public static final class Rejection {
        public final String code;
        public final String reason;

        Rejection(String code, String reason) {
            this.code = code;
            this.reason = reason;
        }
    }

    private EventSchema() {
    }

    /** `clockMs` null: no future-time rule (as parse_event with clock_ms None). */
    public static Object parse(byte[] raw, Long clockMs) {
        if (raw == null) {
            return new Rejection("not_json", "message has no value");
        }
        Object obj;
        try {
            obj = PyJsonReader.parse(decodeUtf8(raw));
        } catch (CharacterCodingException err) {
            return new Rejection("not_json", clip("not JSON: invalid UTF-8 (" + err.getMessage() + ")"));
        } catch (PyJsonReader.NotJson err) {
            return new Rejection("not_json", clip("not JSON: " + err.getMessage()));
        }
        if (!(obj instanceof Map)) {
            return new Rejection("not_object", "expected a JSON object, got " + jsonType(obj));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> o = (Map<String, Object>) obj;
        return check(o, clockMs);
    }

    private static String clip(String reason) {
        return reason.length() > 200 ? reason.substring(0, 200) : reason;
    }

    /** Strict UTF-8, as Python's bytes.decode("utf-8"): no overlong forms, no encoded surrogates. */
    static String decodeUtf8(byte[] raw) throws CharacterCodingException {
        boolean ascii = true;
        for (byte b : raw) {
            if (b < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            return new String(raw, StandardCharsets.ISO_8859_1);  // the common case, and the fastest
        }
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        return decoder.decode(ByteBuffer.wrap(raw)).toString();
    }

    private static Object check(Map<String, Object> o, Long clockMs) {
        for (String name : FIELDS) {
            if (!o.containsKey(name)) {
                return new Rejection("missing_field", "missing field '" + name + "'");
            }
        }
        for (String name : STRING_FIELDS) {
            if (!(o.get(name) instanceof String)) {
                return new Rejection("wrong_type", name + " must be a string, got " + jsonType(o.get(name)));
            }
        }
        String eventId = (String) o.get("event_id");
        String eventType = (String) o.get("event_type");
        if (eventId.isEmpty()) {
            return new Rejection("empty_event_id", "event_id is empty");
        }
        int idBytes = utf8Length(eventId);
        if (idBytes < 0) {
            return new Rejection("wrong_type", "event_id is not valid Unicode text (it holds a lone surrogate escape)");
        }
        if (idBytes > MAX_EVENT_ID_BYTES) {
            return new Rejection("out_of_range", "event_id is " + idBytes + " bytes long (limit " + MAX_EVENT_ID_BYTES + ")");
        }
        if (!knownType(eventType)) {
            StringBuilder b = new StringBuilder("unknown event_type ");
            b.append(head(jsonText(eventType), 60)).append(" (expected one of ").append(String.join(", ", EVENT_TYPES))
                    .append(')');
            return new Rejection("unknown_event_type", b.toString());
        }
        long[] ints = new long[INT_FIELDS.length];
        for (int i = 0; i < INT_FIELDS.length; i++) {
            String name = INT_FIELDS[i];
            Object value = o.get(name);
            if (!(value instanceof Long) && !(value instanceof BigInteger)) {
                return new Rejection("wrong_type", name + " must be an integer, got " + preview(value, 40));
            }
            if (value instanceof BigInteger) {
                BigInteger big = (BigInteger) value;
                return big.signum() < 0 ? new Rejection("negative_value", name + " is negative (" + big + ")")
                        : new Rejection("out_of_range", name + " does not fit in 64 bits");
            }
            long v = (Long) value;
            if (v < 0) {
                return new Rejection("negative_value", name + " is negative (" + v + ")");
            }
            ints[i] = v;
        }
        long eventTime = ints[0];
        if (eventTime >= MAX_EVENT_TIME_MS) {
            return new Rejection("out_of_range", "event_time " + eventTime + " is after 9999-01-01");
        }
        Object cost = o.get("cost");
        double costValue;
        if (cost instanceof Double) {
            double c = (Double) cost;
            if (Double.isNaN(c) || Double.isInfinite(c)) {
                return new Rejection("out_of_range", "cost is not finite (" + (Double.isNaN(c) ? "nan" : c > 0 ? "inf" : "-inf") + ")");
            }
            if (c < 0) {
                return new Rejection("negative_value", "cost is negative (" + floatRepr(c) + ")");
            }
            if (Math.abs(c) > 1e15) {
                return new Rejection("out_of_range", "cost " + floatRepr(c) + " is implausibly large");
            }
            costValue = c;
        } else if (cost instanceof Long || cost instanceof BigInteger) {
            BigInteger c = cost instanceof Long ? BigInteger.valueOf((Long) cost) : (BigInteger) cost;
            if (c.signum() < 0) {
                return new Rejection("negative_value", "cost is negative (" + c + ")");
            }
            if (c.compareTo(COST_LIMIT) > 0) {
                return new Rejection("out_of_range", "cost " + c + " is implausibly large");
            }
            costValue = c.doubleValue();  // at most 1e15: exact, as Python's float(int)
        } else {
            return new Rejection("wrong_type", "cost must be a number, got " + jsonType(cost));
        }
        if (clockMs != null && eventTime > clockMs + MAX_FUTURE_MS) {
            double aheadH = (double) (eventTime - clockMs) / 3_600_000.0;
            // Python's "%.1f": the exact binary value rounded half-even (Java's %.1f rounds half-up).
            String hours = new BigDecimal(aheadH).setScale(1, RoundingMode.HALF_EVEN).toPlainString();
            return new Rejection("future_event_time", "event_time is " + hours
                    + " h ahead of the stream clock (limit 24 h)");
        }
        return new Event(eventId, eventType, eventTime, ints[1], ints[2], ints[3], costValue, null);
    }

    private static boolean knownType(String t) {
        for (String known : EVENT_TYPES) {
            if (known.equals(t)) {
                return true;
            }
        }
        return false;
    }

    /** UTF-8 length of a string, or -1 if it holds a lone surrogate (Python cannot encode it). */
    static int utf8Length(String s) {
        int bytes = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    bytes += 4;
                    i++;
                } else {
                    return -1;
                }
            } else if (Character.isLowSurrogate(c)) {
                return -1;
            } else {
                bytes += 3;
            }
        }
        return bytes;
    }

    private static String head(String s, int limit) {
        return s.length() > limit ? s.substring(0, limit) : s;
    }

    /** tessera.events.json_type. */
    static String jsonType(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Boolean) {
            return "boolean";
        }
        if (v instanceof Long || v instanceof BigInteger || v instanceof Double) {
            return "number";
        }
        if (v instanceof String) {
            return "string";
        }
        return v instanceof List ? "array" : "object";
    }

    /** tessera.events.json_preview. */
    static String preview(Object v, int limit) {
        if (v == null || v instanceof List || v instanceof Map) {
            return jsonType(v);
        }
        return jsonType(v) + " " + head(jsonText(v), limit);
    }

    /** json.dumps of a scalar. */
    private static String jsonText(Object v) {
        StringBuilder b = new StringBuilder();
        if (v instanceof String) {
            PyJson.string(b, (String) v);
        } else if (v instanceof Double) {
            PyJson.number(b, (Double) v);
        } else if (v instanceof Boolean) {
            b.append((Boolean) v ? "true" : "false");
        } else {
            b.append(v);
        }
        return b.toString();
    }

    private static String floatRepr(double v) {
        StringBuilder b = new StringBuilder();
        PyJson.number(b, v);
        return b.toString();
    }
}
