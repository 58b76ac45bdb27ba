package dev.tessera.stream;

import org.apache.flink.api.java.functions.KeySelector;

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

    /** Keyed as the Python engine keys: "view:entity id". */
    public static final class ByViewKey implements KeySelector<ViewEvent, String> {
        private static final long serialVersionUID = 1L;
        private final String[] views;

        public ByViewKey(String[] views) {
            this.views = views;
        }

        @Override
        public String getKey(ViewEvent e) {
            return views[e.view] + ":" + e.key;
        }
    }
}
