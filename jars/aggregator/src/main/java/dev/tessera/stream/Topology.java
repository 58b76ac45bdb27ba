package dev.tessera.stream;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * The JVM engine's part of the job graph, called from streaming/jvm_engine.py through PyFlink's
 * gateway (Python builds the source and the sinks; everything per event in between is here, so no
 * event crosses to a Python worker).
 */
public final class Topology {
    private Topology() {
    }

    /**
     * Kafka records (rows of value bytes, partition) to valid events carrying the stream clock, at
     * parallelism 1 (the clock needs every partition); dead letters are its side output (deadLetters).
     */
    public static SingleOutputStreamOperator<Event> validate(DataStream<Row> records, int partitions, long idleMs,
                                                             String readyFile) {
        return records.process(new Validate(partitions, idleMs, readyFile), TypeInformation.of(Event.class))
                .setParallelism(1).uid("tessera-validate-jvm").name("validate (jvm)");
    }

    /** Invalid messages as dead-letter envelopes, for the DLQ topic. */
    public static DataStream<String> deadLetters(SingleOutputStreamOperator<Event> validated) {
        return validated.getSideOutput(Validate.DLQ);
    }

    /**
     * Valid events to feature rows. The record timestamp is the stream clock, so the watermark is the
     * per-partition minimum and leave-boundary timers fire only once every partition has passed them.
     * {@code coalesceMs} > 0: each key's rows are coalesced over that interval ({@link CoalescingOperator}).
     */
    public static SingleOutputStreamOperator<String> aggregate(DataStream<Event> events, String planJson,
                                                               long coalesceMs) {
        Plan[] plans = Plan.parseAll(planJson);
        String[] keyFields = new String[plans.length];
        StringBuilder names = new StringBuilder();
        for (int i = 0; i < plans.length; i++) {
            keyFields[i] = plans[i].keyField;
            names.append(i == 0 ? "" : ", ").append(plans[i].view);
        }
        DataStream<Event> timed = events.assignTimestampsAndWatermarks(
                WatermarkStrategy.<Event>forMonotonousTimestamps()
                        .withTimestampAssigner((e, previous) -> e.clock == null ? 0 : e.clock))
                .name("stream clock");
        KeyedStream<ViewEvent, Tuple2<Integer, Long>> keyed = timed.flatMap(new FanOut(keyFields))
                .returns(ViewEventSerializer.Type.INSTANCE).name("per view")
                .keyBy(new ViewEvent.ByViewKey(), Types.TUPLE(Types.INT, Types.LONG));
        String name = "aggregate " + names + " (jvm)";
        SingleOutputStreamOperator<String> rows = coalesceMs > 0
                ? keyed.transform(name, Types.STRING, new CoalescingOperator(new Aggregate(planJson), coalesceMs))
                : keyed.process(new Aggregate(planJson), Types.STRING).name(name);
        // A fixed id: the keyed state restores even if the operators around it change.
        return rows.uid("tessera-aggregate-jvm");
    }

    /** Events later than the allowed lateness, as JSON, for the late topic. */
    public static DataStream<String> late(SingleOutputStreamOperator<String> aggregated) {
        return aggregated.getSideOutput(Aggregate.LATE);
    }

    /** One record per streaming view, keyed by that view's entity. */
    static final class FanOut implements FlatMapFunction<Event, ViewEvent> {
        private static final long serialVersionUID = 1L;
        private final String[] keyFields;

        FanOut(String[] keyFields) {
            this.keyFields = keyFields;
        }

        @Override
        public void flatMap(Event e, Collector<ViewEvent> out) {
            for (int i = 0; i < keyFields.length; i++) {
                out.collect(new ViewEvent(i, (Long) e.field(keyFields[i]), e));
            }
        }
    }
}
