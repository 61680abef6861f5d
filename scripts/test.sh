#!/usr/bin/env bash
# Command 2: install with the dev extras, lint, run the whole test suite.
source "$(dirname "$0")/bootstrap.sh" "[dev]"

echo "==> ruff"
ruff check .
ruff format --check .
echo "==> pytest"
python -m pytest "$@"
