#!/usr/bin/env bash
# Command 1: install, simulate the default window, materialize the whole asset graph in one run,
# then serve the Dagster UI on 127.0.0.1:3000.
source "$(dirname "$0")/bootstrap.sh" ""

days=${TRYBANK_DEMO_DAYS:-60}
end=$(date -u -d "yesterday" +%F)
start=$(date -u -d "${end} -$((days - 1)) days" +%F)
log="${DAGSTER_HOME}/materialize.log"
echo "==> materializing every asset for ${start}..${end} in one run (log: ${log})"
if ! dagster asset materialize -m trybank_assets.definitions --select '*' \
     --partition-range "${start}...${end}" > "${log}" 2>&1; then
  tail -n 40 "${log}" >&2
  echo "error: materialization failed; full log in ${log}" >&2
  exit 1
fi
grep -E "ASSET_CHECK_EVALUATION|silver .*bronze_rows" "${log}" | sed -E 's/.* - (silver .*|Asset check .*)/    \1/' | sort -u || true

echo "==> Dagster UI: http://127.0.0.1:3000  (Ctrl-C stops it)"
exec python scripts/exec_with_default_signals.py dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml
