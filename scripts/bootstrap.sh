# Sourced by the other scripts: checks Java and Python, creates .venv and installs the project.
# Usage: source scripts/bootstrap.sh [pip extras, e.g. "[dev]"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then
  echo "error: Spark 4 needs Java 17 or newer; found: ${java_major:-no java on PATH}." >&2
  echo "       Install a JDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and retry." >&2
  exit 1
fi
PYTHON=${PYTHON:-python3}
if ! "${PYTHON}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11 or newer is needed; ${PYTHON} is $(${PYTHON} --version 2>&1)." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "${PYTHON}" -m venv .venv
fi
echo "==> installing trybank-lakehouse${1:-} into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${1:-}"

export VIRTUAL_ENV="$PWD/.venv"  # dg checks that the project's venv is the active one
export PATH="$PWD/.venv/bin:$PATH"
export SPARK_LOCAL_IP=127.0.0.1
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "${DAGSTER_HOME}"
[ -f "${DAGSTER_HOME}/dagster.yaml" ] || printf 'telemetry:\n  enabled: false\n' > "${DAGSTER_HOME}/dagster.yaml"
