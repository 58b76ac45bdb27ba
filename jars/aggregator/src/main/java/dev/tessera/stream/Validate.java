package dev.tessera.stream;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Kafka records (value bytes, partition, Kafka timestamp) in; valid events carrying the stream clock
 * out; invalid messages to the dead-letter side output. The JVM twin of streaming/job.py's Validate
 * (same schema rules, clock and envelope, held equal by tests/streaming/test_jvm_validation.py), so
 * the job has no Python operator and no event crosses to a Python worker. Runs at parallelism 1 so it sees
 * every partition and can hold the clock at the slowest one.
 *
 * Unlike the Python engine's, its clock is checkpointed: a restarted job judges lateness from where it
 * left instead of from no clock, so a copy of an event that was late before the restart is late after
 * it too, and the aggregation can forget event ids once they are late (ViewPlan.forget_at_lateness).
 */
public class Validate extends ProcessFunction<Row, Event> implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;
    public static final OutputTag<String> DLQ = new OutputTag<String>("dlq") { };

    private final int partitions;
    private final long idleMs;
    private final String readyFile;
    private transient RecordValidator validator;
    private transient Counter invalid;
    private transient ListState<Long> saved;
    private transient List<Long> restored;

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
        validator = new RecordValidator(partitions, idleMs);
        if (restored != null) {
            validator.restore(restored);
        }
        invalid = getRuntimeContext().getMetricGroup().counter("invalid_messages");
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        saved = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("stream-clock", Long.class));
        if (context.isRestored()) {
            restored = new ArrayList<>();
            for (Long v : saved.get()) {
                restored.add(v);
            }
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        saved.update(validator.snapshot());
    }

    @Override
    public void processElement(Row record, Context ctx, Collector<Event> out) {
        byte[] raw = (byte[]) record.getField(0);  // null: a tombstone, a dead letter too
        int partition = (Integer) record.getField(1);
        long written = ((Instant) record.getField(2)).toEpochMilli();
        long now = System.currentTimeMillis();
        Object result = validator.check(raw, partition, now, written);
        if (result instanceof Event) {
            out.collect((Event) result);
        } else {
            invalid.inc();
            ctx.output(DLQ, (String) result);
        }
    }
}
