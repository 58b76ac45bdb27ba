package dev.tessera.stream;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One key's windowed aggregates: streaming/aggregator.py's KeyAggregator, rule for rule.
 *
 * Per window, buckets named by leave boundary ({@link Buckets}, sorted arrays, stand in for
 * Python's dict + heap of boundaries) and running totals; the event ids counted (dedup) with when
 * each may be forgotten; the last as_of emitted. Sums are exact ({@link Exact}), as Python's are (Decimal, unbounded
 * precision), so both engines emit the same floats and a quiet key decays to exactly 0.
 */
public final class KeyAggregator {

    /**
     * Counts and sums of one window's totals (or a bucket, on its way from a checkpoint), by slot
     * index (a slot uses one of the two). Only sum slots have an {@link Exact}; a window of counts
     * alone has no sums array.
     */
    public static final class Cells {
        final long[] counts;
        final Exact[] sums;  // null, or null at each count slot

        Cells(Plan.Slot[] slots) {
            counts = new long[slots.length];
            Exact[] s = null;
            for (int i = 0; i < slots.length; i++) {
                if (!slots[i].count) {
                    if (s == null) {
                        s = new Exact[slots.length];
                    }
                    s[i] = new Exact();
                }
            }
            sums = s;
        }

        Cells(long[] counts, Exact[] sums) {
            this.counts = counts;
            this.sums = sums;
        }

        Exact sum(int i) {
            return sums == null ? null : sums[i];
        }

        Cells copy() {
            if (sums == null) {
                return new Cells(counts.clone(), null);
            }
            Exact[] s = new Exact[sums.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = sums[i] == null ? null : sums[i].copy();
            }
            return new Cells(counts.clone(), s);
        }
    }

    // Per window index (Plan.windows order). A window's totals are null until it has counted an event.
    final Buckets[] buckets;
    final Cells[] totals;
    final HashSet<String> seen = new HashSet<>();
    final TreeMap<Long, List<String>> forget = new TreeMap<>();  // when an id may be forgotten -> ids
    long lastAsOf = -1;
    long maxEventTime = -1;

    public KeyAggregator(int windows) {
        buckets = new Buckets[windows];
        totals = new Cells[windows];
        for (int i = 0; i < windows; i++) {
            buckets[i] = new Buckets();
        }
    }

    /** Counts the event; returns the new leave boundaries (for timers), or null for a duplicate. */
    public long[] add(Plan plan, Event e) {
        if (seen.contains(e.eventId)) {
            return null;
        }
        long t = e.eventTime;
        long[] fresh = new long[plan.windows.length];
        int nFresh = 0;
        for (int w = 0; w < plan.windows.length; w++) {
            long leave = Plan.leaveBoundary(t, plan.windows[w], plan.granularities[w]);
            if (leave <= lastAsOf) {
                continue;  // it has already left this window for every instant still to come
            }
            Plan.Slot[] slots = plan.slots[w];
            if (totals[w] == null) {
                totals[w] = new Cells(slots);
            }
            Buckets bucket = buckets[w];
            int held = bucket.size();
            int p = bucket.find(leave, slots.length, plan.bucketLimits[w]);
            if (bucket.size() > held) {
                fresh[nFresh++] = leave;
            }
            Cells total = totals[w];
            for (int i = 0; i < slots.length; i++) {
                Plan.Slot s = slots[i];
                if (!s.hit(e)) {
                    continue;  // adds 0
                }
                if (s.count) {
                    bucket.addCount(p, i);
                    total.counts[i]++;
                } else {
                    Exact v = value(e.field(s.column));
                    bucket.addSum(p, i, v);
                    total.sums[i].add(v);
                }
            }
        }
        // Remembered while a later copy could still count (aggregator.py ViewPlan.forget_at_lateness).
        // Whole seconds: one entry per second of a busy key's forget map instead of one per event.
        long when = plan.forgetsAtLateness ? Math.floorDiv(t + plan.allowedLatenessMs + 999, 1000) * 1000
                : plan.lastLeave(t);
        seen.add(e.eventId);
        forget.computeIfAbsent(when, k -> new ArrayList<>(2)).add(e.eventId);
        maxEventTime = Math.max(maxEventTime, t);
        return nFresh == fresh.length ? fresh : java.util.Arrays.copyOf(fresh, nFresh);
    }

    /** Drops everything that has left the windows by asOf (which only moves forward), and with
     * {@code forget} the ids remembered until then. */
    public void advance(long asOf, boolean forget) {
        for (int w = 0; w < buckets.length; w++) {
            Buckets b = buckets[w];
            while (b.size() > 0 && b.leave(b.oldest()) <= asOf) {
                int p = b.oldest();
                Cells total = totals[w];
                for (int i = 0; i < b.width; i++) {
                    total.counts[i] -= b.count(p, i);
                    Exact sum = b.sum(p, i);
                    if (sum != null) {
                        total.sums[i].subtract(sum);
                    }
                }
                b.dropOldest();
            }
        }
        if (forget) {
            forgetThrough(asOf);
        }
        lastAsOf = asOf;
    }

    public void forgetThrough(long bound) {
        Iterator<Map.Entry<Long, List<String>>> it = forget.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Long, List<String>> entry = it.next();
            if (entry.getKey() > bound) {
                break;
            }
            for (String id : entry.getValue()) {
                seen.remove(id);
            }
            it.remove();
        }
    }

    /**
     * Counts an on-time event (Python: on_event): false for a duplicate. The row to emit is then
     * {@link #row}; the leave boundaries to set timers at are left in {@code timers[0]}.
     */
    public boolean onEvent(Plan plan, Event e, long[][] timers) {
        long[] fresh = add(plan, e);
        timers[0] = fresh;
        if (fresh == null) {
            return false;
        }
        // asOf may run ahead of the stream clock (an early event): the lateness rule forgets by the clock.
        advance(nextAsOf(e.eventTime), !plan.forgetsAtLateness);
        if (plan.forgetsAtLateness && e.clock != null) {
            forgetThrough(e.clock - 1);  // a copy of any of these, from now on, is late
        }
        return true;
    }

    /**
     * The stream clock passed a leave boundary (Python: on_timer): true if the value decayed to a new
     * row ({@link #row}), false if a newer row was already emitted.
     */
    public boolean onTimer(Plan plan, long boundary) {
        if (plan.forgetsAtLateness) {
            forgetThrough(boundary);  // every event from now on carries a clock past the boundary
        }
        if (lastAsOf >= boundary) {
            return false;
        }
        advance(boundary, !plan.forgetsAtLateness);
        return true;
    }

    /** The instant of the next emission: the candidate, but strictly after the last one. */
    public long nextAsOf(long candidate) {
        return Math.max(Math.max(candidate, lastAsOf + 1), maxEventTime);
    }

    public boolean isEmpty() {
        for (Buckets b : buckets) {
            if (b.size() > 0) {
                return false;
            }
        }
        return seen.isEmpty();
    }

    /** value(k, lastAsOf) as Python's FeatureRow.to_json writes it: {"view":..,"key":..,"as_of":..,"values":{..}}. */
    public String row(Plan plan, long key) {
        int n = plan.order.length;
        long[] ints = new long[n];
        double[] floats = new double[n];
        for (int j = 0; j < n; j++) {
            Cells total = totals[plan.outWindow[j]];
            if (plan.outKind[j] == Plan.COUNT) {
                ints[j] = total == null ? 0 : total.counts[plan.outSlot[j]];
                floats[j] = ints[j];
            } else if (plan.outKind[j] == Plan.SUM) {
                floats[j] = total == null ? 0.0 : total.sums[plan.outSlot[j]].toDouble();
            }
        }
        StringBuilder b = new StringBuilder(plan.rowPrefix.length() + 40 + 28 * n);
        b.append(plan.rowPrefix).append(key).append(",\"as_of\":").append(lastAsOf).append(",\"values\":{");
        for (int j = 0; j < n; j++) {
            b.append(plan.outKey[j]);
            switch (plan.outKind[j]) {
                case Plan.COUNT:
                    b.append(ints[j]);
                    break;
                case Plan.SUM:
                    PyJson.number(b, floats[j]);
                    break;
                default:
                    // Python: None if not den else num / den (an int / int division is correctly rounded too)
                    double den = floats[plan.outDenominator[j]];
                    if (den == 0) {
                        b.append("null");
                    } else {
                        PyJson.number(b, floats[plan.outNumerator[j]] / den);
                    }
            }
        }
        return b.append("}}").toString();
    }

    private static Exact value(Object v) {
        if (v instanceof Double) {
            return Exact.of((Double) v);
        }
        if (v instanceof Long) {
            return Exact.of((Long) v);
        }
        throw new IllegalArgumentException("cannot sum a " + (v == null ? "missing" : "non-numeric") + " column");
    }
}
