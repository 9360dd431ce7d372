#!/usr/bin/env bash
# Installs mjgate and starts it on the embedded SQLite database with the simulator as a demo channel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/mjgate serve --demo "$@"
