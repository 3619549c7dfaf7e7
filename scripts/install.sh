#!/bin/bash
# Build zlabel in release mode (scripts/build-zlabel.sh: the Swift runtime linked in, code laid out for a small
# resident size) and install it with its man page and shell completions:
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
# is built by build-zlabel.sh, in its own scratch folder: the Swift runtime linked in (--static-swift-stdlib), so
# it starts fast and needs no Swift runtime where it runs, and linked so that a run keeps little resident (see
# that script). The start-up and memory figures in README.md and Benchmarks/README.md are for this build.
docs_bin=$(bash "$here/cli-docs.sh" "$work" "${CONFIGURATION:-release}")
bin=$(bash "$here/build-zlabel.sh")
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
