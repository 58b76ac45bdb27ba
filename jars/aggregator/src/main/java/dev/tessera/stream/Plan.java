package dev.tessera.stream;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What the aggregator needs of one streaming view, read from the JSON that
 * streaming/aggregator.py (ViewPlan.to_dict) compiles from feature_repo/views.py. Nothing about a
 * feature is written here: names, operations, columns, filters and windows all come from the plan.
 */
public final class Plan implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One additive feature of one window: a count or a sum, with equality filters on event fields. */
    public static final class Slot implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final boolean count;
        public final String column;        // null for a count
        public final String[] whereFields;
        public final String[] whereValues;

        Slot(String name, boolean count, String column, String[] whereFields, String[] whereValues) {
            this.name = name;
            this.count = count;
            this.column = column;
            this.whereFields = whereFields;
            this.whereValues = whereValues;
        }

        boolean hit(Event e) {
            for (int i = 0; i < whereFields.length; i++) {
                // Python compares event.get(k) == v with v a string: an int field never equals it.
                if (!whereValues[i].equals(e.field(whereFields[i]))) {
                    return false;
                }
            }
            return true;
        }
    }

    /** A ratio feature: numerator / denominator of two features of the same view (null when 0). */
    public static final class Ratio implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String name;
        public final String numerator;
        public final String denominator;

        Ratio(String name, String numerator, String denominator) {
            this.name = name;
            this.numerator = numerator;
            this.denominator = denominator;
        }
    }

    public final String view;
    public final String keyField;
    public final long allowedLatenessMs;
    public final long[] windows;          // distinct window lengths, ascending
    public final long[] granularities;    // per window, its g
    /** Per window, the capacity its buckets grow to ({@link Buckets#limit}): ceil(w / g) + 1 held at once. */
    final int[] bucketLimits;
    public final Slot[][] slots;          // per window, its additive features
    public final Ratio[] ratios;
    public final String[] order;          // every feature name, in declaration order
    /** streaming/aggregator.py ViewPlan.forgets_at_lateness: dedup ids are forgotten by the stream clock. */
    public final boolean forgetsAtLateness;

    // The row layout, resolved once: per output (in `order`) whether it is a count, a sum or a
    // ratio, where its total lives (window, slot), a ratio's parts (indexes into `order`), and its
    // JSON key ("name":).
    static final int COUNT = 0;
    static final int SUM = 1;
    static final int RATIO = 2;
    final int[] outKind;
    final int[] outWindow;
    final int[] outSlot;
    final int[] outNumerator;
    final int[] outDenominator;
    final String[] outKey;
    final String rowPrefix;  // {"view":"<view>","key":

    Plan(String view, String keyField, long allowedLatenessMs, long[] windows, long[] granularities, Slot[][] slots,
         Ratio[] ratios, String[] order, boolean forgetsAtLateness) {
        this.forgetsAtLateness = forgetsAtLateness;
        this.view = view;
        this.keyField = keyField;
        this.allowedLatenessMs = allowedLatenessMs;
        this.windows = windows;
        this.granularities = granularities;
        bucketLimits = new int[windows.length];
        for (int w = 0; w < windows.length; w++) {
            bucketLimits[w] = Buckets.limit((windows[w] + granularities[w] - 1) / granularities[w] + 1);
        }
        this.slots = slots;
        this.ratios = ratios;
        this.order = order;
        int n = order.length;
        outKind = new int[n];
        outWindow = new int[n];
        outSlot = new int[n];
        outNumerator = new int[n];
        outDenominator = new int[n];
        outKey = new String[n];
        java.util.Map<String, Integer> index = new java.util.HashMap<>();
        for (int j = 0; j < n; j++) {
            index.put(order[j], j);
            StringBuilder key = new StringBuilder();
            PyJson.string(key, order[j]);
            outKey[j] = (j == 0 ? "" : ",") + key + ":";
            outKind[j] = -1;
        }
        for (int w = 0; w < windows.length; w++) {
            for (int i = 0; i < slots[w].length; i++) {
                int j = index.get(slots[w][i].name);
                outKind[j] = slots[w][i].count ? COUNT : SUM;
                outWindow[j] = w;
                outSlot[j] = i;
            }
        }
        for (Ratio r : ratios) {
            int j = index.get(r.name);
            outKind[j] = RATIO;
            outNumerator[j] = index.get(r.numerator);
            outDenominator[j] = index.get(r.denominator);
        }
        for (int j = 0; j < n; j++) {
            if (outKind[j] < 0) {
                throw new IllegalArgumentException("view " + view + ": feature " + order[j] + " is in no slot or ratio");
            }
        }
        StringBuilder prefix = new StringBuilder("{\"view\":");
        PyJson.string(prefix, view);
        rowPrefix = prefix.append(",\"key\":").toString();
    }

    /** The first instant at which an event no longer counts: ceil_g(t + w) (tessera/windows.py). */
    public static long leaveBoundary(long eventTime, long window, long granularity) {
        return -Math.floorDiv(-(eventTime + window), granularity) * granularity;
    }

    /** When an event at t has left every window (aggregator.py ViewPlan.last_leave). */
    public long lastLeave(long t) {
        long last = Long.MIN_VALUE;
        for (int w = 0; w < windows.length; w++) {
            last = Math.max(last, leaveBoundary(t, windows[w], granularities[w]));
        }
        return last;
    }

    /** All plans of a job: {"version": 1, "views": [ViewPlan.to_dict(), ...]}. */
    public static Plan[] parseAll(String json) {
        try {
            JsonNode root = new ObjectMapper().readTree(json);
            if (root.path("version").asInt() != 1) {
                throw new IllegalArgumentException("unknown plan version " + root.path("version"));
            }
            List<Plan> out = new ArrayList<>();
            for (JsonNode v : root.get("views")) {
                out.add(parse(v));
            }
            return out.toArray(new Plan[0]);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("plan is not JSON: " + e.getMessage(), e);
        }
    }

    static Plan parse(JsonNode v) {
        JsonNode ws = v.get("windows");
        long[] windows = new long[ws.size()];
        long[] granularities = new long[ws.size()];
        Slot[][] slots = new Slot[ws.size()][];
        for (int i = 0; i < ws.size(); i++) {
            JsonNode w = ws.get(i);
            windows[i] = w.get("window_ms").asLong();
            granularities[i] = w.path("granularity_ms").asLong();
            if (granularities[i] <= 0) {
                throw new IllegalArgumentException("view " + v.get("view") + ": window " + windows[i] + " has no granularity");
            }
            JsonNode ss = w.get("slots");
            slots[i] = new Slot[ss.size()];
            for (int j = 0; j < ss.size(); j++) {
                JsonNode s = ss.get(j);
                String op = s.get("op").asText();
                if (!op.equals("count") && !op.equals("sum")) {
                    throw new IllegalArgumentException("view " + v.get("view") + ": unsupported op " + op);
                }
                JsonNode where = s.get("where");
                String[] wf = new String[where.size()];
                String[] wv = new String[where.size()];
                for (int k = 0; k < where.size(); k++) {
                    wf[k] = where.get(k).get(0).asText();
                    wv[k] = where.get(k).get(1).asText();
                }
                String column = s.get("column").isNull() ? null : s.get("column").asText();
                slots[i][j] = new Slot(s.get("name").asText(), op.equals("count"), column, wf, wv);
            }
        }
        JsonNode rs = v.get("ratios");
        Ratio[] ratios = new Ratio[rs.size()];
        for (int i = 0; i < rs.size(); i++) {
            JsonNode r = rs.get(i);
            ratios[i] = new Ratio(r.get(0).asText(), r.get(1).asText(), r.get(2).asText());
        }
        JsonNode os = v.get("order");
        String[] order = new String[os.size()];
        for (int i = 0; i < os.size(); i++) {
            order[i] = os.get(i).asText();
        }
        return new Plan(v.get("view").asText(), v.get("key_field").asText(),
                v.get("allowed_lateness_ms").asLong(), windows, granularities, slots, ratios, order,
                v.has("forgets_at_lateness") && v.get("forgets_at_lateness").asBoolean());
    }
}
