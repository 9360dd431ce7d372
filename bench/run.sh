#!/usr/bin/env bash
# Runs every benchmark in bench/: each bench/*.py that has an `if __name__ == "__main__":` guard,
# one after another, with its defaults. Each prints a markdown table headed by the machine it ran on.
# Server databases come from MJGATE_BENCH_POSTGRES_URL / MJGATE_BENCH_MYSQL_URL (see bench/README.md);
# a benchmark skips a database it cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The benchmarks reuse the tests' fixtures (simulator and gateway starters, factories), which import
# pytest and httpx: the pinned test tools, without install.sh's browser and npm steps.
.venv/bin/python -m pip install -q -r requirements-test.lock
for bench in bench/*.py; do
  grep -q '^if __name__ == "__main__":' "$bench" || continue
  echo "== $bench"
  .venv/bin/python "$bench"
  echo
done
