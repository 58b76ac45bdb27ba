package dev.tessera.stream;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The aggregation rules without a cluster, for the equivalence test against the Python engine
 * (tests/streaming/test_jvm_equivalence.py, whose driver does the same steps in Python):
 * events with their stream clock as JSON lines on stdin, every emitted row (and "late <event>")
 * on stdout. Timers stand in for Flink's: the watermark is the newest clock - 1 after each event,
 * due timers fire in (time, key) order, and every remaining timer fires at the end of input.
 *
 *     java -cp tessera-aggregator.jar:flink-dist.jar dev.tessera.stream.Replay plan.json [--through-state] < events.jsonl
 *
 * With --through-state each key's aggregates go through KeyAggregatorSerializer after every event,
 * as a checkpoint and a restore would take them, and through its copy(), as the heap backend's
 * copy-on-write does: the rows must not change.
 */
public final class Replay {
    private Replay() {
    }

    public static void main(String[] args) throws Exception {
        Plan[] plans = Plan.parseAll(Files.readString(Path.of(args[0])));
        boolean throughState = args.length > 1 && args[1].equals("--through-state");
        ObjectMapper json = new ObjectMapper();
        Map<String, KeyAggregator> state = new HashMap<>();
        TreeSet<Object[]> timers = new TreeSet<>((a, b) -> {
            int c = Long.compare((Long) a[0], (Long) b[0]);
            return c != 0 ? c : ((String) a[1]).compareTo((String) b[1]);
        });
        long watermark = Long.MIN_VALUE;
        long maxTimestamp = Long.MIN_VALUE;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            JsonNode n = json.readTree(line);
            Event e = new Event(n.get("event_id").asText(), n.get("event_type").asText(), n.get("event_time").asLong(),
                    n.get("user_id").asLong(), n.get("ad_id").asLong(), n.get("campaign_id").asLong(),
                    n.get("cost").asDouble(), n.get("clock").isNull() ? null : n.get("clock").asLong());
            for (int v = 0; v < plans.length; v++) {
                Plan plan = plans[v];
                long key = (Long) e.field(plan.keyField);
                if (e.clock != null && e.eventTime < e.clock - plan.allowedLatenessMs) {
                    if (v == 0) {
                        out.write("late " + e.toJson() + "\n");
                    }
                    continue;
                }
                String stateKey = plan.view + ":" + key;
                KeyAggregator agg = state.computeIfAbsent(stateKey, k -> new KeyAggregator(plan.windows.length));
                if (throughState) {
                    agg = roundTrip(agg);
                    state.put(stateKey, agg);
                }
                long[][] fresh = new long[1][];
                if (!agg.onEvent(plan, e, fresh)) {
                    continue;
                }
                for (long boundary : fresh[0]) {
                    timers.add(new Object[] {boundary, stateKey});
                }
                out.write(agg.row(plan, key) + "\n");
            }
            maxTimestamp = Math.max(maxTimestamp, e.clock == null ? 0 : e.clock);
            watermark = Math.max(watermark, maxTimestamp - 1);
            fire(plans, state, timers, watermark, out);
        }
        fire(plans, state, timers, Long.MAX_VALUE, out);
        out.flush();
    }

    private static KeyAggregator roundTrip(KeyAggregator agg) throws java.io.IOException {
        DataOutputSerializer out = new DataOutputSerializer(256);
        KeyAggregatorSerializer.INSTANCE.serialize(agg, out);
        DataInputDeserializer in = new DataInputDeserializer(out.getSharedBuffer(), 0, out.length());
        return KeyAggregatorSerializer.INSTANCE.copy(KeyAggregatorSerializer.INSTANCE.deserialize(in));
    }

    private static void fire(Plan[] plans, Map<String, KeyAggregator> state, TreeSet<Object[]> timers, long until,
                             BufferedWriter out) throws java.io.IOException {
        while (!timers.isEmpty() && (Long) timers.first()[0] <= until) {
            Object[] t = timers.pollFirst();
            String stateKey = (String) t[1];
            KeyAggregator agg = state.get(stateKey);
            if (agg == null) {
                continue;
            }
            int colon = stateKey.lastIndexOf(':');
            String view = stateKey.substring(0, colon);
            Plan plan = null;
            for (Plan p : plans) {
                if (p.view.equals(view)) {
                    plan = p;
                }
            }
            boolean changed = agg.onTimer(plan, (Long) t[0]);
            if (agg.isEmpty()) {
                state.remove(stateKey);
            }
            if (changed) {
                out.write(agg.row(plan, Long.parseLong(stateKey.substring(colon + 1))) + "\n");
            }
        }
    }
}
