package dev.tessera.stream;

/**
 * One valid ad event (tessera/events.py AdEvent) and the stream clock when it was validated.
 * A Flink POJO (public fields, no-arg constructor), so Flink's own serializer moves it between operators.
 */
public class Event {
    public String eventId;
    public String eventType;
    public long eventTime;
    public long userId;
    public long adId;
    public long campaignId;
    public double cost;
    public Long clock;   // null until every partition has spoken or gone idle (streaming/stream_clock.py)

    public Event() {
    }

    public Event(String eventId, String eventType, long eventTime, long userId, long adId, long campaignId,
                 double cost, Long clock) {
        this.eventId = eventId;
        this.eventType = eventType;
        this.eventTime = eventTime;
        this.userId = userId;
        this.adId = adId;
        this.campaignId = campaignId;
        this.cost = cost;
        this.clock = clock;
    }

    /** The field a plan names (where-filters, sum columns, keys), boxed as Python's event dict holds it. */
    public Object field(String name) {
        switch (name) {
            case "event_id": return eventId;
            case "event_type": return eventType;
            case "event_time": return eventTime;
            case "user_id": return userId;
            case "ad_id": return adId;
            case "campaign_id": return campaignId;
            case "cost": return cost;
            case "clock": return clock;
            default: return null;
        }
    }

    /** The same bytes as Python's json.dumps({**event.as_dict(), "clock": clock}, separators=(",", ":")). */
    public String toJson() {
        StringBuilder b = new StringBuilder(192);
        b.append("{\"event_id\":");
        PyJson.string(b, eventId);
        b.append(",\"event_type\":");
        PyJson.string(b, eventType);
        b.append(",\"event_time\":").append(eventTime)
                .append(",\"user_id\":").append(userId)
                .append(",\"ad_id\":").append(adId)
                .append(",\"campaign_id\":").append(campaignId)
                .append(",\"cost\":");
        PyJson.number(b, cost);
        b.append(",\"clock\":").append(clock == null ? "null" : clock.toString()).append('}');
        return b.toString();
    }
}
