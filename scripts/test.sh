#!/usr/bin/env bash
# The one test command: sets up (idempotent), then lint, import contracts and every
# test tier (unit, integration, e2e; slow ones included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check kiosk stu_client tests bench
.venv/bin/lint-imports
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
