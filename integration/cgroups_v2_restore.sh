#!/bin/bash
# Undoes the cgroup v2 hand-over of integration/cgroups_v2.bats: gives the controllers
# it moved to cgroup2 back to their v1 hierarchies, mounted where and how they were.
#
#   integration/cgroups_v2_restore.sh           restore (idempotent: nothing recorded,
#                                              nothing to do; already mounted, kept)
#   integration/cgroups_v2_restore.sh --check   exit 1 (and say what) while a hand-over
#                                              is still in effect, for leak checks
#
# The record is $SANDLOCK_CG_HANDOVER (default /run/sandlock-it-cgroups-v2.handover),
# written by the test before every step it takes, one tab-separated line per step:
#   mount   MOUNT_POINT  VFS_OPTIONS  SOURCE  SUPER_OPTIONS   (a v1 mount it unmounted)
#   enabled CONTROLLER                                        (+CONTROLLER in the cgroup2
#                                                              root's cgroup.subtree_control)
# Needs root. Prints what it does on stderr; exit 0 when everything is back.
set -uo pipefail

RECORD=${SANDLOCK_CG_HANDOVER:-/run/sandlock-it-cgroups-v2.handover}
UNIFIED=${SANDLOCK_CG_UNIFIED:-/sys/fs/cgroup/unified}

say() { echo "cgroups_v2_restore: $*" >&2; }

# mount_line MOUNT_POINT: the mountinfo line of the cgroup v1 mount at MOUNT_POINT, if any.
mount_line() {
	awk -v mp="$1" '$5 == mp { for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup") print }' \
		/proc/self/mountinfo
}

# v1_options VFS_OPTIONS SUPER_OPTIONS: the -o of mount(8) that gives that mount back
# ("rw,relatime" + "rw,cpu" -> "rw,relatime,cpu").
v1_options() {
	local out=$1 opt
	local IFS=,
	for opt in $2; do
		case $opt in rw | ro) ;; *) out+=",$opt" ;; esac
	done
	echo "$out"
}

# disable_in_unified CONTROLLER: -CONTROLLER in every cgroup.subtree_control of the
# cgroup2 hierarchy, deepest first (a parent cannot drop what a child still delegates).
disable_in_unified() {
	local c=$1 f
	[ -e "$UNIFIED/cgroup.subtree_control" ] || return 0
	while read -r f; do
		grep -qw -- "$c" "$f" 2>/dev/null && echo "-$c" >"$f" 2>/dev/null
	done < <(find "$UNIFIED" -mindepth 2 -depth -name cgroup.subtree_control 2>/dev/null)
	grep -qw -- "$c" "$UNIFIED/cgroup.subtree_control" || return 0
	echo "-$c" >"$UNIFIED/cgroup.subtree_control" || {
		say "cannot disable $c in $UNIFIED/cgroup.subtree_control"
		return 1
	}
}

# remount MOUNT_POINT VFS_OPTIONS SOURCE SUPER_OPTIONS: mounts the v1 hierarchy again,
# retrying while its controllers still have (dying) cgroups on the v2 side (EBUSY).
remount() {
	local mp=$1 vfs=$2 source=$3 super=$4 line i
	line=$(mount_line "$mp")
	if [ -n "$line" ]; then
		say "$mp is mounted already"
		return 0
	fi
	mkdir -p "$mp" || return 1
	# What other programs created in the bare mount point meanwhile: plain files of the
	# parent (tmpfs), never a cgroup (checked above: nothing is mounted there).
	find "$mp" -mindepth 1 -maxdepth 1 -xdev -exec rm -rf --one-file-system {} + 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		mount -t cgroup -o "$(v1_options "$vfs" "$super")" "$source" "$mp" 2>/dev/null && break
		sleep 0.1
	done
	line=$(mount_line "$mp")
	if [ -z "$line" ]; then
		say "could not mount $mp again (mount -t cgroup -o $(v1_options "$vfs" "$super") $source $mp)"
		return 1
	fi
	# the same options as before, or say so
	local got
	got=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; print $6, $(i + 3) }' <<<"$line")
	if [ "$got" != "$vfs $super" ]; then
		say "$mp is mounted again, but with \"$got\" instead of \"$vfs $super\""
		return 1
	fi
	say "mounted $mp again ($vfs; $super)"
}

check() {
	[ -s "$RECORD" ] || return 0
	say "a cgroup v2 hand-over is still in effect (record $RECORD):"
	sed 's/^/  /' "$RECORD" >&2
	return 1
}

restore() {
	local kind a b c d failed=0
	[ -e "$RECORD" ] || return 0
	# controllers first: v1 can only take back what no v2 cgroup uses
	while IFS=$'\t' read -r kind a b c d; do
		[ "$kind" = enabled ] && { disable_in_unified "$a" || failed=1; }
	done <"$RECORD"
	while IFS=$'\t' read -r kind a b c d; do
		[ "$kind" = mount ] && { remount "$a" "$b" "$c" "$d" || failed=1; }
	done <"$RECORD"
	if ((failed)); then
		say "not everything is back; the record stays in $RECORD"
		return 1
	fi
	rm -f "$RECORD"
}

if [ "$(id -u)" -ne 0 ]; then
	say "needs root"
	exit 1
fi
case ${1:-} in
--check) check ;;
"") restore ;;
*)
	say "usage: $0 [--check]"
	exit 2
	;;
esac
