#!/usr/bin/env bash
# Lint, format check, types, then the test suite (doctests included).
# pytest's "no tests collected" (exit 5) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
status=0
echo "== ruff check"; "$BIN/ruff" check evaluator leaderboards tests || status=1
echo "== ruff format --check"; "$BIN/ruff" format --check evaluator leaderboards tests || status=1
echo "== mypy"; "$BIN/mypy" || status=1
echo "== pytest"
"$BIN/python" -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests: failing"
    rc=1
fi
[[ $rc -ne 0 ]] && status=$rc
exit $status
