package dev.tessera.stream;

import java.util.ArrayList;
import java.util.List;

/**
 * One Kafka record through validation, as streaming/job.py's Validate does it: the valid event stamped
 * with the stream clock, or the dead letter of an invalid one. Shared by the Flink function
 * ({@link Validate}) and the equivalence test's driver ({@link CheckEvents}), so the test runs the
 * job's own steps.
 */
final class RecordValidator {
    private final StreamValidator validator = new StreamValidator();
    private final PartitionClock clock;

    RecordValidator(int partitions, long idleMs) {
        clock = new PartitionClock(partitions, idleMs);
    }

    /** The valid {@link Event} (its clock set), or the dead-letter envelope (a String); writtenMs is
     * the record's Kafka timestamp. */
    Object check(byte[] raw, int partition, long nowMs, long writtenMs) {
        Object result = validator.check(raw, nowMs);
        if (result instanceof Event) {
            Event e = (Event) result;
            e.clock = clock.observe(partition, e.eventTime, nowMs, writtenMs);
            return e;
        }
        clock.observe(partition, null, nowMs, writtenMs);
        return DeadLetter.envelope(raw, (EventSchema.Rejection) result, validator.clockMs());
    }

    /** What a checkpoint keeps: [validator clock, partition clock, newest per partition]; MIN_VALUE is none. */
    List<Long> snapshot() {
        List<Long> values = new ArrayList<>();
        values.add(validator.clockMs());
        for (Long v : clock.snapshot()) {
            values.add(v);
        }
        values.replaceAll(v -> v == null ? Long.MIN_VALUE : v);
        return values;
    }

    void restore(List<Long> saved) {
        if (saved.isEmpty()) {
            return;
        }
        Long[] values = new Long[saved.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = saved.get(i) == Long.MIN_VALUE ? null : saved.get(i);
        }
        validator.restore(values[0]);
        Long[] partitionClock = new Long[values.length - 1];
        System.arraycopy(values, 1, partitionClock, 0, partitionClock.length);
        clock.restore(partitionClock);
    }
}
