package dev.tessera.stream;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Every streaming view in one keyed operator, keyed by (view index, entity id): the JVM twin of
 * streaming/job.py's Aggregate, with the same late rule, the same timers at leave boundaries and
 * the same rows. Keyed state is a KeyAggregator, held as an object by the heap state backend.
 *
 * Run by {@link CoalescingOperator}, rows wait in {@code pending} (one per key: a newer row of a key
 * replaces the older) until the operator flushes them, every few tens of milliseconds and before
 * each checkpoint barrier, so a key that changes many times in that interval is written once.
 */
public class Aggregate extends KeyedProcessFunction<Tuple2<Integer, Long>, ViewEvent, String> {
    private static final long serialVersionUID = 1L;
    public static final OutputTag<String> LATE = new OutputTag<String>("late") { };

    private final String planJson;
    private transient Plan[] plans;
    private transient ValueState<KeyAggregator> state;
    private transient Counter late;
    private transient Counter duplicates;
    private transient Counter rows;
    // (view, key) -> the key's aggregator, whose row is computed at the flush (its newest state then).
    private transient Map<Tuple2<Integer, Long>, KeyAggregator> pending;
    private boolean coalescing;

    public Aggregate(String planJson) {
        this.planJson = planJson;
    }

    @Override
    public void open(OpenContext context) {
        plans = Plan.parseAll(planJson);
        state = getRuntimeContext().getState(new ValueStateDescriptor<>("aggregates", KeyAggregatorSerializer.INSTANCE));
        late = getRuntimeContext().getMetricGroup().counter("late_events");
        duplicates = getRuntimeContext().getMetricGroup().counter("duplicate_events");
        rows = getRuntimeContext().getMetricGroup().counter("rows_emitted");
        pending = new LinkedHashMap<>();
    }

    /** Rows wait for {@link #flush} instead of going out at once (set by CoalescingOperator). */
    void coalesce() {
        coalescing = true;
    }

    int pendingRows() {
        return pending.size();
    }

    /** Emits the newest row of every key that changed since the last flush. */
    void flush(Consumer<String> out) {
        for (Map.Entry<Tuple2<Integer, Long>, KeyAggregator> p : pending.entrySet()) {
            rows.inc();
            out.accept(p.getValue().row(plans[p.getKey().f0], p.getKey().f1));
        }
        pending.clear();
    }

    private void emit(KeyAggregator agg, Tuple2<Integer, Long> key, Collector<String> out) {
        if (coalescing) {
            pending.put(key, agg);
        } else {
            rows.inc();
            out.collect(agg.row(plans[key.f0], key.f1));
        }
    }

    @Override
    public void processElement(ViewEvent item, Context ctx, Collector<String> out) throws Exception {
        Plan plan = plans[item.view];
        Event e = item.event;
        if (e.clock != null && e.eventTime < e.clock - plan.allowedLatenessMs) {
            if (item.view == 0) {  // late events are reported once, by the first view
                late.inc();
                ctx.output(LATE, e.toJson());
            }
            return;
        }
        KeyAggregator agg = state.value();
        if (agg == null) {
            agg = new KeyAggregator(plan.windows.length);
        }
        long[][] timers = new long[1][];
        if (!agg.onEvent(plan, e, timers)) {
            duplicates.inc();
            return;
        }
        for (long boundary : timers[0]) {
            ctx.timerService().registerEventTimeTimer(boundary);
        }
        state.update(agg);
        emit(agg, ctx.getCurrentKey(), out);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<String> out) throws Exception {
        KeyAggregator agg = state.value();
        if (agg == null) {
            return;
        }
        Tuple2<Integer, Long> key = ctx.getCurrentKey();
        Plan plan = plans[key.f0];
        boolean changed = agg.onTimer(plan, timestamp);
        if (agg.isEmpty()) {
            state.clear();  // nothing left in any window: the zero row below is the last word
        } else {
            state.update(agg);
        }
        if (changed) {
            emit(agg, key, out);
        }
    }
}
