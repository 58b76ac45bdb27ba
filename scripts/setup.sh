#!/usr/bin/env bash
# One set-up path for a fresh machine: Debian packages, the Python environments and the Maven jars.
# Re-running it is fast and changes nothing: each step is skipped while its stamp matches its inputs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="$ROOT/.cache"
STAMPS="$CACHE/stamps"
mkdir -p "$STAMPS"
PY="${TESSERA_PYTHON:-python3.11}"

say() { printf '[setup] %s\n' "$*" >&2; }
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
mark() { echo "$2" >"$STAMPS/$1"; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages: real Redis (7.x) for the online store; wrk drives the feature-API benchmark;
#    headless Chromium loads the API's /status page in tests/serving/test_status_page.py.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)  # certificates for the Redis TLS test
command -v chromium >/dev/null || missing+=(chromium)
if (( ${#missing[@]} )); then
  say "installing ${missing[*]} from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in java mvn "$PY"; do
  command -v "$tool" >/dev/null || { say "missing $tool: install OpenJDK 17, Maven and Python 3.11 first"; exit 1; }
done

# 2. Python: the platform environment (.venv) and a separate one for the Flink job (.venv-flink),
#    because apache-flink pins numpy/pyarrow/protobuf below what Feast and PySpark need.
PY_STAMP="$(stamp_of pyproject.toml)"
if [[ ! -x .venv/bin/uv ]]; then
  say "creating .venv"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv
fi
if ! fresh venv "$PY_STAMP"; then
  say "installing the platform environment (.venv)"
  .venv/bin/uv pip install -q -p .venv/bin/python -e ".[platform,test]"
  mark venv "$PY_STAMP"
fi
if ! fresh venv-flink "$PY_STAMP"; then
  say "installing the Flink job environment (.venv-flink)"
  [[ -x .venv-flink/bin/python ]] || .venv/bin/uv venv -q -p "$PY" .venv-flink
  .venv/bin/uv pip install -q -p .venv-flink/bin/python -e ".[stream]"
  mark venv-flink "$PY_STAMP"
fi

# 3. Maven jars: the Kafka broker and the Flink Kafka connector, into the ignored cache.
for bundle in kafka flink; do
  JAR_STAMP="$(stamp_of "jars/$bundle/pom.xml")"
  if ! fresh "jars-$bundle" "$JAR_STAMP"; then
    say "fetching $bundle jars from Maven Central"
    rm -rf "$CACHE/jars/$bundle"
    mvn -q -B -f "jars/$bundle/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$CACHE/jars/$bundle"
    mark "jars-$bundle" "$JAR_STAMP"
  fi
done
# 4. The JVM engine of the Flink job ([flink] engine = "jvm"): Java operators built from jars/aggregator
#    (Flink itself is `provided` by PyFlink's own jars). Rebuilt when any of its files changes.
AGG_JAR="$CACHE/jars/aggregator/tessera-aggregator.jar"
AGG_STAMP="$( (cd jars/aggregator && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)"
if ! fresh jar-aggregator "$AGG_STAMP" || [[ ! -f "$AGG_JAR" ]]; then
  say "building the JVM engine (jars/aggregator)"
  mvn -q -B -f jars/aggregator/pom.xml package
  mkdir -p "$(dirname "$AGG_JAR")"
  cp "$CACHE/build/aggregator/tessera-aggregator.jar" "$AGG_JAR"
  mark jar-aggregator "$AGG_STAMP"
fi
say "ready: .venv, .venv-flink, $(ls "$CACHE/jars/kafka" | wc -l) kafka jars, $(ls "$CACHE/jars/flink" | wc -l) flink jar(s), the JVM engine"
