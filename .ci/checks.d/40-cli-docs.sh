#!/bin/bash
# The man page and the bash, zsh and fish completion scripts are generated from the command definitions
# (scripts/cli-docs.sh), parse in their shells, and mention every subcommand. The subcommands are read from
# the command tree zlabel itself reports (--experimental-dump-help), so a new command is checked without
# editing this file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bin=$(bash scripts/cli-docs.sh "$out" debug)

# Every command path below the root, e.g. "inspect", "ec2 upload" (argument-parser's own help command aside).
mapfile -t commands < <("$bin" --experimental-dump-help | python3 -c '
import json, sys
def walk(command, prefix):
    for sub in command.get("subcommands", []):
        name = sub["commandName"]
        if name == "help":
            continue
        path = prefix + [name]
        print(" ".join(path))
        walk(sub, path)
walk(json.load(sys.stdin)["command"], [])
')
[ "${#commands[@]}" -gt 0 ] || { echo "cli-docs: no subcommands found in the command tree" >&2; exit 1; }
echo "subcommands: $(IFS=,; echo "${commands[*]}")"

failed=0
fail() { echo "cli-docs: $*" >&2; failed=1; }

# The tools that judge them: installed in CI (root, Debian), a failure elsewhere; never silently skipped.
for tool in man:man-db zsh:zsh fish:fish; do
  command -v "${tool%%:*}" > /dev/null && continue
  if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${tool#*:}" > /dev/null
  else
    fail "${tool%%:*} is not installed, so its output cannot be checked (apt-get install ${tool#*:})"
  fi
done

# They parse.
if command -v man > /dev/null; then
  man -l "$out/zlabel.1" > /dev/null 2> "$out/man.err" || fail "man cannot render zlabel.1: $(cat "$out/man.err")"
  [ ! -s "$out/man.err" ] || fail "man warns about zlabel.1: $(cat "$out/man.err")"
fi
bash -n "$out/zlabel.bash" || fail "zlabel.bash does not parse"
if command -v zsh > /dev/null; then zsh -n "$out/_zlabel" || fail "_zlabel does not parse in zsh"; fi
if command -v fish > /dev/null; then fish --no-execute "$out/zlabel.fish" || fail "zlabel.fish does not parse in fish"; fi

# They list every subcommand: the man page as an entry of its own (`.It Em NAME`, nested for `ec2 upload`), the
# completions by the word itself.
for command in "${commands[@]}"; do
  leaf=${command##* }
  grep -qx -- ".It Em ${leaf}" "$out/zlabel.1" || fail "zlabel.1 has no entry for 'zlabel $command'"
  for script in zlabel.bash _zlabel zlabel.fish; do
    grep -qw -- "$leaf" "$out/$script" || fail "$script does not complete '$command'"
  done
done
# zlabel-ec2's own page (zlabel ec2 runs it) lists each of its commands.
mapfile -t ec2_commands < <("$(dirname "$bin")/zlabel-ec2" --experimental-dump-help | python3 -c '
import json, sys
for sub in json.load(sys.stdin)["command"].get("subcommands", []):
    if sub["commandName"] != "help":
        print(sub["commandName"])
')
[ "${#ec2_commands[@]}" -gt 0 ] || fail "zlabel-ec2 reports no subcommands"
if command -v man > /dev/null; then
  man -l "$out/zlabel-ec2.1" > /dev/null 2> "$out/man-ec2.err" || fail "man cannot render zlabel-ec2.1: $(cat "$out/man-ec2.err")"
fi
for command in "${ec2_commands[@]}"; do
  grep -qx -- ".It Em ${command}" "$out/zlabel-ec2.1" || fail "zlabel-ec2.1 has no entry for 'zlabel ec2 $command'"
done
[ $failed = 0 ] || exit 1
echo "cli-docs: man page and 3 completion scripts list all ${#commands[@]} subcommands; zlabel-ec2.1 lists its ${#ec2_commands[@]}"
