#!/usr/bin/env bats
# podman (Debian 12: podman 4.3 + conmon 2.1 + netavark) driving the runtime under test,
# registered the way users do it: config/containers.conf (runtime_supports_json,
# [engine.runtimes], default_ulimits). podman runs with private storage and state under
# the file's tmp dir (podman.bash); the image is `podman import` of the busybox test
# rootfs. Skipped as a whole, with the reason, only when podman is not installed.

bats_require_minimum_version 1.5.0

load helpers
load egress
load podman

setup_file() {
	pm_setup_file
	egress_detect_enforcement
}

teardown_file() {
	pm_teardown_file
}

setup() {
	pm_setup
	EG_LISTENERS=()
}

teardown() {
	pm_teardown
	egress_teardown
}

@test "podman run --rm: exit codes 0, 1, 42, 126 (not executable), 127 (not found)" {
	run pmq run --rm --network none "$PM_IMAGE" true
	echo "true: $status $output"
	[ "$status" -eq 0 ]
	run pmq run --rm --network none "$PM_IMAGE" false
	echo "false: $status $output"
	[ "$status" -eq 1 ]
	run pmq run --rm --network none "$PM_IMAGE" sh -c 'echo out-line; exit 42'
	echo "exit 42: $status $output"
	[ "$status" -eq 42 ]
	has_line out-line
	run pmq run --rm --network none "$PM_IMAGE" /etc/passwd
	echo "/etc/passwd: $status $output"
	[ "$status" -eq 126 ]
	grep -qi 'permission denied' <<<"$output"
	run -127 pmq run --rm --network none "$PM_IMAGE" /no/such/binary
	echo "/no/such/binary: $status $output"
	[ "$status" -eq 127 ]
	grep -qiE 'no such file|not found' <<<"$output"
	run pm ps -aq
	[ -z "$output" ]
}

@test "podman run -d, logs, exec (exit code), exec -t through a pty, stop with SIGTERM handled, rm" {
	local name id
	pm_name name
	run pmq run -d --name "$name" --network none "$PM_IMAGE" \
		sh -c 'trap "echo got-term; exit 3" TERM; echo started; while :; do sleep 0.1; done'
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(pm_id "$name")
	pm_wait_log "$name" started
	# podman passes no --root: the state is under the runtime's default root
	[ "$(basename "$RUNTIME")" != sandlock-runc ] || [ -d "/run/sandlock-runc/$id" ]
	run pm exec "$name" sh -c 'echo exec-ok; id -u; exit 7'
	echo "$output"
	[ "$status" -eq 7 ]
	has_line exec-ok
	has_line 0
	run pm_pty exec -t "$name" sh -c 'tty; echo exec-tty-ok'
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '/dev/pts/[0-9]' <<<"$output"
	grep -q exec-tty-ok <<<"$output"
	run pm stop -t 10 "$name"
	[ "$status" -eq 0 ]
	[ "$(pm_status "$name")" = "exited 3" ]
	pm_wait_log "$name" got-term
	run pm rm "$name"
	[ "$status" -eq 0 ]
	run pm ps -aq
	[ -z "$output" ]
	pm_assert_gone "$id"
}

@test "podman kill -s, stop of a process that ignores SIGTERM (SIGKILL after the timeout), rm -f of a running container" {
	local name id name2 id2
	pm_name name
	run pmq run -d --name "$name" --network none "$PM_IMAGE" \
		sh -c 'trap "" TERM; trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
	[ "$status" -eq 0 ]
	id=$(pm_id "$name")
	pm_wait_log "$name" ready
	run pm kill -s USR1 "$name"
	[ "$status" -eq 0 ]
	pm_wait_log "$name" got-usr1
	[ "$(pm_status "$name")" = "running 0" ]
	run pm stop -t 1 "$name"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(pm_status "$name")" = "exited 137" ]

	pm_name name2
	run pmq run -d --name "$name2" --network none "$PM_IMAGE" sleep 1000
	[ "$status" -eq 0 ]
	id2=$(pm_id "$name2")
	pm_wait_status "$name2" running
	run pm rm -f -t 0 "$name2"
	[ "$status" -eq 0 ]
	run pm rm "$name"
	[ "$status" -eq 0 ]
	pm_assert_gone "$id"
	pm_assert_gone "$id2"
}

@test "podman pause and unpause freeze and thaw the container" {
	local name id
	pm_name name
	run pmq run -d --name "$name" --network none "$PM_IMAGE" \
		sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done'
	[ "$status" -eq 0 ]
	id=$(pm_id "$name")
	pm_wait_status "$name" running
	run pm pause "$name"
	[ "$status" -eq 0 ]
	[ "$(pm inspect -f '{{.State.Status}}' "$name")" = paused ]
	local state
	state=$(cat /sys/fs/cgroup/freezer/libpod_parent/libpod-"$id"/freezer.state 2>/dev/null ||
		cat /sys/fs/cgroup/unified/libpod_parent/libpod-"$id"/cgroup.freeze)
	echo "freezer: $state"
	[[ "$state" == FROZEN || "$state" == 1 ]]
	run pm unpause "$name"
	[ "$status" -eq 0 ]
	[ "$(pm inspect -f '{{.State.Status}}' "$name")" = running ]
	# it makes progress again
	local a b
	# (the counter is replaced by rename, so a read never sees it half written)
	a=$(pm exec "$name" cat /tmp/count)
	grew() { b=$(pm exec "$name" cat /tmp/count); [ "$b" -gt "$a" ]; }
	eventually 15 grew
	echo "count $a then $b"
}

@test "podman run -it through a pty: the process has a terminal and its exit code" {
	# The pause lets podman attach first: podman 4.3 drops output written before it has
	# attached to the terminal (1 run in 10 here with a 0.3 s pause, with runc as well).
	run pm_pty run -it --rm --network none "$PM_IMAGE" \
		sh -c 'sleep 2; tty; [ -t 0 ] && echo stdin-is-tty; exit 5'
	echo "$output"
	[ "$status" -eq 5 ]
	grep -q '/dev/pts/[0-9]' <<<"$output"
	grep -q stdin-is-tty <<<"$output"
}

@test "podman --network none: only a loopback interface" {
	run pmq run --rm --network none "$PM_IMAGE" sh -c 'ls /sys/class/net'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = lo ]
}

@test "podman default bridge network: the container gets an address and receives from the host" {
	local name ip
	pm_name name
	run pmq run -d --name "$name" "$PM_IMAGE" sh -c 'nc -l -p 47201 >/tmp/got; cat /tmp/got; sleep 1000'
	echo "$output"
	[ "$status" -eq 0 ]
	pm_wait_status "$name" running
	ip=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$name")
	echo "container address: $ip"
	[[ "$ip" == 10.88.* ]]
	run pm exec "$name" ip -4 route
	echo "$output"
	grep -q '^default via 10\.88\.' <<<"$output"
	local deadline=$((SECONDS + 10))
	until timeout 2 bash -c "echo from-host-$RUN_TOKEN >/dev/tcp/$ip/47201" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || { echo "cannot connect to $ip:47201" >&2; return 1; }
		sleep 0.1
	done
	pm_wait_log "$name" "from-host-$RUN_TOKEN"
}

@test "podman --read-only: the root is read-only, /tmp is writable" {
	run pmq run --rm --network none --read-only "$PM_IMAGE" \
		sh -c 'touch /x 2>&1 && echo root-writable; touch /tmp/y && echo tmp-ok'
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qi 'read-only file system' <<<"$output"
	refute_line root-writable
	has_line tmp-ok
}

@test "podman --cap-drop / --cap-add: the process's capability sets" {
	local want
	want=$(cap_mask CAP_NET_BIND_SERVICE CAP_KILL)
	run pmq run --rm --network none --cap-drop all --cap-add NET_BIND_SERVICE,KILL "$PM_IMAGE" \
		grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status
	echo "$output (want $want)"
	[ "$status" -eq 0 ]
	has_line "CapEff:	$want"
	has_line "CapBnd:	$want"
	run pmq run --rm --network none --cap-drop CHOWN "$PM_IMAGE" \
		sh -c 'grep ^CapEff /proc/self/status; chown 1000 /etc/hostname && echo chown-worked; exit 0'
	echo "$output"
	[ "$status" -eq 0 ]
	local eff
	eff=$(sed -n 's/^CapEff:\t//p' <<<"$output")
	[ $((0x$eff & 1)) -eq 0 ]
	[ $((0x$eff & (1 << 5))) -ne 0 ] # CAP_KILL is in podman's default set
	refute_line chown-worked
}

@test "podman --memory and --pids-limit: the container's cgroup limits, and the pids limit holds" {
	local name id mem pids
	pm_name name
	run pmq run -d --name "$name" --network none --memory 64m --pids-limit 20 "$PM_IMAGE" sleep 1000
	[ "$status" -eq 0 ]
	id=$(pm_id "$name")
	mem=$(cat /sys/fs/cgroup/memory/libpod_parent/libpod-"$id"/memory.limit_in_bytes 2>/dev/null ||
		cat /sys/fs/cgroup/unified/libpod_parent/libpod-"$id"/memory.max)
	pids=$(cat /sys/fs/cgroup/pids/libpod_parent/libpod-"$id"/pids.max 2>/dev/null ||
		cat /sys/fs/cgroup/unified/libpod_parent/libpod-"$id"/pids.max)
	echo "memory $mem, pids $pids"
	[ "$mem" -eq $((64 * 1024 * 1024)) ]
	[ "$pids" -eq 20 ]
	# more processes than the limit: the container's shell cannot fork past it
	run pm exec "$name" sh -c 'for i in $(seq 1 40); do sleep 30 & done; echo all-started'
	echo "$output"
	[ "$status" -ne 0 ]
	grep -qiE "can't fork|resource temporarily unavailable" <<<"$output"
	refute_line all-started
	local current
	current=$(cat /sys/fs/cgroup/pids/libpod_parent/libpod-"$id"/pids.current 2>/dev/null ||
		cat /sys/fs/cgroup/unified/libpod_parent/libpod-"$id"/pids.current)
	echo "pids.current $current"
	[ "$current" -le 20 ]
}

@test "podman --user: uid and gid, numeric and by name" {
	run pmq run --rm --network none --user 1000:1000 "$PM_IMAGE" sh -c 'id -u; id -g'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '1000\n1000')" ]
	run pmq run --rm --network none --user nobody "$PM_IMAGE" sh -c 'id -un; id -u'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'nobody\n65534')" ]
}

@test "podman --runtime sandlock-runc by name (containers.conf [engine.runtimes])" {
	local name id
	PM_RUNTIME=sandlock-runc
	pm_name name
	run pmq run -d --name "$name" --network none "$PM_IMAGE" sleep 1000
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(pm_id "$name")
	[ "$(pm inspect -f '{{.OCIRuntime}}' "$name")" = sandlock-runc ]
	# the binary from containers.conf runs it: its state is in the runtime's default root
	run timeout 10 "$RUNTIME" state "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = running ]
	run pm rm -f -t 0 "$name"
	[ "$status" -eq 0 ]
	pm_assert_gone "$id"
}

@test "podman: a runtime error reaches the user as one readable line" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	local name
	pm_name name
	run pmq run --rm --name "$name" --network none \
		--annotation io.sandlock.network.allow=tcp://10.213.0.1 "$PM_IMAGE" true
	echo "status $status, output: $output"
	[ "$status" -ne 0 ]
	[ "$status" -ne 1 ] # podman's own failure codes are 125-127, never the workload's
	# the runtime's message, naming the bad rule, on podman's Error: line
	grep -E '^Error: .*tcp://10\.213\.0\.1' <<<"$output"
	# not a raw JSON log or a Go struct dump
	! grep -qE '\{"(level|msg)"' <<<"$output" || false
	run pm ps -aq
	[ -z "$output" ]
}

@test "podman --privileged with an egress annotation fails with the runtime's one line, nothing left" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	local name
	pm_name name
	run pmq run --rm --name "$name" --network none --privileged \
		--annotation io.sandlock.network.allow=10.213.0.1:9 "$PM_IMAGE" true
	echo "status $status, output: $output"
	[ "$status" -ne 0 ]
	grep -E '^Error: .*\.process\.capabilities\.[a-z]+: CAP_[A-Z_]+ cannot be granted under io\.sandlock\.network\.allow' <<<"$output"
	run pm ps -aq
	[ -z "$output" ]
}

@test "podman --annotation io.sandlock.network.allow: the allowed destination receives, the refused one does not" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	local probe
	probe=$(egress_probe_bin)
	egress_net_up
	egress_listen tcp "$EG_P"
	run pmq run --rm --network "ns:/run/netns/$EG_NS" -v "$probe:/probe:ro" \
		--annotation "io.sandlock.network.allow=$EG_A:$EG_P" "$PM_IMAGE" sh -c "
			/probe --label allowed connect tcp $EG_A $EG_P pm-allowed
			/probe --label refused connect tcp $EG_D $EG_P pm-refused
			exit 0"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ok allowed
	assert_refused refused
	show_listeners
	expect_count 1 received tcp "$EG_A" "$EG_P" pm-allowed
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
	expect_count 0 received_anywhere pm-refused
}

@test "podman: nothing of the suite's containers is left (runtime state, conmon, cgroups)" {
	run pm ps -aq
	[ -z "$output" ]
	local id left=""
	for id in $(ls /run/sandlock-runc 2>/dev/null); do
		# a container of this suite's podman names the private storage in its bundle
		grep -qF "$PM_DIR" "/run/sandlock-runc/$id/state.json" 2>/dev/null && left+="$id "
	done
	[ -z "$left" ] || { echo "runtime state left: $left" >&2; return 1; }
	# (conmon exits a moment after its container is removed)
	no_conmon() { ! pgrep -f "conmon.*$PM_DIR" >/dev/null; }
	eventually 15 no_conmon
}
