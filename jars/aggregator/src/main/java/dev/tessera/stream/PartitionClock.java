package dev.tessera.stream;

import java.util.HashMap;
import java.util.Map;

/**
 * streaming/stream_clock.py for the JVM engine: the stream's event-time clock across Kafka
 * partitions, the minimum over partitions of the newest event time each has delivered. A partition
 * silent both for `idleMs` of processing time and while the job read `idleMs` further into the
 * topic (by the records' Kafka timestamps) stops holding the clock back; the clock never moves back.
 * Processing time counts only while the job reads: a gap between messages counts at most a quarter
 * of the idle period. The idle period of a partition not heard yet runs from the run's first
 * message, not from the start (see the Python twin for why of all three).
 */
public final class PartitionClock {
    private final int partitions;
    private final long idleMs;
    private final long maxGapMs;  // the most one gap between messages counts
    private long readingMs;  // processing time spent reading, at the last message
    private Long lastNowMs;  // processing time of the last message; null: nothing read yet
    private long firstWrittenMs;  // time written of the run's first message
    private long readToMs;  // latest time written of any message read
    private final Map<Integer, Long> newest = new HashMap<>();
    // Reading time at each partition's last message; one not heard yet counts from the run's first
    // message, at reading time 0.
    private final Map<Integer, Long> heard = new HashMap<>();
    private final Map<Integer, Long> written = new HashMap<>();
    private Long clock;

    public PartitionClock(int partitions, long idleMs) {
        this.partitions = partitions;
        this.idleMs = idleMs;
        this.maxGapMs = idleMs / 4;
    }

    /** Records a message (eventTime null for an invalid one; writtenMs its Kafka timestamp) and returns the clock. */
    public Long observe(int partition, Long eventTime, long nowMs, long writtenMs) {
        if (lastNowMs == null) {
            firstWrittenMs = writtenMs;
            readToMs = writtenMs;
        }
        readingMs = readingAt(nowMs);
        lastNowMs = nowMs;
        heard.put(partition, readingMs);
        written.merge(partition, writtenMs, Math::max);
        readToMs = Math.max(readToMs, writtenMs);
        if (eventTime != null && eventTime > newest.getOrDefault(partition, -1L)) {
            newest.put(partition, eventTime);
        }
        return tick(nowMs);
    }

    /** What a checkpoint keeps: the clock, then each partition's newest event time (null: none yet). */
    public Long[] snapshot() {
        Long[] out = new Long[partitions + 1];
        out[0] = clock;
        for (int p = 0; p < partitions; p++) {
            out[p + 1] = newest.get(p);
        }
        return out;
    }

    public void restore(Long[] saved) {
        clock = saved[0];
        for (int p = 0; p + 1 < saved.length; p++) {
            if (saved[p + 1] != null) {
                newest.put(p, saved[p + 1]);
            }
        }
    }

    private long readingAt(long nowMs) {
        if (lastNowMs == null) {
            return readingMs;
        }
        return readingMs + Math.min(Math.max(nowMs - lastNowMs, 0), maxGapMs);
    }

    private boolean idle(int partition, long nowMs) {
        long silentMs = readingAt(nowMs) - heard.getOrDefault(partition, 0L);
        long readPastMs = readToMs - written.getOrDefault(partition, firstWrittenMs);
        return silentMs >= idleMs && readPastMs >= idleMs;
    }

    public Long tick(long nowMs) {
        if (lastNowMs == null) {
            return clock;  // nothing read yet in this run
        }
        long candidate = Long.MAX_VALUE;
        boolean any = false;
        for (int p = 0; p < partitions; p++) {
            if (idle(p, nowMs)) {
                continue;  // does not hold the clock back
            }
            Long t = newest.get(p);
            if (t == null) {
                return clock;  // an active partition with no event time yet: wait for it
            }
            candidate = Math.min(candidate, t);
            any = true;
        }
        if (!any) {
            if (newest.isEmpty() || heard.isEmpty()) {
                return clock;
            }
            candidate = Long.MIN_VALUE;
            for (long t : newest.values()) {
                candidate = Math.max(candidate, t);
            }
        }
        if (clock == null || candidate > clock) {
            clock = candidate;
        }
        return clock;
    }
}
