#!/usr/bin/env bash
# Creates ./.venv and installs mjgate from the locked dependency set. Idempotent.
# Usage: scripts/install.sh [test]   ("test" adds the test tools and the browser)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements.lock
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -r requirements-test.lock
  # The browser tests (tests/e2e) drive Debian's Chromium through Playwright, which downloads no browser.
  # A CJK font too, so the Chinese console renders (and its screenshots show characters, not boxes).
  if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo -n"; fi
    if ! { $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }; then
      echo "install.sh: could not install chromium and fonts-wqy-microhei, so tests/e2e will skip (fail with CI=true)" >&2
    fi
  fi
  # Third-party midjourney-proxy clients from npm, pinned by tests/clients/node/package-lock.json.
  if command -v npm >/dev/null; then
    (cd tests/clients/node && npm ci --no-audit --no-fund --silent)
  else
    echo "install.sh: npm not found, so tests/clients/test_npm_clients.py will skip (fail with CI=true)" >&2
  fi
fi
.venv/bin/python -m pip install -q --no-deps -e .
