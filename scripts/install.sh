#!/bin/bash
# Build zlabel in release mode (zlabel with the Swift runtime linked in, --static-swift-stdlib) and install it
# with its man page and shell completions:
#
#   scripts/install.sh [PREFIX]        (default PREFIX: /usr/local; DESTDIR is honoured for packaging;
#                                       CONFIGURATION=debug installs a debug build)
#
#   PREFIX/bin/zlabel, PREFIX/bin/zlabel-ec2 (the EC2 commands, which `zlabel ec2` runs)
#   PREFIX/share/man/man1/zlabel.1, PREFIX/share/man/man1/zlabel-ec2.1
#   PREFIX/share/bash-completion/completions/zlabel
#   PREFIX/share/zsh/site-functions/_zlabel
#   PREFIX/share/fish/vendor_completions.d/zlabel.fish
set -euo pipefail
prefix=${1:-/usr/local}
root="${DESTDIR:-}$prefix"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Man pages and completions come from a regular build (cli-docs.sh), which also gives zlabel-ec2. zlabel itself
# is built again with the Swift runtime linked in (--static-swift-stdlib), in its own scratch folder: it starts
# faster and needs no Swift runtime where it runs, and the start-up and memory figures in README.md and
# Benchmarks/README.md are for this build.
docs_bin=$(bash "$here/cli-docs.sh" "$work" "${CONFIGURATION:-release}")
static=(-c "${CONFIGURATION:-release}" --static-swift-stdlib --scratch-path "$here/../.build-static")
(cd "$here/.." && swift build "${static[@]}" --product zlabel >&2)
bin="$(cd "$here/.." && swift build "${static[@]}" --show-bin-path)/zlabel"
install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
  "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$root/bin/zlabel"
install -m 0755 "$(dirname "$docs_bin")/zlabel-ec2" "$root/bin/zlabel-ec2"
install -m 0644 "$work/zlabel.1" "$root/share/man/man1/zlabel.1"
install -m 0644 "$work/zlabel-ec2.1" "$root/share/man/man1/zlabel-ec2.1"
install -m 0644 "$work/zlabel.bash" "$root/share/bash-completion/completions/zlabel"
install -m 0644 "$work/_zlabel" "$root/share/zsh/site-functions/_zlabel"
install -m 0644 "$work/zlabel.fish" "$root/share/fish/vendor_completions.d/zlabel.fish"
echo "installed zlabel $("$root/bin/zlabel" --version) in $root"
