package dev.tessera.stream;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Kafka records (value bytes, partition) in; valid events carrying the stream clock out; invalid
 * messages to the dead-letter side output. The JVM twin of streaming/job.py's Validate (same schema
 * rules, clock and envelope, held equal by tests/streaming/test_jvm_validation.py), so the job has
 * no Python operator and no event crosses to a Python worker. Runs at parallelism 1 so it sees
 * every partition and can hold the clock at the slowest one.
 */
public class Validate extends ProcessFunction<Row, Event> {
    private static final long serialVersionUID = 1L;
    public static final OutputTag<String> DLQ = new OutputTag<String>("dlq") { };

    private final int partitions;
    private final long idleMs;
    private final String readyFile;
    private transient StreamValidator validator;
    private transient PartitionClock clock;
    private transient Counter invalid;

    public Validate(int partitions, long idleMs, String readyFile) {
        this.partitions = partitions;
        this.idleMs = idleMs;
        this.readyFile = readyFile;
    }

    @Override
    public void open(OpenContext context) throws Exception {
        long now = System.currentTimeMillis();
        // Tells `tessera stream start --wait` that the job is running (local runs only).
        Path ready = Path.of(readyFile);
        Files.createDirectories(ready.getParent());
        Files.writeString(ready, Long.toString(now), StandardCharsets.UTF_8);
        validator = new StreamValidator();
        clock = new PartitionClock(partitions, idleMs, now);
        invalid = getRuntimeContext().getMetricGroup().counter("invalid_messages");
    }

    @Override
    public void processElement(Row record, Context ctx, Collector<Event> out) {
        byte[] raw = (byte[]) record.getField(0);  // null: a tombstone, a dead letter too
        Integer partition = (Integer) record.getField(1);
        long now = System.currentTimeMillis();
        Object result = validator.check(raw, now);
        if (result instanceof Event) {
            Event e = (Event) result;
            e.clock = clock.observe(partition, e.eventTime, now);
            out.collect(e);
        } else {
            clock.observe(partition, null, now);
            invalid.inc();
            ctx.output(DLQ, DeadLetter.envelope(raw, (EventSchema.Rejection) result, validator.clockMs()));
        }
    }
}
