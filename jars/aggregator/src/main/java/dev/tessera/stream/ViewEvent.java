package dev.tessera.stream;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;

/** An event as one streaming view sees it: which view (index into the plans) and the view's key. */
public class ViewEvent {
    public int view;
    public long key;
    public Event event;

    public ViewEvent() {
    }

    public ViewEvent(int view, long key, Event event) {
        this.view = view;
        this.key = key;
        this.event = event;
    }

    /**
     * Keyed by (view index, entity id): the Python engine's "view:entity id" without building and
     * hashing a string per event, and serialized as an int and a long in timers and checkpoints.
     */
    public static final class ByViewKey implements KeySelector<ViewEvent, Tuple2<Integer, Long>> {
        private static final long serialVersionUID = 1L;

        @Override
        public Tuple2<Integer, Long> getKey(ViewEvent e) {
            return Tuple2.of(e.view, e.key);
        }
    }
}
