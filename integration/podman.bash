# Helpers of integration/podman.bats (load after `load helpers`; egress.bash too for the
# egress test).
#
# Isolation: podman never touches the host's podman state. Every path podman writes to
# is under $PM_DIR (/tmp/sandlock-pm-<run token>): storage root and run root, libpod's tmp
# dir, volumes and network configs; CONTAINERS_CONF is a copy of config/containers.conf
# (with the build's runtime first in the sandlock-runc path list) and
# CONTAINERS_STORAGE_CONF one naming the same private paths. What podman 4.3 still writes outside it, and
# what teardown_file removes when the suite created it: /var/lib/containers/cache (the
# image blob-info cache of `podman import`, no setting for it), netavark's IPAM database
# /run/containers/networks (no flag for it in 4.3), the cgroup parent
# libpod_parent in each hierarchy, net.ipv4.ip_forward (restored), and netavark's
# NETAVARK* iptables chains (they
# outlive the bridge network; kept when they existed before the suite, as they then
# belong to someone else's containers).
#
# The image: localhost/slit-busybox:latest, `podman import` of a tar of the test rootfs.
# Containers are named slit-<run>-<test>-<n> (pm_name) and removed by pm_teardown.

PM_IMAGE=localhost/slit-busybox:latest
# Short on purpose: podman refuses a runroot longer than 50 characters, and bats'
# temp dirs (under CI's TMPDIR) are longer. "sandlock" in the name lets the leak check
# of tests/check.sh see anything left mounted here.
PM_DIR=/tmp/sandlock-pm-${RUN_TOKEN:-x}
# Seconds one podman command may take.
PM_TIMEOUT=${PM_TIMEOUT:-60}

# pm_missing: the reason podman cannot be tested on this machine, or nothing.
pm_missing() {
	local bin
	for bin in podman conmon; do
		command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/libexec/podman/$bin" ] || {
			echo "$bin is not installed (apt-get install podman)"
			return
		}
	done
	[ -x /usr/lib/podman/netavark ] || [ -x /usr/libexec/podman/netavark ] ||
		command -v netavark >/dev/null 2>&1 || echo "netavark is not installed (apt-get install netavark)"
}

# pm_setup_file: the private podman (wrapper $PM_DIR/podman) and the imported image.
# Sets PM_SKIP (exported) when the machine lacks podman; the tests then skip with it.
pm_setup_file() {
	export PM_SKIP=""
	PM_SKIP=$(pm_missing)
	[ -z "$PM_SKIP" ] || return 0
	[ "$(id -u)" -eq 0 ] || { PM_SKIP="the podman tests need root"; return 0; }
	[ -x "$RUNTIME" ] || { echo "runtime under test not found: $RUNTIME" >&2; return 1; }
	pm_record_host_state
	mkdir -p "$PM_DIR"/{graph,run,tmp,volumes,networks} || return 1
	sed "s|^sandlock-runc = \[|sandlock-runc = [\"$RUNTIME\", |" \
		"$INTEGRATION_DIR/config/containers.conf" >"$PM_DIR/containers.conf" || return 1
	grep -qF "\"$RUNTIME\"" "$PM_DIR/containers.conf" || {
		echo "pm_setup_file: no sandlock-runc line in config/containers.conf" >&2
		return 1
	}
		printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' \
		"$PM_DIR/run" "$PM_DIR/graph" >"$PM_DIR/storage.conf"
	cat >"$PM_DIR/podman" <<-EOF
		#!/bin/sh
		# podman confined to the test's private state (integration/podman.bash)
		CONTAINERS_CONF=$PM_DIR/containers.conf CONTAINERS_STORAGE_CONF=$PM_DIR/storage.conf \\
		exec podman --root $PM_DIR/graph --runroot $PM_DIR/run --tmpdir $PM_DIR/tmp \\
			--volumepath $PM_DIR/volumes --network-config-dir $PM_DIR/networks \\
			--storage-driver overlay --cgroup-manager cgroupfs --events-backend file "\$@"
	EOF
	chmod +x "$PM_DIR/podman"
	ensure_busybox_rootfs "$ROOTFS" || return 1
	tar -C "$ROOTFS" -cf "$PM_DIR/rootfs.tar" . || return 1
	pm_raw import -q "$PM_DIR/rootfs.tar" "$PM_IMAGE" >/dev/null 3>&- || {
		echo "pm_setup_file: podman import failed" >&2
		return 1
	}
	rm -f "$PM_DIR/rootfs.tar"
}

# pm_record_host_state: what exists before the suite, so that teardown_file removes
# only what the suite made.
pm_record_host_state() {
	export PM_HAD_BLOBCACHE=0 PM_HAD_LIBPOD_PARENT=0 PM_HAD_NETAVARK=0 PM_HAD_NETRUN=0
	[ -e /run/containers/networks ] && PM_HAD_NETRUN=1
	# netavark turns IPv4 forwarding on for the bridge network
	export PM_IP_FORWARD
	PM_IP_FORWARD=$(sysctl -n net.ipv4.ip_forward 2>/dev/null)
	[ -e /var/lib/containers/cache ] && PM_HAD_BLOBCACHE=1
	compgen -G "/sys/fs/cgroup/*/libpod_parent" >/dev/null && PM_HAD_LIBPOD_PARENT=1
	[ -e /sys/fs/cgroup/unified/libpod_parent ] && PM_HAD_LIBPOD_PARENT=1
	netavark_chains | grep -q . && PM_HAD_NETAVARK=1
	return 0
}

# pm_raw ARGS...: the private podman, runtime chosen by ARGS.
pm_raw() {
	timeout --kill-after=5 "$PM_TIMEOUT" "$PM_DIR/podman" "$@" 3>&-
}

# pm ARGS...: the private podman with --runtime $PM_RUNTIME (the runtime under test's
# path, unless a test sets it to a name).
pm() {
	pm_raw --runtime "${PM_RUNTIME:-$RUNTIME}" "$@"
}

# pmq ARGS...: pm with stdio on files, their content then printed (stdout first): for
# commands that leave conmon or a container behind, so `run pmq ...` cannot hang.
pmq() {
	local out err status
	out=$(mktemp "$BATS_TEST_TMPDIR/pmq.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/pmq.XXXXXX")
	pm "$@" >"$out" 2>"$err" </dev/null
	status=$?
	cat "$out" "$err"
	rm -f "$out" "$err"
	return $status
}

# pm_pty COMMAND_WORDS...: pm under a pseudo-terminal (script(1)); output and status of
# the command.
pm_pty() {
	local cmd w
	cmd=$(printf '%q ' timeout --foreground --kill-after=5 "$PM_TIMEOUT" "$PM_DIR/podman" --runtime "${PM_RUNTIME:-$RUNTIME}")
	for w in "$@"; do cmd+=$(printf '%q ' "$w"); done
	in_pty "$cmd"
}

# pm_name VAR: a fresh container name in VAR.
pm_name() {
	printf -v "$1" 'slit-%s-%s-%s' "$RUN_TOKEN" "$BATS_SUITE_TEST_NUMBER" "$((++ID_SEQ))"
}

# pm_setup: for setup().
pm_setup() {
	[ -z "${PM_SKIP:-}" ] || skip "$PM_SKIP"
	common_setup
}

# pm_teardown: every container of the private podman removed (with its exec sessions,
# conmon and cgroups), then the common teardown.
pm_teardown() {
	if [ -z "${PM_SKIP:-}" ] && [ -x "$PM_DIR/podman" ]; then
		pm rm -af -t 0 >/dev/null 2>&1 </dev/null
	fi
	common_teardown
}

# pm_teardown_file: the private podman's state and what podman left on the host.
pm_teardown_file() {
	[ -x "$PM_DIR/podman" ] || return 0
	pm rm -af -t 0 >/dev/null 2>&1 </dev/null
	pm_raw rmi -af >/dev/null 2>&1 </dev/null
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$PM_DIR" | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf --one-file-system "$PM_DIR" 2>/dev/null
	[ "${PM_HAD_BLOBCACHE:-1}" = 0 ] && rm -rf /var/lib/containers/cache &&
		rmdir /var/lib/containers 2>/dev/null
	# (conmon's own cgroup libpod_parent/conmon included; only empty ones go)
	[ "${PM_HAD_LIBPOD_PARENT:-1}" = 0 ] &&
		find /sys/fs/cgroup/*/libpod_parent -depth -type d -exec rmdir {} + 2>/dev/null
	[ "${PM_HAD_NETAVARK:-1}" = 0 ] && remove_netavark_chains
	[ "${PM_IP_FORWARD:-1}" = 0 ] && sysctl -qw net.ipv4.ip_forward=0
	[ "${PM_HAD_NETRUN:-1}" = 0 ] && rm -rf /run/containers/networks &&
		rmdir /run/containers 2>/dev/null
	return 0
}

# netavark_chains: "TOOL TABLE CHAIN" for every NETAVARK* chain of iptables/ip6tables.
netavark_chains() {
	local tool table
	for tool in iptables ip6tables; do
		command -v "$tool" >/dev/null 2>&1 || continue
		for table in filter nat; do
			"$tool" -t "$table" -S 2>/dev/null | awk -v t="$tool" -v tb="$table" \
				'$1 == "-N" && $2 ~ /^NETAVARK/ { print t, tb, $2 }'
		done
	done
}

# remove_netavark_chains: the jumps to NETAVARK* chains, then the chains themselves.
remove_netavark_chains() {
	local tool table chain rule
	while read -r tool table; do
		# every rule that jumps into a NETAVARK chain, from any chain
		"$tool" -t "$table" -S 2>/dev/null | grep -E '^-A .* -j NETAVARK' | while read -r rule; do
			eval "$tool -t $table ${rule/-A/-D}" 2>/dev/null
		done
	done < <(netavark_chains | awk '{print $1, $2}' | sort -u)
	while read -r tool table chain; do
		"$tool" -t "$table" -F "$chain" 2>/dev/null
	done < <(netavark_chains)
	while read -r tool table chain; do
		"$tool" -t "$table" -X "$chain" 2>/dev/null
	done < <(netavark_chains)
	return 0
}

# pm_id NAME: the full container id.
pm_id() {
	pm inspect -f '{{.Id}}' "$1" </dev/null
}

# pm_status NAME: "status exitcode" of the container.
pm_status() {
	pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1" </dev/null
}

# pm_wait_status NAME STATUS [SECONDS]
pm_wait_status() {
	local deadline=$((SECONDS + ${3:-15})) now
	while :; do
		now=$(pm inspect -f '{{.State.Status}}' "$1" </dev/null 2>/dev/null)
		[ "$now" = "$2" ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			echo "container $1 is '$now', wanted '$2'" >&2
			return 1
		fi
		sleep 0.1
	done
}

# pm_wait_log NAME TEXT [SECONDS]: waits until the container's log has the line TEXT.
pm_wait_log() {
	local deadline=$((SECONDS + ${3:-15}))
	until pm logs "$1" </dev/null 2>/dev/null | grep -qxF -- "$2"; do
		if [ $SECONDS -ge $deadline ]; then
			echo "container $1 never logged '$2'; its log:" >&2
			pm logs "$1" </dev/null >&2
			return 1
		fi
		sleep 0.1
	done
}

# libpod_cgroups ID: the container's cgroup directories in any hierarchy.
libpod_cgroups() {
	find /sys/fs/cgroup -maxdepth 4 -type d -name "libpod-$1*" 2>/dev/null
}

# pm_assert_gone ID: nothing of container ID left: no runtime state, no conmon, no
# cgroups, no mounts of its storage.
pm_assert_gone() {
	local id=$1 left="" procs
	[ -e "/run/sandlock-runc/$id" ] && left+="runtime state /run/sandlock-runc/$id; "
	# conmon and the exit command it starts (`podman container cleanup ID`) can outlive
	# `podman rm` by a moment: they must be gone within 15 s
	no_procs_of_id() { [ -z "$(pids_with_cmdline "$id")" ]; }
	eventually 15 no_procs_of_id || left+="processes $(pids_with_cmdline "$id"); "
	[ -n "$(libpod_cgroups "$id")" ] && left+="cgroups $(libpod_cgroups "$id" | tr '\n' ' '); "
	findmnt -rn -o TARGET | grep -qF "$id" && left+="mounts; "
	[ -z "$left" ] || {
		echo "leftovers of container $id: $left" >&2
		return 1
	}
}
