#!/usr/bin/env bash
# The main job: the whole local stack end to end on synthetic events.
#   set up -> Kafka + Redis -> feast apply -> a day of raw history -> Spark backfill of the offline
#   store -> the Flink job and its sink -> live events into Kafka while a user's feature vector is
#   printed as it changes -> where everything landed.
# Leaves Kafka and Redis running (`.venv/bin/tessera services down` stops them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RATE="${TESSERA_DEMO_RATE:-500}"
SECONDS_OF_EVENTS="${TESSERA_DEMO_SECONDS:-30}"
step() { printf '\n== %s\n' "$*" >&2; }

step "set up (Python environments, redis-server, Maven jars)"
bash scripts/setup.sh
T=.venv/bin/tessera

step "start the real Kafka broker and Redis"
$T services up

step "register the feature repository in Feast"
$T apply
.venv/bin/feast -c feature_repo feature-views list

YESTERDAY=$(date -u -d yesterday +%F)
step "write yesterday's raw event history (Parquet, partitioned by date) and backfill it with Spark"
$T generate history --start "$YESTERDAY" --days 1 --rate 1 --duplicates 0.01 --late 0.01 --out-of-order 0.02
# Through today: a daily value is stamped at the end of its day, i.e. at today's midnight.
$T backfill --start "$YESTERDAY" --end "$(date -u +%F)"

step "materialize the daily view into Redis with Feast"
.venv/bin/feast -c feature_repo materialize "${YESTERDAY}T00:00:00" "$(date -u +%FT%T)" --views user_profile_daily

step "start the Flink job and the online-store writer"
$T stream start
trap '$T stream stop >/dev/null 2>&1 || true' EXIT
# PyFlink deploys its Python operators on the first record: a few warm-up events, then wait for it.
$T generate kafka --rate 10 --duration 1 --seed 7 2>/dev/null
$T stream start --wait 240

HOT_USER=$(.venv/bin/python -c "from tessera.generator import *; print(EventGenerator(GeneratorConfig(seed=42), 0, 1).hottest_user)")
step "stream ${SECONDS_OF_EVENTS} s of live events at ${RATE}/s and watch user ${HOT_USER}'s features change"
$T features user "$HOT_USER" --watch 5 --rounds $(( SECONDS_OF_EVENTS / 5 + 5 )) &
WATCH=$!
sleep 8  # let the watcher load Feast first, so it shows the vector before, during and after
$T generate kafka --rate "$RATE" --duration "$SECONDS_OF_EVENTS" \
  --duplicates 0.01 --out-of-order 0.02 --late 0.002 --invalid 0.002
wait $WATCH

step "what arrived"
$T topics
$T stream status
$T services status
echo "raw history: $(find data/raw -name '*.parquet' | wc -l) Parquet files; offline store: $(find data/offline -name '*.parquet' | wc -l) Parquet files" >&2
