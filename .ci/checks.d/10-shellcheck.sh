#!/bin/bash
# Lint the project's shell scripts (warnings and errors; style notes are not enforced).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mapfile -t files < <(git ls-files '*.sh' .ci/run)
echo "shellcheck -S warning on ${#files[@]} files"
shellcheck -S warning "${files[@]}"
echo "shellcheck: no warnings"
