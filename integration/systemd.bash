# A real systemd for the --systemd-cgroup tests: this host does not run systemd, so the
# tests start Debian's /lib/systemd/systemd as PID 1 of its own pid, mount, cgroup, uts
# and ipc namespaces (the way a system container runs it), with
#   - a cgroup of its own in every hierarchy ($SD_CGROUP), which is the root of its cgroup
#     namespace and of the cgroup filesystems mounted afresh in its mount namespace, so
#     that it manages that subtree only;
#   - a private /run, a read-only /proc/sys, container=sandlock-test in its environment;
#   - one unit to start, sandlock-test.target, which pulls in nothing (its directory
#     comes first in the unit path; the trailing ":" keeps the usual ones after it).
# Commands run inside with sd_in (nsenter): the runtime, systemctl. sd_stop kills the
# namespace's PID 1 (and with it everything in the namespace) and removes the subtree.

SD_UNITS_DIR=${BATS_RUN_TMPDIR:-/tmp}/systemd-units
SD_LOG=${BATS_RUN_TMPDIR:-/tmp}/systemd.log
SD_PID_FILE=${BATS_RUN_TMPDIR:-/tmp}/systemd.pid

# sd_cgroup_name: the subtree's name in every hierarchy.
sd_cgroup_name() {
	echo "sandlock-systemd-${RUN_TOKEN}"
}

# sd_hierarchies: the host's cgroup mount points (v1 controllers, name=systemd, cgroup2).
sd_hierarchies() {
	findmnt -rn -t cgroup,cgroup2 -o TARGET
}

# sd_mount_options MOUNTPOINT: the options to mount the same v1 hierarchy again.
sd_mount_options() {
	findmnt -rn -o OPTIONS "$1" | tr ',' '\n' | grep -vxE 'rw|ro|relatime|noatime|nosuid|nodev|noexec|seclabel' | paste -sd,
}

# The inner half, run by sd_start as PID 1 of the new namespaces: mounts, then exec
# systemd. $1: one "MOUNTPOINT=OPTIONS" line per hierarchy (OPTIONS "cgroup2" for cgroup2).
sd_inner() {
	local line m opts
	set -e
	mount -t proc proc /proc
	mount --bind /proc/sys /proc/sys
	mount -o remount,bind,ro /proc/sys
	mount -t tmpfs -o mode=755 tmpfs /run
	mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
	while read -r line; do
		m=${line%%=*}
		opts=${line#*=}
		mkdir -p "$m"
		if [ "$opts" = cgroup2 ]; then
			mount -t cgroup2 cgroup2 "$m"
		else
			mount -t cgroup -o "$opts" cgroup "$m"
		fi
	done <<<"$1"
	exec env -i container=sandlock-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		SYSTEMD_UNIT_PATH="$SD_UNITS_DIR:" \
		/lib/systemd/systemd --system --unit=sandlock-test.target --log-target=console \
		--log-level=info --show-status=no
}

# sd_start: starts systemd and waits until it is up. Fails with its log otherwise.
sd_start() {
	local cg m list="" state deadline
	cg=$(sd_cgroup_name)
	mkdir -p "$SD_UNITS_DIR"
	cat >"$SD_UNITS_DIR/sandlock-test.target" <<-'EOF'
		[Unit]
		Description=sandlock-runc systemd driver tests
		DefaultDependencies=no
	EOF
	while read -r m; do
		mkdir -p "$m/$cg"
		# a new cpuset cgroup has no CPUs nor memory nodes: nothing could join it
		if [ -e "$m/$cg/cpuset.cpus" ]; then
			cat "$m/cpuset.cpus" >"$m/$cg/cpuset.cpus"
			cat "$m/cpuset.mems" >"$m/$cg/cpuset.mems"
		fi
		if [ "$(findmnt -rn -o FSTYPE "$m")" = cgroup2 ]; then
			list+="$m=cgroup2"$'\n'
		else
			list+="$m=$(sd_mount_options "$m")"$'\n'
		fi
	done < <(sd_hierarchies)
	# Join the subtree first: the cgroup namespace's root is the cgroup unshare runs in.
	(
		for m in $(sd_hierarchies); do echo "$BASHPID" >"$m/$cg/cgroup.procs" || exit 1; done
		exec unshare --pid --fork --mount --cgroup --uts --ipc --propagation private \
			bash -c "source '$INTEGRATION_DIR/systemd.bash'; SD_UNITS_DIR='$SD_UNITS_DIR' sd_inner \"\$1\"" \
			sd_inner "${list%$'\n'}"
	) >"$SD_LOG" 2>&1 </dev/null 3>&- &
	echo $! >"$SD_PID_FILE"
	deadline=$((SECONDS + 30))
	while :; do
		state=$(sd_in systemctl show -p SystemState --value 2>/dev/null) || true
		[ "$state" = running ] || [ "$state" = degraded ] && return 0
		if [ $SECONDS -ge $deadline ] || ! kill -0 "$(cat "$SD_PID_FILE")" 2>/dev/null; then
			echo "systemd did not come up (state '$state'); its log:" >&2
			tail -30 "$SD_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
}

# sd_pid: systemd's pid on the host (the child of unshare).
sd_pid() {
	pgrep -P "$(cat "$SD_PID_FILE" 2>/dev/null)" 2>/dev/null | head -1
}

# sd_in CMD...: CMD in systemd's namespaces.
sd_in() {
	local pid
	pid=$(sd_pid)
	[ -n "$pid" ] || return 1
	nsenter -t "$pid" -m -p -C -u -i -- "$@"
}

# sd_subtree_pids: every process in the namespace's cgroup subtree, in any hierarchy.
sd_subtree_pids() {
	local cg m
	cg=$(sd_cgroup_name)
	for m in $(sd_hierarchies); do
		[ -d "$m/$cg" ] && find "$m/$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# sd_stop: kills everything in the namespace's cgroup subtree (systemd and what it runs;
# the subtree holds all of it whatever state the start reached) and removes the subtree.
sd_stop() {
	local cg m pids deadline
	cg=$(sd_cgroup_name)
	for m in $(sd_hierarchies); do
		[ -e "$m/$cg/freezer.state" ] &&
			find "$m/$cg" -name freezer.state -exec sh -c 'echo THAWED >"$1"' _ {} \; 2>/dev/null
	done
	# The namespace's init first: the kernel kills the rest, unshare reaps it and exits.
	pids=$(sd_pid)
	[ -n "$pids" ] && kill -9 "$pids" 2>/dev/null
	[ -s "$SD_PID_FILE" ] && wait_gone "$(cat "$SD_PID_FILE")" 5
	deadline=$((SECONDS + 10))
	while pids=$(sd_subtree_pids) && [ -n "$pids" ] && [ $SECONDS -lt $deadline ]; do
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
	for m in $(sd_hierarchies); do
		deadline=$((SECONDS + 5))
		while [ -d "$m/$cg" ] && [ $SECONDS -lt $deadline ]; do
			find "$m/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
			[ -d "$m/$cg" ] && sleep 0.1
		done
	done
	rm -f "$SD_PID_FILE"
}
