"""Every feature of the platform, declared once.

Feast's objects (feast_objects.py), the Flink job (streaming/) and the Spark backfill (batch/)
are all compiled from these declarations; nothing about a feature is written anywhere else.
"""
from tessera.definitions import (
    Count,
    DistinctDays,
    Entity,
    EventSource,
    FeatureServiceDef,
    Ratio,
    Sum,
    WindowedView,
)

user = Entity("user", join_key="user_id", description="A person who sees ads")
campaign = Entity("campaign", join_key="campaign_id", description="An advertiser's campaign")

ad_events = EventSource("ad_events", topic="ad_events", timestamp_field="event_time",
                        description="Impressions, clicks and conversions; key = user_id")

IMPRESSION = {"event_type": "impression"}
CLICK = {"event_type": "click"}
CONVERSION = {"event_type": "conversion"}

user_ad_activity = WindowedView(
    name="user_ad_activity",
    entity=user,
    source=ad_events,
    granularity="1m",
    # A 24h window leaves by the hour: by the minute it keeps a bucket per user per minute for a day,
    # more than the job's heap at the soak's load (README, "Features"); by the hour, 25 a user.
    window_granularity={"24h": "1h"},
    allowed_lateness="10s",
    freshness_budget="5s",
    description="What a user saw, clicked, converted on and cost, over sliding windows",
    aggregations=(
        Count("impressions", where=IMPRESSION, windows=["5m", "1h", "24h"]),
        Count("clicks", where=CLICK, windows=["5m", "1h", "24h"]),
        Count("conversions", where=CONVERSION, windows=["1h", "24h"]),
        Sum("spend", column="cost", windows=["1h", "24h"]),
        Ratio("ctr", numerator="clicks", denominator="impressions", windows=["1h", "24h"]),
    ),
)

campaign_delivery = WindowedView(
    name="campaign_delivery",
    entity=campaign,
    source=ad_events,
    granularity="1m",
    window_granularity={"24h": "1h"},
    allowed_lateness="10s",
    freshness_budget="5s",
    description="How a campaign is delivering right now",
    aggregations=(
        Count("impressions", where=IMPRESSION, windows=["1h"]),
        Count("clicks", where=CLICK, windows=["1h"]),
        Count("conversions", where=CONVERSION, windows=["24h"]),
        Sum("spend", column="cost", windows=["1h", "24h"]),
    ),
)

user_profile_daily = WindowedView(
    name="user_profile_daily",
    entity=user,
    source=ad_events,
    kind="daily",
    granularity="1d",
    allowed_lateness="1d",
    freshness_budget="2d",
    description="A user's last 30 complete UTC days, published when each day ends",
    aggregations=(
        Count("impressions", where=IMPRESSION, windows=["30d"]),
        Count("clicks", where=CLICK, windows=["30d"]),
        Sum("spend", column="cost", windows=["30d"]),
        DistinctDays("active_days", windows=["30d"]),
    ),
)

ads_ranking = FeatureServiceDef(
    "ads_ranking",
    features=("user_ad_activity", "user_profile_daily"),
    description="What the ads ranking model reads per user",
)
campaign_pacing = FeatureServiceDef(
    "campaign_pacing",
    features=("campaign_delivery",),
    description="What the bidder's pacing reads per campaign",
)
