#!/usr/bin/env bash
# Installs pixseek with everything its tests need, on a fresh machine.
#   TORCH_SPEC   which torch to install first (default: torch==2.13.0)
#   TORCH_INDEX  optional pip index for that torch (e.g. PyTorch's CPU-only wheel index)
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
python3 -m pip install --quiet -e ".[dev]"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    # Browser tests drive the distribution's Chromium through Playwright.
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
        || echo "install.sh: could not install chromium; browser tests will be skipped" >&2
fi
