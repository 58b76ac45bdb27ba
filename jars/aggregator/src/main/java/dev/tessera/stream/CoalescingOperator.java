package dev.tessera.stream;

import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.ProcessingTimeService;

/**
 * Runs {@link Aggregate} with its rows coalesced: every {@code intervalMs} of processing time, the
 * newest row of each key that changed goes out, once. A campaign's total changes with every event of
 * the campaign; written once per interval instead, it costs the Kafka producer, the broker, the sink
 * and Redis one row where it cost hundreds. Rows still pending are flushed before every checkpoint
 * barrier (a checkpoint holds the state that produced them, and a restore would not produce them
 * again) and when the input ends, so coalescing loses nothing; it adds at most the interval to freshness.
 */
public final class CoalescingOperator extends KeyedProcessOperator<Tuple2<Integer, Long>, ViewEvent, String> {
    private static final long serialVersionUID = 1L;
    /** Flush early past this many pending rows, to bound the memory a burst of new keys takes. */
    static final int MAX_PENDING = 100_000;
    private final long intervalMs;

    public CoalescingOperator(Aggregate aggregate, long intervalMs) {
        super(aggregate);
        this.intervalMs = intervalMs;
    }

    private Aggregate aggregate() {
        return (Aggregate) userFunction;
    }

    @Override
    public void open() throws Exception {
        super.open();
        aggregate().coalesce();
        schedule();
    }

    private void schedule() {
        ProcessingTimeService time = getProcessingTimeService();
        time.registerTimer(time.getCurrentProcessingTime() + intervalMs, at -> {
            flush();
            schedule();
        });
    }

    private void flush() {
        aggregate().flush(row -> output.collect(new StreamRecord<>(row)));
    }

    @Override
    public void processElement(StreamRecord<ViewEvent> element) throws Exception {
        super.processElement(element);
        if (aggregate().pendingRows() >= MAX_PENDING) {
            flush();
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }
}
