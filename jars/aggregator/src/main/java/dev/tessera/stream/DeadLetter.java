package dev.tessera.stream;

import java.nio.charset.CharacterCodingException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/** streaming/dead_letters.py's envelope, byte for byte: the original (base64, exact) and why it was refused. */
public final class DeadLetter {
    static final int MAX_ORIGINAL_BYTES = 1_500_000;
    static final int MAX_ORIGINAL_TEXT = 10_000;

    private DeadLetter() {
    }

    public static String envelope(byte[] raw, EventSchema.Rejection rejection, Long clockMs) {
        byte[] data = raw != null ? raw : new byte[0];
        byte[] kept = data.length > MAX_ORIGINAL_BYTES ? Arrays.copyOf(data, MAX_ORIGINAL_BYTES) : data;
        String text = null;
        if (raw != null && data.length <= MAX_ORIGINAL_TEXT) {
            try {
                text = EventSchema.decodeUtf8(kept);
            } catch (CharacterCodingException err) {
                text = null;
            }
        }
        StringBuilder b = new StringBuilder(256 + kept.length * 2);
        b.append("{\"code\":");
        PyJson.string(b, rejection.code);
        b.append(",\"reason\":");
        PyJson.string(b, rejection.reason);
        b.append(",\"original_base64\":\"").append(Base64.getEncoder().encodeToString(kept)).append('"');
        b.append(",\"original_text\":");
        if (text == null) {
            b.append("null");
        } else {
            PyJson.string(b, text);
        }
        b.append(",\"original_size\":").append(data.length);
        b.append(",\"stream_clock_ms\":").append(clockMs == null ? "null" : clockMs.toString());
        if (raw == null) {
            b.append(",\"original_null\":true");
        }
        if (kept.length < data.length) {
            b.append(",\"original_truncated\":true,\"original_sha256\":\"").append(sha256(data)).append('"');
        }
        return b.append('}').toString();
    }

    private static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException err) {
            throw new IllegalStateException(err);  // every JVM has SHA-256
        }
    }
}
