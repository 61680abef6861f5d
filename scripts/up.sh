#!/usr/bin/env bash
# Command 1: install, simulate the default window, materialize the daily assets in one run, train
# and promote the fraud model, then serve the Dagster UI on 127.0.0.1:3000.
source "$(dirname "$0")/bootstrap.sh" ""

days=${TRYBANK_DEMO_DAYS:-60}
end=$(date -u -d "yesterday" +%F)
start=$(date -u -d "${end} -$((days - 1)) days" +%F)
daily_assets=bronze_transactions,silver_transactions,customer_daily_aggregates,terminal_daily_aggregates,gold_transaction_features
log="${DAGSTER_HOME}/materialize.log"
echo "==> materializing the daily assets for ${start}..${end} in one run (log: ${log})"
if ! dagster asset materialize -m trybank_assets.definitions --select "${daily_assets}" \
     --partition-range "${start}...${end}" > "${log}" 2>&1; then
  tail -n 40 "${log}" >&2
  echo "error: materialization failed; full log in ${log}" >&2
  exit 1
fi
grep -E "silver .*bronze_rows" "${log}" | sed -E 's/.* - (silver .*)/    \1/' || true

model_log="${DAGSTER_HOME}/fraud_model.log"
echo "==> training, evaluating and promoting fraud_model (log: ${model_log})"
if dagster asset materialize -m trybank_assets.definitions --select fraud_model,deployed_fraud_model \
     > "${model_log}" 2>&1; then
  grep -E "fraud_model 2|promoted" "${model_log}" | sed -E 's/.* - (fraud_model 2.*|promoted.*)/    \1/' || true
else
  echo "warning: the model run failed or its promotion gate refused it; see ${model_log} and the UI" >&2
fi
grep -hE "ASSET_CHECK_EVALUATION" "${log}" "${model_log}" | sed -E 's/.* - (Asset check .*)/    \1/' | sort -u || true

echo "==> Dagster UI: http://127.0.0.1:3000  (Ctrl-C stops it)"
exec python scripts/exec_with_default_signals.py dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml
