// The clean-up for making an AMI from a running OmniOS instance (the other way to a bootable image, when the
// image was installed on EC2 itself), as a POSIX sh script that `zlabel ec2 cleanup-script` prints. The tests
// run it through `sh -n` and shellcheck.

/// The instance clean-up script.
public enum InstanceCleanupScript {
    /// The script text. Without `--yes` it only lists what it would do; with `--yes`, run as root, it removes the
    /// ssh host keys, boot environments that are not active now or on reboot, system and SMF logs, the fault
    /// manager's logs, users' ssh authorized keys and root's shell history, then powers the instance off.
    public static let text = #"""
#!/bin/sh
# Clean a running OmniOS instance before an AMI is made from its root volume.
# Written by `zlabel ec2 cleanup-script`; read it before running it.
#
#   sh cleanup.sh           show what would be removed, change nothing
#   sh cleanup.sh --yes     remove it, then power off
#
# Removed: the ssh host keys (sshd makes new ones on the next boot, so every instance gets its own), every boot
# environment that is neither active now nor active on reboot, the system logs, the fault manager's logs,
# every user's ssh authorized_keys, and root's shell history. The instance is then powered off, so that
# nothing is written again before the volume is snapshotted.
#
# Your own login shell may write its history when it exits: run `unset HISTFILE` in it first.

set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

APPLY=no
case "${1:-}" in
  --yes) APPLY=yes ;;
  "") ;;
  *) echo "usage: sh $0 [--yes]" >&2; exit 2 ;;
esac

uid=$(/usr/xpg4/bin/id -u 2>/dev/null || id -u)
if [ "$APPLY" = yes ] && [ "$uid" != 0 ]; then
  echo "run this as root" >&2
  exit 1
fi

# do CMD ARGS...: run a command, or only show it without --yes.
do_it() {
  if [ "$APPLY" = yes ]; then
    "$@" || echo "warning: '$*' failed" >&2
  else
    echo "would run: $*"
  fi
}

# remove FILE...: remove the files that exist.
remove() {
  for f in "$@"; do
    if [ -e "$f" ] || [ -h "$f" ]; then do_it rm -f "$f"; fi
  done
}

# empty FILE...: truncate files that daemons keep open, keeping owner and mode.
empty() {
  for f in "$@"; do
    if [ -f "$f" ]; then
      if [ "$APPLY" = yes ]; then : > "$f"; else echo "would empty: $f"; fi
    fi
  done
}

echo "== ssh host keys"
remove /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub

echo "== boot environments that are not active now or on reboot"
if command -v beadm > /dev/null 2>&1; then
  # beadm list -H: name;uuid;active;mountpoint;space;policy;created, active holding N (now) and/or R (reboot).
  beadm list -H 2> /dev/null | while IFS=';' read -r name _ active _; do
    case "$active" in
      *N* | *R*) echo "keeping $name (active: $active)" ;;
      *) do_it beadm destroy -F "$name" ;;
    esac
  done
fi

echo "== system logs"
empty /var/adm/messages /var/adm/sulog /var/adm/wtmpx /var/adm/utmpx /var/adm/lastlog /var/log/syslog \
  /var/log/authlog /var/adm/spellhist
remove /var/adm/messages.[0-9]* /var/log/syslog.[0-9]* /var/log/authlog.[0-9]*
for f in /var/svc/log/*.log; do
  empty "$f"
done
remove /var/svc/log/*.log.[0-9]*

echo "== fault manager logs"
if command -v svcadm > /dev/null 2>&1; then
  do_it svcadm disable -st svc:/system/fmd:default
fi
remove /var/fm/fmd/errlog* /var/fm/fmd/fltlog* /var/fm/fmd/infolog*
# fmd is disabled only until the next boot (-t); it starts again on the new instance with empty logs.

echo "== users' ssh authorized keys"
remove /root/.ssh/authorized_keys /root/.ssh/authorized_keys2
for d in /home/* /export/home/*; do
  [ -d "$d/.ssh" ] || continue
  remove "$d/.ssh/authorized_keys" "$d/.ssh/authorized_keys2"
done

echo "== root's shell history"
remove /root/.bash_history /root/.sh_history /root/.history /root/.zsh_history /root/.lesshst /root/.viminfo

if [ "$APPLY" = yes ]; then
  echo "== powering off; snapshot the root volume once the instance is stopped"
  sync
  exec poweroff
else
  echo "nothing was changed; run again with --yes to clean up and power off"
fi
"""#
}
