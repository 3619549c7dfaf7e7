#!/bin/bash
# Lint the project's shell scripts: errors in every tracked script; warnings too in the test and CI
# infrastructure (Tests/Oracle, Fixtures, scripts/setup-test-env.sh, scripts/test.sh, .ci).
# SC2216 is off: `xz -dc F | cp --sparse=always /dev/stdin OUT` is how we unpack sparse images, and cp does read
# the pipe there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mapfile -t all < <(git ls-files '*.sh' .ci/run)
mapfile -t infra < <(git ls-files 'Tests/Oracle/*.sh' 'Fixtures/*.sh' scripts/setup-test-env.sh scripts/test.sh .ci/run '.ci/*.sh')
echo "shellcheck -S error on ${#all[@]} files, -S warning on ${#infra[@]} of them"
shellcheck -S error -e SC2216 "${all[@]}"
shellcheck -S warning -e SC2216 "${infra[@]}"
echo "shellcheck: clean"
