package dev.tessera.stream;

/**
 * streaming/dead_letters.py's StreamValidator: validates messages in arrival order; the stream clock
 * for the future-time rule is the newest valid event time seen, and the wall clock until there is one.
 */
public final class StreamValidator {
    private Long clockMs;

    public Long clockMs() {
        return clockMs;
    }

    public void restore(Long clock) {
        clockMs = clock;
    }

    public Object check(byte[] raw, long wallClockMs) {
        Object result;
        if (clockMs != null) {
            result = EventSchema.parse(raw, clockMs);
        } else {
            result = EventSchema.parse(raw, wallClockMs);
            if (result instanceof EventSchema.Rejection && ((EventSchema.Rejection) result).code.equals("future_event_time")) {
                EventSchema.Rejection r = (EventSchema.Rejection) result;
                result = new EventSchema.Rejection(r.code, r.reason.replace(
                        "the stream clock", "the wall clock (the stream has no clock yet)"));
            }
        }
        if (result instanceof Event && (clockMs == null || ((Event) result).eventTime > clockMs)) {
            clockMs = ((Event) result).eventTime;
        }
        return result;
    }
}
