#!/usr/bin/env bash
# The main job: the whole local stack end to end on synthetic events.
# Set up, start Kafka and Redis, register the features in Feast, write a day of raw history,
# stream events through Kafka (with duplicates, out-of-order, late and invalid ones), and show
# where everything landed. Leaves the services running; `.venv/bin/tessera services down` stops them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RATE="${TESSERA_DEMO_RATE:-2000}"
SECONDS_OF_EVENTS="${TESSERA_DEMO_SECONDS:-15}"
step() { printf '\n== %s\n' "$*" >&2; }

step "set up (Python environments, redis-server, Maven jars)"
bash scripts/setup.sh
T=.venv/bin/tessera

step "start the real Kafka broker and Redis"
$T services up

step "register the feature repository in Feast"
$T apply
.venv/bin/feast -c feature_repo feature-views list

step "write one day of raw event history (Parquet, partitioned by date)"
$T generate history --days 1 --rate 2 --duplicates 0.01 --late 0.01 --out-of-order 0.02

step "stream ${SECONDS_OF_EVENTS} s of events at ${RATE}/s into Kafka"
$T generate kafka --rate "$RATE" --duration "$SECONDS_OF_EVENTS" \
  --duplicates 0.01 --out-of-order 0.02 --late 0.002 --invalid 0.002

step "what arrived"
$T topics
$T services status
echo "raw history: $(find data/raw -name '*.parquet' | wc -l) Parquet files in $(ls -d data/raw/ad_events/date=* | wc -l) date partition(s)" >&2
