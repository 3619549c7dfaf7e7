#!/bin/bash
# test.sh - run the whole test suite from a fresh clone: install what the tests
# and their oracles need (scripts/setup-test-env.sh; root on Debian 12), build
# everything including the tests, run them.
#
# Usage: scripts/test.sh [ARGS for swift test...]     e.g. --filter OracleHarness
# Env:   ZLABEL_SCRATCH_PATH  build directory (default: .build)
#        SKIP_SETUP=1         do not run setup-test-env.sh
#        CI=true              a test whose oracle is missing fails instead of
#                             being skipped
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v swift > /dev/null || export PATH="/opt/swift/usr/bin:$PATH"

SCRATCH=()
[ -n "${ZLABEL_SCRATCH_PATH:-}" ] && SCRATCH=(--scratch-path "$ZLABEL_SCRATCH_PATH")

phase() {  # phase NAME CMD...: run, print its time, keep its exit status
  local name=$1 start=$SECONDS rc=0; shift
  printf '\n==> %s\n' "$name"
  "$@" || rc=$?
  printf '<== %s: %s in %d s\n' "$name" "$([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")" $((SECONDS - start))
  return $rc
}

[ "${SKIP_SETUP:-0}" = 1 ] || phase "test environment (scripts/setup-test-env.sh)" bash scripts/setup-test-env.sh
# One build of everything (library, CLI, test targets), then run without rebuilding.
phase "swift build --build-tests" swift build --build-tests "${SCRATCH[@]}"
phase "swift test" swift test --skip-build "${SCRATCH[@]}" "$@"
