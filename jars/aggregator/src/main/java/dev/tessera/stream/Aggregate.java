package dev.tessera.stream;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Every streaming view in one keyed operator, keyed by "view:entity id": the JVM twin of
 * streaming/job.py's Aggregate, with the same late rule, the same timers at leave boundaries and
 * the same rows. Keyed state is a KeyAggregator, held as an object by the heap state backend.
 */
public class Aggregate extends KeyedProcessFunction<String, ViewEvent, String> {
    private static final long serialVersionUID = 1L;
    public static final OutputTag<String> LATE = new OutputTag<String>("late") { };

    private final String planJson;
    private transient Plan[] plans;
    private transient ValueState<KeyAggregator> state;
    private transient Counter late;
    private transient Counter duplicates;
    private transient Counter rows;

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
        String row = agg.onEvent(plan, item.key, e, timers);
        if (row == null) {
            duplicates.inc();
            return;
        }
        for (long boundary : timers[0]) {
            ctx.timerService().registerEventTimeTimer(boundary);
        }
        state.update(agg);
        rows.inc();
        out.collect(row);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<String> out) throws Exception {
        KeyAggregator agg = state.value();
        if (agg == null) {
            return;
        }
        String key = ctx.getCurrentKey();
        int colon = key.lastIndexOf(':');
        Plan plan = plans[viewIndex(key.substring(0, colon))];
        String row = agg.onTimer(plan, Long.parseLong(key.substring(colon + 1)), timestamp);
        if (agg.isEmpty()) {
            state.clear();  // nothing left in any window: the zero row below is the last word
        } else {
            state.update(agg);
        }
        if (row != null) {
            rows.inc();
            out.collect(row);
        }
    }

    private int viewIndex(String view) {
        for (int i = 0; i < plans.length; i++) {
            if (plans[i].view.equals(view)) {
                return i;
            }
        }
        throw new IllegalStateException("timer for unknown view " + view);
    }
}
