#!/usr/bin/env bash
# Command 1: install, simulate the default window, materialize the daily assets in one run, train
# and promote the fraud model, build the online store, then serve the scoring API on
# 127.0.0.1:8000 and the Dagster UI on 127.0.0.1:3000.
source "$(dirname "$0")/bootstrap.sh" ""

days=${TRYBANK_DEMO_DAYS:-60}
end=$(date -u -d "yesterday" +%F)
start=$(date -u -d "${end} -$((days - 1)) days" +%F)
# The demo: the simulator is a bronze source, and the daily partitions start on its first day, so
# the UI shows every partition of the window materialized. A real lake sets neither.
export TRYBANK_SIMULATOR_ENABLED=${TRYBANK_SIMULATOR_ENABLED:-true}
export TRYBANK_PARTITIONS_START=${TRYBANK_PARTITIONS_START:-${start}}
# One long-lived Spark for this session's runs, the UI's backfills included: each run connects to its warm
# JVM and Python workers (Spark Connect) instead of starting and warming up its own. An operator's own
# TRYBANK_SPARK_REMOTE or TRYBANK_SPARK_MASTER wins.
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
if [ -z "${TRYBANK_SPARK_REMOTE:-}" ] && [ -z "${TRYBANK_SPARK_MASTER:-}" ]; then
  spark_log="${DAGSTER_HOME}/spark-server.log"
  export TRYBANK_SPARK_CONNECT_TOKEN=${TRYBANK_SPARK_CONNECT_TOKEN:-$(python -c 'import secrets; print(secrets.token_hex(16))')}
  trybank spark-server --port 0 > "${spark_log}" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 180); do grep -q "^port " "${spark_log}" && break; sleep 1; done
  spark_port=$(awk '/^port /{print $2; exit}' "${spark_log}")
  if [ -z "${spark_port}" ]; then
    tail -n 40 "${spark_log}" >&2
    echo "error: the Spark Connect server did not start; full log in ${spark_log}" >&2
    exit 1
  fi
  export TRYBANK_SPARK_REMOTE="sc://localhost:${spark_port}/;token=${TRYBANK_SPARK_CONNECT_TOKEN}"
  echo "==> Spark Connect server on port ${spark_port} (log: ${spark_log})"
fi

daily_assets=simulated_transactions,bronze_transactions,silver_transactions,customer_daily_aggregates,terminal_daily_aggregates,gold_transaction_features
log="${DAGSTER_HOME}/materialize.log"
echo "==> materializing the daily assets for ${start}..${end} in one run (log: ${log})"
if ! dg launch --assets "${daily_assets}" --partition-range "${start}...${end}" > "${log}" 2>&1; then
  tail -n 40 "${log}" >&2
  echo "error: materialization failed; full log in ${log}" >&2
  exit 1
fi
grep -E "silver .*bronze_rows" "${log}" | sed -E 's/.* - (silver .*)/    \1/' || true

model_log="${DAGSTER_HOME}/fraud_model.log"
echo "==> training, evaluating and promoting fraud_model; building the online store (log: ${model_log})"
if dg launch --assets fraud_model,deployed_fraud_model,online_customer_state > "${model_log}" 2>&1; then
  grep -E "fraud_model 2|promoted" "${model_log}" | sed -E 's/.* - (fraud_model 2.*|promoted.*)/    \1/' || true
else
  echo "warning: the model run failed or its promotion gate refused it; see ${model_log} and the UI" >&2
fi
grep -hE "ASSET_CHECK_EVALUATION" "${log}" "${model_log}" | sed -E 's/.* - (Asset check .*)/    \1/' | sort -u || true

if [ -z "${TRYBANK_API_KEY:-}" ]; then
  [ -s "${DAGSTER_HOME}/api_key" ] || python -c 'import secrets; print(secrets.token_urlsafe(24))' > "${DAGSTER_HOME}/api_key"
  TRYBANK_API_KEY=$(cat "${DAGSTER_HOME}/api_key")
  export TRYBANK_API_KEY
fi
api_log="${DAGSTER_HOME}/api.log"
python scripts/exec_with_default_signals.py trybank serve > "${api_log}" 2>&1 &
pids+=($!)
python - "${api_log}" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        print("==> scoring API ready:", urllib.request.urlopen("http://127.0.0.1:8000/ready").read().decode())
        break
    except OSError:
        time.sleep(0.2)
else:
    print(f"warning: the scoring API is not ready; see {sys.argv[1]}", file=sys.stderr)
PY

tx_id=$(python -c 'import uuid; print(uuid.uuid4())')
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat <<TXT
==> Scoring API: http://127.0.0.1:8000/docs  (API key ${TRYBANK_API_KEY}; log ${api_log})
    Score a transaction:

curl -s http://127.0.0.1:8000/predict -H "X-API-Key: ${TRYBANK_API_KEY}" -H 'Content-Type: application/json' -d '{"transaction_id": "${tx_id}", "event_time": "${now}", "customer_id": "C0000042", "terminal_id": "T0000042", "amount": 1899.00, "currency": "EUR", "merchant_country": "US", "customer_country": "NL", "channel": "ecommerce", "merchant_category": "electronics"}'

==> Dagster UI: http://127.0.0.1:3000  (Ctrl-C stops it, the API and the Spark server)
TXT
python scripts/exec_with_default_signals.py dg dev -h 127.0.0.1 -p 3000
