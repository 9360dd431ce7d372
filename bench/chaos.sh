#!/usr/bin/env bash
# The chaos run (bench/chaos.py): submits through every face against a faulty simulator while the
# gateway's process group is killed with SIGKILL and restarted; checks the ledger and the tasks.
# Usage: bash bench/chaos.sh [--submits 2000] [--kills 2] [--db postgresql|mysql|sqlite] [--db-url URL]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh >/dev/null
exec .venv/bin/python bench/chaos.py "$@"
