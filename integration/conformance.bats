#!/usr/bin/env bats
# OCI conformance beyond the basics: user and time namespaces, --no-pivot, fd passing
# (--preserve-fds, LISTEN_FDS), the runtime's own pty for a foreground `run`, the seccomp
# listener protocol, special mounts and mount options, process/linux extras (oomScoreAdj,
# personality, domainname, rootfsPropagation), `features`, cgroupsPath forms and logging;
# namespaces absent from the config (inherited), the four rootfsPropagation values, the
# fields create refuses rather than drops, and --version's commit.
# runc's behaviour is the reference: `RUNTIME=$(which runc) bats integration/conformance.bats`.

load helpers

setup() {
	common_setup
	CGROUP_DIRS=()
}

teardown() {
	common_teardown
	# cgroups a test asked for by path (relative to each hierarchy's root), in every
	# hierarchy: deepest first, only empty ones (a runtime may leave them behind)
	local i h
	for ((i = ${#CGROUP_DIRS[@]} - 1; i >= 0; i--)); do
		for h in /sys/fs/cgroup/*/; do
			[ -d "$h${CGROUP_DIRS[i]}" ] && rmdir "$h${CGROUP_DIRS[i]}" 2>/dev/null
		done
	done
	return 0
}

# rt_fds ARGS...: the runtime with this test's --root, keeping the caller's fd 3 (rt
# closes it). Only for commands whose fd 3 the test redirected itself.
rt_fds() {
	timeout --kill-after=5 "$RT_TIMEOUT" "$RUNTIME" --root "$TEST_ROOT" "$@"
}

# run_in BUNDLE_FILTERS... -- WORDS...: runs WORDS in the foreground in a fresh
# container made with the filters; $status and $output as from bats' run.
run_in() {
	local filters=() id
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		filters+=("$1")
		shift
	done
	shift
	new_id id
	make_bundle "b-$id" "${filters[@]}" "$(args "$@")"
	run_container "$id" "$BUNDLE"
	echo "status $status: $output"
}

# start_sleeper ID BUNDLE [CREATE_ARGS...]: create + start, wait until running.
start_sleeper() {
	local id=$1 bundle=$2
	shift 2
	create_container "$id" "$bundle" "$@" || return
	rt start "$id" </dev/null || { echo "start $id failed" >&2; return 1; }
	wait_status "$id" running
}

# host_cgroup PID CONTROLLER: PID's cgroup path in that v1 hierarchy (or "" = unified).
host_cgroup() {
	awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) { print $3; exit } }
		c == "" && $2 == "" { print $3; exit }' "/proc/$1/cgroup"
}

# searchable_path DIR: every directory from DIR up to / gets o+x (bats' tmp dirs are 0700).
searchable_path() {
	local d=$1
	while [ "$d" != / ]; do
		chmod o+x "$d" || return
		d=$(dirname "$d")
	done
}

# mounts_outside DIR KEEP: host mount points under DIR that are not under KEEP.
mounts_outside() {
	findmnt -rn -o TARGET | grep -F "$1" | grep -vF "$2" || true
}

# ---------------------------------------------------------------- 1. user namespace

@test "user namespace: uid/gid mappings, root inside is uid 100000 on the host" {
	new_id ID
	make_bundle b '.linux.namespaces += [{type: "user"}]' \
		'.linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]' \
		'.linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]' \
		"$(args sh -c 'cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user; echo ready; exec sleep 1000')"
	chown -R 100000:100000 "$BUNDLE/rootfs"
	# root of the new user namespace is uid 100000 on the host: it must reach the rootfs
	searchable_path "$BUNDLE"
	start_sleeper "$ID" "$BUNDLE"
	wait_for_line "$BUNDLE/init.out" ready
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	mapfile -t out <"$BUNDLE/init.out"
	[ "$(echo ${out[0]})" = "0 100000 65536" ]
	[ "$(echo ${out[1]})" = "0 100000 65536" ]
	[ "${out[2]}" = 0 ]
	[ "${out[3]}" = 0 ]
	[ "${out[4]}" != "$(host_ns user)" ]
	pid=$(state_of "$ID" pid)
	[ "$pid" -gt 0 ]
	grep -E '^(Uid|Gid):' "/proc/$pid/status"
	[ "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")" = "100000 100000 100000 100000" ]
	[ "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")" = "100000 100000 100000 100000" ]
	# exec joins the user namespace too
	run rt exec "$ID" sh -c 'id -u; readlink /proc/self/ns/user'
	echo "exec: $status: $output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 0 ]
	[ "${lines[1]}" = "${out[4]}" ]
}

# ---------------------------------------------------------------- 2. --no-pivot

@test "--no-pivot: create/start work and the rootfs is /" {
	new_id ID
	make_bundle b "$(args sh -c 'cat /.slit-bundle; stat -c %i /; cd / && pwd; ls /bin/busybox')"
	create_container "$ID" "$BUNDLE" --no-pivot
	rt start "$ID" </dev/null
	wait_status "$ID" stopped
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	mapfile -t out <"$BUNDLE/init.out"
	[ "${out[0]}" = "$BUNDLE" ]
	[ "${out[1]}" = "$(stat -c %i "$BUNDLE/rootfs")" ]
	[ "${out[2]}" = / ]
	[ "${out[3]}" = /bin/busybox ]
	[ ! -s "$BUNDLE/init.err" ]
	# and run --no-pivot in the foreground
	new_id ID2
	make_bundle b2 "$(args cat /.slit-bundle)"
	run_container "$ID2" "$BUNDLE" --no-pivot
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$BUNDLE" ]
}

# ---------------------------------------------------------------- 3. time namespace

@test "time namespace: timeOffsets shift boottime and monotonic" {
	[ -e /proc/self/ns/time ] || skip "the kernel has no time namespaces"
	host_up=$(cut -d. -f1 /proc/uptime)
	run_in '.linux.namespaces += [{type: "time"}]' \
		'.linux.timeOffsets = {boottime: {secs: 86400, nanosecs: 0}, monotonic: {secs: 3600, nanosecs: 0}}' -- \
		sh -c 'cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" -ge $((host_up + 86400)) ]
	[ "${lines[0]}" -lt $((host_up + 86400 + 60)) ]
	[ "${lines[1]}" != "$(host_ns time)" ]
}

# ---------------------------------------------------------------- 4. fd passing

@test "--preserve-fds 1: the container writes to the caller's fd 3" {
	new_id ID
	make_bundle b "$(args sh -c 'echo via-fd3 > /proc/self/fd/3 && echo wrote; ls /proc/self/fd/4 2>&1 || echo no-fd4')"
	file=$BATS_TEST_TMPDIR/fd3.out
	: >"$BATS_TEST_TMPDIR/fd4.out"
	rt_fds run --preserve-fds 1 --bundle "$BUNDLE" "$ID" 3>"$file" 4>"$BATS_TEST_TMPDIR/fd4.out" \
		>"$BUNDLE/run.out" 2>"$BUNDLE/run.err" </dev/null
	status=$?
	cat "$BUNDLE/run.out" "$BUNDLE/run.err"
	[ "$status" -eq 0 ]
	[ "$(cat "$file")" = via-fd3 ]
	grep -qx wrote "$BUNDLE/run.out"
	# only the one fd asked for is passed
	grep -qx no-fd4 "$BUNDLE/run.out"
}

@test "LISTEN_FDS=1: fd 3 is passed, LISTEN_FDS=1 and LISTEN_PID=1 are set" {
	new_id ID
	make_bundle b "$(args sh -c 'echo "LISTEN_FDS=$LISTEN_FDS"; echo "LISTEN_PID=$LISTEN_PID"; echo via-listen >&3 && echo wrote')"
	file=$BATS_TEST_TMPDIR/listen.out
	# systemd's protocol: LISTEN_PID is the pid of the process the fds are for (the
	# runtime: exec keeps the shell's pid)
	timeout --kill-after=5 "$RT_TIMEOUT" sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"' sh \
		"$RUNTIME" --root "$TEST_ROOT" run --bundle "$BUNDLE" "$ID" \
		3>"$file" >"$BUNDLE/run.out" 2>"$BUNDLE/run.err" </dev/null
	status=$?
	cat "$BUNDLE/run.out" "$BUNDLE/run.err"
	[ "$status" -eq 0 ]
	grep -qx LISTEN_FDS=1 "$BUNDLE/run.out"
	grep -qx LISTEN_PID=1 "$BUNDLE/run.out"
	grep -qx wrote "$BUNDLE/run.out"
	[ "$(cat "$file")" = via-listen ]
}

# ---------------------------------------------------------------- 5. foreground pty

@test "run with process.terminal and no console socket proxies its own pty" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	new_id ID
	make_bundle b '.process.terminal = true' "$(args sh -c 'echo hello-from-tty; tty; exit 3')"
	cmd=$(printf '%q ' "$RUNTIME" --root "$TEST_ROOT" run --bundle "$BUNDLE" "$ID")
	run timeout --kill-after=5 "$RT_TIMEOUT" script -qec "$cmd" /dev/null </dev/null
	# \r from the pty; the pty echoes the EOF of script's /dev/null stdin as ^@
	output=${output//$'\r'/}
	output=${output//'^@'/}
	echo "status $status: $output"
	[ "$status" -eq 3 ]
	grep -qx hello-from-tty <<<"$output"
	grep -qxE '/dev/pts/[0-9]+' <<<"$output"
	run rt state "$ID"
	[ "$status" -ne 0 ]
	assert_no_leftovers "$ID" "$BUNDLE"
}

# ---------------------------------------------------------------- 6. seccomp listener

@test "seccomp listenerPath: the agent gets the state and fd, its errno reaches the process" {
	new_id ID
	sock=$BATS_TEST_TMPDIR/agent.sock
	json=$BATS_TEST_TMPDIR/agent.json
	make_bundle b "$(args sh -c 'read go < /go; mkdir /tmp/notified; echo "mkdir rc=$?"; touch /tmp/file; echo "touch rc=$?"')" \
		".linux.seccomp = {defaultAction: \"SCMP_ACT_ALLOW\", architectures: [\"SCMP_ARCH_X86_64\"],
			listenerPath: \"$sock\", listenerMetadata: \"meta\",
			syscalls: [{names: [\"mkdir\", \"mkdirat\"], action: \"SCMP_ACT_NOTIFY\"}]}"
	mkfifo "$BUNDLE/rootfs/go"
	SECCOMP_LISTENER_TIMEOUT=30 "$(helper seccomp_listener)" "$sock" "$json" 13
	create_container "$ID" "$BUNDLE"
	pid=$(state_of "$ID" pid)
	rt start "$ID" </dev/null
	wait_file "$json"
	cat "$json"
	echo go >"$BUNDLE/rootfs/go"
	wait_status "$ID" stopped
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	jq -e '.ociVersion | type == "string" and length > 0' "$json"
	jq -e '.fds == ["seccompFd"]' "$json"
	[ "$(jq -r .pid "$json")" = "$pid" ]
	[ "$(jq -r .metadata "$json")" = meta ]
	[ "$(jq -r .state.id "$json")" = "$ID" ]
	[ "$(jq -r .state.pid "$json")" = "$pid" ]
	grep -qx 'mkdir rc=1' "$BUNDLE/init.out"
	grep -q 'Permission denied' "$BUNDLE/init.err"
	grep -qx 'touch rc=0' "$BUNDLE/init.out"
	[ ! -e "$BUNDLE/rootfs/tmp/notified" ]
	[ -e "$BUNDLE/rootfs/tmp/file" ]
	wait_file "$json.count"
	[ "$(cat "$json.count")" -ge 1 ]
}

# ---------------------------------------------------------------- 7. mounts

@test "mqueue is mounted at /dev/mqueue" {
	run_in '.mounts |= map(select(.destination != "/dev/mqueue")) + [{destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]}]' -- \
		sh -c 'grep " /dev/mqueue " /proc/self/mountinfo'
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(awk '{for (i = 7; i < NF; i++) if ($i == "-") {print $(i + 1); exit}}' <<<"$output")" = mqueue ]
}

@test "a ro cgroup mount at /sys/fs/cgroup shows the container's own cgroups" {
	new_id ID
	make_bundle b "$(args sleep 1000)" \
		'.mounts |= map(select(.destination != "/sys/fs/cgroup")) + [{destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}]'
	start_sleeper "$ID" "$BUNDLE"
	pid=$(state_of "$ID" pid)
	cg=$(host_cgroup "$pid" pids)
	echo "host pids cgroup of $pid: $cg"
	[ -n "$cg" ] && [ "$cg" != / ]
	run rt exec "$ID" sh -c 'stat -c %i /sys/fs/cgroup/pids; cat /sys/fs/cgroup/pids/pids.max; cat /sys/fs/cgroup/pids/cgroup.procs | head -1;
		grep :pids: /proc/self/cgroup; mkdir /sys/fs/cgroup/pids/slit-sub; echo "mkdir rc=$?"'
	echo "$status: $output"
	[ "$status" -eq 0 ]
	# the directory mounted there is the container's pids cgroup on the host
	[ "${lines[0]}" = "$(stat -c %i "/sys/fs/cgroup/pids$cg")" ]
	[ "${lines[1]}" = "$(cat "/sys/fs/cgroup/pids$cg/pids.max")" ]
	[ "${lines[2]}" = 1 ]
	# /proc/self/cgroup names the same cgroup as the host sees (or / inside a cgroupns)
	inside=${lines[3]##*:pids:}
	[ "$inside" = "$cg" ] || [ "$inside" = / ]
	grep -q 'mkdir rc=1' <<<"$output"
	grep -qi 'read-only' <<<"$output"
	[ ! -e "/sys/fs/cgroup/pids$cg/slit-sub" ]
}

@test "tmpfs with tmpcopyup keeps the files of the rootfs directory" {
	new_id ID
	make_bundle b "$(args sh -c 'cat /data/keep; ls /data/sub; echo new > /data/new; grep " /data " /proc/self/mountinfo')" \
		'.mounts += [{destination: "/data", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup", "size=1m"]}]'
	mkdir -p "$BUNDLE/rootfs/data/sub"
	echo kept >"$BUNDLE/rootfs/data/keep"
	touch "$BUNDLE/rootfs/data/sub/inner"
	run_container "$ID" "$BUNDLE"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = kept ]
	[ "${lines[1]}" = inner ]
	grep -q ' - tmpfs ' <<<"${lines[2]}"
	# the tmpfs is a copy: the rootfs itself is unchanged
	[ ! -e "$BUNDLE/rootfs/data/new" ]
}

@test "nosuid,nodev,noexec on a tmpfs show in mountinfo" {
	run_in '.mounts += [{destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "size=8m"]},
		{destination: "/plain", type: "tmpfs", source: "tmpfs", options: ["size=8m"]}]' -- \
		sh -c 'grep " /scratch " /proc/self/mountinfo; grep " /plain " /proc/self/mountinfo;
			cp /bin/busybox /scratch/true && /scratch/true; echo "exec rc=$?";
			cp /bin/busybox /plain/true && /plain/true; echo "plain exec rc=$?"'
	[ "$status" -eq 0 ]
	opts=$(awk '{print $6}' <<<"${lines[0]}")
	echo "scratch: $opts"
	[[ ,$opts, == *,nosuid,* ]]
	[[ ,$opts, == *,nodev,* ]]
	[[ ,$opts, == *,noexec,* ]]
	plain=$(awk '{print $6}' <<<"${lines[1]}")
	[[ ,$plain, != *,noexec,* ]]
	grep -qx 'exec rc=126' <<<"$output"
	grep -qx 'plain exec rc=0' <<<"$output"
}

@test "a mount destination that is a symlink out of the rootfs stays inside the rootfs" {
	new_id ID
	outside=$BATS_TEST_TMPDIR/outside
	mkdir -p "$outside"
	echo host-file >"$outside/marker"
	make_bundle b "$(args sh -c 'echo from-container > /evil/written; ls /evil; readlink /evil; grep -E " /(outside|evil) " /proc/self/mountinfo; echo setup-done; exec sleep 1000')" \
		'.mounts += [{destination: "/evil", type: "tmpfs", source: "tmpfs", options: ["size=1m"]}]'
	# from the host, rootfs/evil resolves to $BATS_TEST_TMPDIR/outside
	ln -s ../../outside "$BUNDLE/rootfs/evil"
	[ "$(readlink -f "$BUNDLE/rootfs/evil")" = "$outside" ]
	start_sleeper "$ID" "$BUNDLE"
	wait_for_line "$BUNDLE/init.out" setup-done
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	# nothing was mounted on the host outside the bundle
	findmnt -rn -o TARGET | grep -F "$BATS_TEST_TMPDIR" || true
	[ -z "$(mounts_outside "$BATS_TEST_TMPDIR" "$BUNDLE/")" ]
	[ -z "$(findmnt -rn -o TARGET | grep -F "$outside")" ]
	[ "$(ls "$outside")" = marker ]
	[ "$(cat "$outside/marker")" = host-file ]
	# inside, the write went to the tmpfs, which lies in the rootfs
	grep -qx written "$BUNDLE/init.out"
	# (a bare `! cmd` would not fail a bats test: set -e ignores it)
	! grep -qx marker "$BUNDLE/init.out" || false
	# the symlink resolved within the rootfs: /evil -> ../../outside is /outside
	grep -qE '^[0-9]+ [0-9]+ [^ ]+ / /outside .* - tmpfs ' "$BUNDLE/init.out"
	rt kill "$ID" KILL
	wait_status "$ID" stopped
}

# ---------------------------------------------------------------- 8. process/linux extras

@test "oomScoreAdj sets /proc/self/oom_score_adj" {
	run_in '.process.oomScoreAdj = 500' -- cat /proc/self/oom_score_adj
	[ "$status" -eq 0 ]
	[ "$output" = 500 ]
	[ "$(cat /proc/self/oom_score_adj)" != 500 ]
}

@test "personality LINUX32 makes uname -m a 32-bit machine" {
	[ "$(uname -m)" = x86_64 ] || skip "only meaningful on x86_64"
	run_in '.linux.personality = {domain: "LINUX32"}' -- uname -m
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^i[3-6]86$ ]]
	run_in -- uname -m
	[ "$output" = x86_64 ]
}

@test "domainname sets the NIS domain name in the container's uts namespace" {
	host=$(cat /proc/sys/kernel/domainname)
	run_in '.domainname = "slit-domain"' -- cat /proc/sys/kernel/domainname
	[ "$status" -eq 0 ]
	[ "$output" = slit-domain ]
	[ "$(cat /proc/sys/kernel/domainname)" = "$host" ]
}

@test "rootfsPropagation private: / has no peers and host mounts do not propagate" {
	# make the bundle's mount shared, so that only the runtime can make / private
	mkdir -p "$BATS_TEST_TMPDIR/shared"
	mount --bind "$BATS_TEST_TMPDIR/shared" "$BATS_TEST_TMPDIR/shared"
	TEST_MOUNTS+=("$BATS_TEST_TMPDIR/shared")
	mount --make-shared "$BATS_TEST_TMPDIR/shared"
	new_id ID
	make_bundle shared/b "$(args sh -c 'grep -E "^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / " /proc/self/mountinfo; echo setup-done; exec sleep 1000')" \
		'.linux.rootfsPropagation = "private"' \
		'.mounts += [{destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=1m"]}]'
	mkdir -p "$BUNDLE/rootfs/mnt/sub"
	start_sleeper "$ID" "$BUNDLE"
	mount -t tmpfs slit-private "$BUNDLE/rootfs/mnt/sub"
	TEST_MOUNTS+=("$BUNDLE/rootfs/mnt/sub")
	touch "$BUNDLE/rootfs/mnt/sub/host-marker"
	run rt exec "$ID" sh -c 'ls /mnt/sub; grep -c " /scratch " /proc/self/mountinfo'
	wait_for_line "$BUNDLE/init.out" setup-done
	root=$(grep -v '^setup-done$' "$BUNDLE/init.out")
	echo "exec $status: $output; root: $root"
	[ "$status" -eq 0 ]
	[ -n "$root" ]
	! grep -qE ' (shared|master):' <<<"$root" || false
	# the host's new mount is not seen inside, the container's own mounts are
	[ "$output" = 1 ]
	# nothing the container mounted came back to the host
	[ -z "$(findmnt -rn -o TARGET | grep -F "$BUNDLE/" | grep -vF "$BUNDLE/rootfs/mnt/sub")" ]
}

# ---------------------------------------------------------------- 9. features

@test "features prints JSON with versions, hooks, namespaces, seccomp, caps, mount options" {
	run rt features
	echo "$output"
	[ "$status" -eq 0 ]
	jq -e . <<<"$output" >/dev/null
	jq -e '.ociVersionMin | test("^1\\.0\\.")' <<<"$output"
	jq -e '.ociVersionMax | test("^1\\.")' <<<"$output"
	jq -e '.hooks | sort == (["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] | sort)' <<<"$output"
	for ns in cgroup ipc mount network pid user uts time; do
		jq -e --arg ns "$ns" '.linux.namespaces | index($ns) != null' <<<"$output" || { echo "namespace $ns missing"; false; }
	done
	jq -e '.linux.seccomp.enabled == true' <<<"$output"
	for a in SCMP_ACT_ALLOW SCMP_ACT_ERRNO SCMP_ACT_KILL SCMP_ACT_TRAP SCMP_ACT_NOTIFY SCMP_ACT_LOG; do
		jq -e --arg a "$a" '.linux.seccomp.actions | index($a) != null' <<<"$output" || { echo "action $a missing"; false; }
	done
	jq -e '.linux.seccomp.archs | index("SCMP_ARCH_X86_64") != null' <<<"$output"
	for c in CAP_SYS_ADMIN CAP_CHOWN CAP_NET_ADMIN CAP_CHECKPOINT_RESTORE; do
		jq -e --arg c "$c" '.linux.capabilities | index($c) != null' <<<"$output" || { echo "capability $c missing"; false; }
	done
	for o in tmpcopyup rbind ro nosuid rprivate; do
		jq -e --arg o "$o" '.mountOptions | index($o) != null' <<<"$output" || { echo "mount option $o missing"; false; }
	done
}

# ---------------------------------------------------------------- 10. cgroupsPath

@test "cgroupsPath absolute: dirs exist while running and are all gone after delete" {
	new_id ID
	top=sandlock-it-$RUN_TOKEN-$BATS_SUITE_TEST_NUMBER
	CGROUP_DIRS+=("$top" "$top/c1")
	[ ! -e "/sys/fs/cgroup/pids/$top" ]
	make_bundle b "$(args sleep 1000)" ".linux.cgroupsPath = \"/$top/c1\""
	start_sleeper "$ID" "$BUNDLE"
	pid=$(state_of "$ID" pid)
	[ -d "/sys/fs/cgroup/pids/$top/c1" ]
	[ -d "/sys/fs/cgroup/unified/$top/c1" ]
	grep -qx "$pid" "/sys/fs/cgroup/pids/$top/c1/cgroup.procs"
	grep -qx "$pid" "/sys/fs/cgroup/unified/$top/c1/cgroup.procs"
	[ "$(host_cgroup "$pid" pids)" = "/$top/c1" ]
	rt kill "$ID" KILL
	wait_status "$ID" stopped
	rt delete "$ID"
	left=$(find /sys/fs/cgroup -maxdepth 2 -name "$top" 2>/dev/null)
	echo "left: $left"
	[ -z "$left" ]
}

@test "cgroupsPath systemd form with --systemd-cgroup on a host without systemd: slice/prefix-id.scope in cgroupfs, removed on delete" {
	new_id ID
	slice_existed=false
	[ -d /sys/fs/cgroup/pids/system.slice ] && slice_existed=true
	scope=system.slice/sandlock-$ID.scope
	$slice_existed || CGROUP_DIRS+=(system.slice)
	CGROUP_DIRS+=("$scope")
	make_bundle b "$(args sleep 1000)" ".linux.cgroupsPath = \"system.slice:sandlock:$ID\""
	run rtq --systemd-cgroup create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	echo "create: $status: $output"
	[ "$status" -eq 0 ]
	rt --systemd-cgroup start "$ID"
	wait_status "$ID" running
	pid=$(state_of "$ID" pid)
	[ -d "/sys/fs/cgroup/pids/$scope" ]
	grep -qx "$pid" "/sys/fs/cgroup/pids/$scope/cgroup.procs"
	[ "$(host_cgroup "$pid" pids)" = "/$scope" ]
	rt --systemd-cgroup delete --force "$ID"
	[ ! -e "/sys/fs/cgroup/pids/$scope" ]
	[ ! -e "/sys/fs/cgroup/unified/$scope" ]
	if $slice_existed; then
		[ -d /sys/fs/cgroup/pids/system.slice ]
	else
		# the runtime created system.slice for this container: gone with it
		[ ! -e /sys/fs/cgroup/pids/system.slice ]
	fi
}

# ---------------------------------------------------------------- 11. logging

@test "--log-format json --log: a successful create writes no error line" {
	new_id ID
	make_bundle b "$(args sleep 1000)"
	log=$BATS_TEST_TMPDIR/log.json
	run rtq --log "$log" --log-format json create --bundle "$BUNDLE" "$ID"
	echo "create: $status: $output"
	[ "$status" -eq 0 ]
	[ "$(state_of "$ID" status)" = created ]
	cat "$log" 2>/dev/null || true
	if [ -s "$log" ]; then
		# every line is a JSON object, none at level error
		jq -e -s 'all(type == "object")' "$log"
		[ "$(jq -r -s 'map(select(.level == "error")) | length' "$log")" = 0 ]
	fi
}

@test "--debug with --criu: a debug line says criu is not supported" {
	log=$BATS_TEST_TMPDIR/debug.json
	run rt --debug --log "$log" --log-format json --criu /x list
	echo "list: $status: $output"
	cat "$log" 2>/dev/null || true
	[ "$status" -eq 0 ]
	all=$(cat "$log" 2>/dev/null; echo "$output")
	line=$(grep -i criu <<<"$all" | head -1)
	[ -n "$line" ]
	grep -qiE 'not supported|unsupported' <<<"$line"
	[ "$(jq -r .level <<<"$line" 2>/dev/null)" = debug ] || grep -qi debug <<<"$line"
}

# ---------------------------------------------------------------- 12. inherited namespaces

ALL_NS=(mount network pid ipc uts cgroup user)

# proc_ns TYPE: the /proc/PID/ns entry of a namespace type.
proc_ns() {
	case $1 in
	mount) echo mnt ;;
	network) echo net ;;
	*) echo "$1" ;;
	esac
}

# inherit_bundle ABSENT [JQ_FILTER...]: bundle $BUNDLE with every namespace type of ALL_NS
# but ABSENT (the user one with mappings to 100000), running sleep; without a mount
# namespace, without the fields that need one.
inherit_bundle() {
	local absent=$1 t list=()
	shift
	for t in "${ALL_NS[@]}"; do
		[ "$t" = "$absent" ] || list+=("{\"type\": \"$t\"}")
	done
	local filters=(".linux.namespaces = [$(IFS=,; echo "${list[*]}")]" "$(args sleep 1000)")
	if [ "$absent" != user ]; then
		filters+=('.linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
			'.linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]')
		# The kernel lets a user namespace mount proc, sysfs and mqueue only over a pid,
		# network and ipc namespace it owns: not over the runtime's (runc's fails alike).
		case $absent in
		pid) filters+=('.mounts |= map(select(.type != "proc"))') ;;
		network) filters+=('.mounts |= map(select(.type != "sysfs"))') ;;
		ipc) filters+=('.mounts |= map(select(.type != "mqueue"))') ;;
		esac
	fi
	[ "$absent" = mount ] && filters+=('.mounts = [] | .linux.maskedPaths = [] | .linux.readonlyPaths = []')
	[ "$absent" = uts ] && filters+=('del(.hostname)')
	make_bundle b "${filters[@]}" "$@" || return
	if [ "$absent" != user ]; then
		chown -R 100000:100000 "$BUNDLE/rootfs"
		searchable_path "$BUNDLE"
	fi
}

# check_inherited ABSENT: the container's ABSENT namespace is the runtime's own (this
# test's shell ran it), every other type is a new one.
check_inherited() {
	local absent=$1 pid t mine theirs bad=""
	new_id ID
	inherit_bundle "$absent"
	start_sleeper "$ID" "$BUNDLE"
	pid=$(state_of "$ID" pid)
	[ "$pid" -gt 0 ] || return
	for t in "${ALL_NS[@]}"; do
		mine=$(readlink "/proc/$$/ns/$(proc_ns "$t")")
		theirs=$(readlink "/proc/$pid/ns/$(proc_ns "$t")")
		echo "$t: runtime $mine, container $theirs"
		if [ "$t" = "$absent" ]; then
			[ "$theirs" = "$mine" ] || bad+="$t not inherited; "
		else
			[ -n "$theirs" ] && [ "$theirs" != "$mine" ] || bad+="$t not new; "
		fi
	done
	[ -z "$bad" ] || { echo "$bad"; return 1; }
}

@test "inherited namespaces: no mount namespace -> the runtime's, entered with chroot; exec too; nothing mounted" {
	check_inherited mount
	pid=$(state_of "$ID" pid)
	# the container's root is the rootfs, by chroot alone
	[ "$(readlink "/proc/$pid/root")" = "$BUNDLE/rootfs" ]
	run rt exec "$ID" cat /.slit-bundle
	echo "exec: $status: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$BUNDLE" ]
	[ -z "$(findmnt -rn -o TARGET | grep -F "$BUNDLE")" ]
	rt delete --force "$ID"
	assert_no_leftovers "$ID" "$BUNDLE"
}

@test "inherited namespaces: no network namespace -> the runtime's" {
	check_inherited network
}

@test "inherited namespaces: no pid namespace -> the runtime's" {
	check_inherited pid
}

@test "inherited namespaces: no ipc namespace -> the runtime's" {
	check_inherited ipc
}

@test "inherited namespaces: no uts namespace -> the runtime's" {
	check_inherited uts
}

@test "inherited namespaces: no cgroup namespace -> the runtime's" {
	check_inherited cgroup
}

@test "inherited namespaces: no user namespace -> the runtime's" {
	check_inherited user
}

@test "no mount namespace: each field that needs a mount is refused by name, nothing left behind" {
	local -A cases=(
		['.mounts = [{destination: "/tmp", type: "tmpfs", source: "tmpfs"}]']='^\.mounts: requires a mount namespace'
		['.root.readonly = true']='^\.root\.readonly: requires a mount namespace'
		['.linux.rootfsPropagation = "private"']='^\.linux\.rootfsPropagation: requires a mount namespace'
		['.linux.maskedPaths = ["/proc/kcore"]']='^\.linux\.maskedPaths: requires a mount namespace'
		['.linux.devices = [{path: "/dev/slit", type: "c", major: 1, minor: 3}]']='^\.linux\.devices: requires a mount namespace'
		['.annotations["io.sandlock.network.allow"] = "127.0.0.1:9"']='^io\.sandlock\.network\.\* annotations: an egress policy requires a mount namespace'
	)
	local f
	for f in "${!cases[@]}"; do
		new_id ID
		inherit_bundle mount "$f"
		run rtq create --bundle "$BUNDLE" "$ID"
		assert_fails_cleanly "$ID" "$BUNDLE" "${cases[$f]}"
		[ "${#lines[@]}" -eq 1 ]
		rm -rf "$BUNDLE"
	done
}

# ---------------------------------------------------------------- 13. rootfsPropagation

# root_mountinfo PROPAGATION [WHERE]: runs a container with that rootfsPropagation and
# sets FIELDS to the optional fields of its "/" line in /proc/self/mountinfo (shared:N,
# master:N, unbindable), or "none". The bundle lies in a shared mount (so that each value
# shows), or with WHERE "on-root" directly in the test's directory, on the mount "/" of
# the container's mount namespace. Not for $(...): teardown must see mount and container.
root_mountinfo() {
	local name=b
	if [ "${2:-}" != on-root ]; then
		mkdir -p "$BATS_TEST_TMPDIR/shared"
		mount --bind "$BATS_TEST_TMPDIR/shared" "$BATS_TEST_TMPDIR/shared" || return
		TEST_MOUNTS+=("$BATS_TEST_TMPDIR/shared")
		mount --make-shared "$BATS_TEST_TMPDIR/shared" || return
		name=shared/b
	fi
	new_id ID
	make_bundle "$name" ".linux.rootfsPropagation = \"$1\"" \
		"$(args sh -c 'grep -E "^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / " /proc/self/mountinfo')"
	run_container "$ID" "$BUNDLE"
	echo "run: $status: $output"
	[ "$status" -eq 0 ] && [ "${#lines[@]}" -eq 1 ] || return 1
	FIELDS=$(awk '{ f = ""; for (i = 7; i <= NF && $i != "-"; i++) f = f " " $i; print (f == "" ? "none" : substr(f, 2)) }' <<<"$output")
	echo "optional fields of /: $FIELDS"
}

@test "rootfsPropagation shared: / has peers (shared:N)" {
	root_mountinfo shared
	[[ " $FIELDS " == *" shared:"* ]]
	[[ " $FIELDS " != *" unbindable "* ]]
}

@test "rootfsPropagation slave: / has a master and no peers" {
	root_mountinfo slave
	[[ " $FIELDS " == *" master:"* ]]
	[[ " $FIELDS " != *" shared:"* ]]
}

@test "rootfsPropagation private: / has neither peers nor a master" {
	root_mountinfo private
	[ "$FIELDS" = none ]
}

@test "rootfsPropagation unbindable: / is unbindable (bundle in a shared mount)" {
	root_mountinfo unbindable
	[ "$FIELDS" = unbindable ]
}

@test "rootfsPropagation unbindable with the rootfs on the mount / itself (it failed: bind rootfs: Invalid argument)" {
	[ "$(findmnt -n -o TARGET -T "$BATS_TEST_TMPDIR")" = / ] ||
		skip "the test directory is not on the mount / (the case is a rootfs on the root mount)"
	root_mountinfo unbindable on-root
	[ "$FIELDS" = unbindable ]
}

# ---------------------------------------------------------------- 14. refused fields

# refused FILTER PATTERN: create of a bundle edited by FILTER fails with one line matching
# PATTERN, exit 1, and leaves nothing behind.
refused() {
	new_id ID
	make_bundle "b-$ID" "$(args true)" "$1"
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" "$2" || return
	[ "${#lines[@]}" -eq 1 ] || { echo "expected one line"; return 1; }
}

@test "refused: process.apparmorProfile on a host without AppArmor" {
	[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ] || skip "this host runs AppArmor"
	refused '.process.apparmorProfile = "slit-profile"' \
		'\.process\.apparmorProfile: AppArmor is not enabled on this host'
}

@test "refused: exec --apparmor on a host without AppArmor, the container keeps running" {
	[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ] || skip "this host runs AppArmor"
	new_id ID
	make_bundle b "$(args sleep 1000)"
	start_sleeper "$ID" "$BUNDLE"
	run rt exec --apparmor slit-profile "$ID" true
	echo "$status: $output"
	[ "$status" -eq 1 ]
	grep -q 'apparmorProfile: AppArmor is not enabled on this host' <<<"$output"
	[ "$(state_of "$ID" status)" = running ]
}

@test "refused: process.selinuxLabel, linux.mountLabel (SELinux)" {
	refused '.process.selinuxLabel = "system_u:system_r:container_t:s0"' '\.process\.selinuxLabel: SELinux'
	refused '.linux.mountLabel = "system_u:object_r:container_file_t:s0"' '\.linux\.mountLabel: SELinux'
}

@test "refused: linux.resources.network classID and priorities without net_cls / net_prio" {
	[ ! -d /sys/fs/cgroup/net_cls ] || skip "this host has a net_cls hierarchy"
	[ ! -d /sys/fs/cgroup/net_prio ] || skip "this host has a net_prio hierarchy"
	refused '.linux.resources.network = {classID: 1048577}' 'linux\.resources\.network\.classID: .*(net_cls|cgroup v2)'
	refused '.linux.resources.network = {priorities: [{name: "lo", priority: 5}]}' \
		'linux\.resources\.network\.priorities: .*(net_prio|cgroup v2)'
}

@test "refused: linux.intelRdt, personality flags, process.ioPriority/scheduler/execCPUAffinity, memoryPolicy, netDevices" {
	refused '.linux.intelRdt = {closID: "slit", l3CacheSchema: "L3:0=ff"}' '\.linux\.intelRdt: Intel RDT is not supported'
	refused '.linux.personality = {domain: "LINUX", flags: ["SHORT_INODE"]}' '\.linux\.personality\.flags: '
	refused '.linux.personality = {domain: "LINUX64"}' '\.linux\.personality\.domain: unknown domain'
	refused '.process.ioPriority = {class: "IOPRIO_CLASS_IDLE", priority: 7}' '\.process\.ioPriority: not supported'
	refused '.process.scheduler = {policy: "SCHED_IDLE"}' '\.process\.scheduler: not supported'
	refused '.process.execCPUAffinity = {initial: "0"}' '\.process\.execCPUAffinity: not supported'
	refused '.linux.memoryPolicy = {mode: "MPOL_BIND", nodes: "0"}' '\.linux\.memoryPolicy: not supported'
	refused '.linux.netDevices = {"slit0": {}}' '\.linux\.netDevices: not supported'
	refused '.linux.resources.unified = {"slit.bogus": "1"}' 'unified\["slit\.bogus"\]: unknown cgroup v2 resource'
}

@test "empty strings and empty objects are not requests: apparmorProfile, selinuxLabel, mountLabel, intelRdt" {
	run_in '.process.apparmorProfile = "" | .process.selinuxLabel = "" | .linux.mountLabel = ""' \
		'.linux.intelRdt = null | .linux.netDevices = {} | .linux.personality = {domain: "LINUX", flags: []}' -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
}

# ---------------------------------------------------------------- 15. --version

@test "--version names the commit it was built from" {
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-runc's own version"
	git -C "$REPO_DIR" rev-parse --git-dir >/dev/null 2>&1 || skip "not built from a git checkout"
	run rt --version
	echo "$output"
	[ "$status" -eq 0 ]
	want=$(git -C "$REPO_DIR" describe --always --dirty)
	grep -qx "commit: $want" <<<"$output"
}

# version_tree DIR: DIR with this Makefile and the folders its source lists search.
version_tree() {
	mkdir -p "$1/spec" "$1/runtime" "$1/hooks" && cp "$REPO_DIR/Makefile" "$1/"
}

@test "Makefile: the version header follows the commit, is rewritten only on change, unknown for a tarball" {
	[ -f "$REPO_DIR/Makefile" ] || skip "needs the source tree"
	src=$BATS_TEST_TMPDIR/src
	version_tree "$src"
	gitc() { git -C "$src" -c user.email=slit@test -c user.name=slit "$@"; }
	gitc init -q
	gitc add Makefile
	gitc commit -q -m one
	h=$src/build/gen/sandlock_version.h
	make -s -C "$src" BUILD=build build/gen/sandlock_version.h
	cat "$h"
	grep -qx "#define SANDLOCK_COMMIT \"$(gitc describe --always --dirty)\"" "$h"
	first=$(cat "$h")
	touch -d '2001-01-01' "$h"
	make -s -C "$src" BUILD=build build/gen/sandlock_version.h
	# unchanged tree: the file is not rewritten (cli.cpp is not recompiled)
	[ "$(stat -c %Y "$h")" = "$(date -d 2001-01-01 +%s)" ]
	gitc commit -q --allow-empty -m two
	make -s -C "$src" BUILD=build build/gen/sandlock_version.h
	cat "$h"
	[ "$(cat "$h")" != "$first" ]
	grep -qx "#define SANDLOCK_COMMIT \"$(gitc describe --always --dirty)\"" "$h"
	# a tarball: no git checkout at its top (even inside another repository)
	version_tree "$src/unpacked"
	make -s -C "$src/unpacked" BUILD=build build/gen/sandlock_version.h
	grep -qx '#define SANDLOCK_COMMIT "unknown"' "$src/unpacked/build/gen/sandlock_version.h"
}
