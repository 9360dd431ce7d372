#!/usr/bin/env bash
# Installs mjgate with its test tools and runs the whole test suite.
# PostgreSQL and MariaDB are tested when MJGATE_TEST_POSTGRES_URL / MJGATE_TEST_MYSQL_URL are set
# (.ci/run sets them; with CI=true an unreachable database fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
exec .venv/bin/python -m pytest "$@"
