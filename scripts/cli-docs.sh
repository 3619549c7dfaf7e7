#!/bin/bash
# Generate zlabel's man page and its bash, zsh and fish completion scripts from the command definitions, with
# swift-argument-parser's own tools (the generate-manual plugin and --generate-completion-script).
#
#   scripts/cli-docs.sh OUTDIR [debug|release]
#
# Writes OUTDIR/zlabel.1, OUTDIR/zlabel-ec2.1 (the EC2 commands, which `zlabel ec2` runs), OUTDIR/zlabel.bash,
# OUTDIR/_zlabel (zsh) and OUTDIR/zlabel.fish, and prints the path of the zlabel binary it used (zlabel-ec2
# is next to it). scripts/install.sh installs them; .ci/checks.d/40-cli-docs.sh checks them.
set -euo pipefail
out=${1:?usage: scripts/cli-docs.sh OUTDIR [debug|release]}
configuration=${2:-debug}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)

swift build -c "$configuration" --product zlabel >&2
swift build -c "$configuration" --product zlabel-ec2 >&2
bin="$(swift build -c "$configuration" --show-bin-path)/zlabel"

# The plugin builds the package's products in the given configuration (already built above) and writes the
# page into its work directory under .build/plugins.
plugin_log=$(mktemp)
stamp=$(mktemp)
trap 'rm -f "$plugin_log" "$stamp"' EXIT
swift package plugin generate-manual --configuration "$configuration" > "$plugin_log" 2>&1 || {
  cat "$plugin_log" >&2
  exit 1
}
for name in zlabel zlabel-ec2; do
  # The plugin names each page after the root command: zlabel-ec2's is "zlabel ec2.1".
  page=$(find .build/plugins -path "*GenerateManual/outputs/$name/*" -name '*.1' -newer "$stamp" -print -quit)
  [ -n "$page" ] || { cat "$plugin_log" >&2; echo "cli-docs: the plugin wrote no $name.1" >&2; exit 1; }
  cp "$page" "$out/$name.1"
done

"$bin" --generate-completion-script bash > "$out/zlabel.bash"
"$bin" --generate-completion-script zsh > "$out/_zlabel"
"$bin" --generate-completion-script fish > "$out/zlabel.fish"
echo "$bin"
