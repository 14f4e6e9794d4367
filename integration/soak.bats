#!/usr/bin/env bats
# Soak (issue 17): the lifecycle of confined containers over and over, as a user's loop
# would run it, and nothing may be left behind: no state dir, cgroup, mount, egress BPF
# program, shim or other process; and a long-running container's shim does not grow
# with every exec. Every runtime command must succeed and print nothing on stderr (the
# leak of issue 17 was a warning and exit 0).
#
# Counts: SOAK_RUNS (500) runs, SOAK_CYCLES (200) create/start/kill/delete, SOAK_EXECS
# (100) execs. A failing iteration stops its loop and names itself.

load helpers
load egress

SOAK_RUNS=${SOAK_RUNS:-500}
SOAK_CYCLES=${SOAK_CYCLES:-200}
SOAK_EXECS=${SOAK_EXECS:-100}

setup_file() {
	egress_detect_enforcement
}

setup() {
	common_setup
	EG_LISTENERS=()
}

teardown() {
	common_teardown
	egress_teardown
}

# egress_programs: how many cgroup socket/skb BPF programs the kernel holds (the egress
# layer attaches six per confined container; a removed cgroup releases them).
egress_programs() {
	bpftool -j prog show | jq '[.[] | select(.type == "cgroup_sock_addr" or .type == "cgroup_sock" or .type == "cgroup_skb")] | length'
}

# attached_egress_programs ID: how many programs are attached to the cgroup2 directory of
# the container ID.
attached_egress_programs() {
	local dir
	dir=$(find /sys/fs/cgroup -maxdepth 4 -type d -name "$1" 2>/dev/null |
		while read -r d; do [ -e "$d/cgroup.controllers" ] && echo "$d"; done | head -n 1)
	[ -n "$dir" ] || { echo 0; return; }
	bpftool -j cgroup show "$dir" | jq length
}

# policy_entries: how many containers' maps the pinned egress tables hold (every build's
# set). Compared before and after: a process killed while it owned maps (a test run
# killed by hand) leaves its entries there until reboot (nothing collects them yet).
policy_entries() {
	local d n=0
	for d in /sys/fs/bpf/sandlock-runc/*/; do
		[ -e "$d/policy_counters" ] || continue
		n=$((n + $(bpftool -j map dump pinned "$d/policy_counters" | jq length)))
	done
	echo "$n"
}

# programs_back_to N: the kernel holds at most N such programs again.
programs_back_to() {
	[ "$(egress_programs)" -le "$1" ]
}

# nothing_left ID_PREFIX: no state dir, cgroup, mount or process of the containers whose
# ids start with ID_PREFIX.
nothing_left() {
	local prefix=$1 states cgroups mounts procs
	states=$(find "$TEST_ROOT" -mindepth 1 -maxdepth 1 -name "$prefix*")
	cgroups=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "*$prefix*" 2>/dev/null)
	mounts=$(findmnt -rn -o TARGET | grep -F -- "$prefix" || true)
	procs=$(pids_with_cmdline "$TEST_ROOT/$prefix")
	[ -z "$states$cgroups$mounts$procs" ] || {
		echo "left behind: states=[$states] cgroups=[$cgroups] mounts=[$mounts] processes=[$procs]" >&2
		return 1
	}
}

# quiet_rt ARGS...: the runtime; fails, showing its output, if it fails or says anything
# on stderr.
quiet_rt() {
	local err=$BATS_TEST_TMPDIR/quiet.err rc=0
	rt "$@" >/dev/null 2>"$err" </dev/null || rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$err" ]; then
		echo "$RUNTIME $*: exit $rc, stderr: $(cat "$err")" >&2
		return 1
	fi
}

# wait_stopped ID: `state` says stopped.
is_stopped() {
	[ "$(rt state "$1" </dev/null | jq -r .status)" = stopped ]
}

@test "soak: $SOAK_RUNS runs of a confined container leave nothing behind" {
	require_enforcement
	command -v bpftool >/dev/null || skip "bpftool is not installed (make deps)"
	egress_setup_net
	local id i before during entries_before
	new_id id
	egress_bundle "b-$id" "true" "$(allow "$EG_A:$EG_P")"
	before=$(egress_programs)
	entries_before=$(policy_entries)
	# The policy really is in force for these runs: a created container has the six
	# programs attached to its cgroup2 directory (they are loaded once per machine, so
	# the kernel's count need not grow).
	quiet_rt create --bundle "$BUNDLE" "$id"
	during=$(attached_egress_programs "$id")
	[ "$during" -ge 6 ] || { echo "$during egress programs attached to the container's cgroup"; false; }
	quiet_rt delete --force "$id"
	# One id for every run: a container left behind makes the next run fail.
	for ((i = 1; i <= SOAK_RUNS; i++)); do
		quiet_rt run --bundle "$BUNDLE" "$id" || { echo "run $i of $SOAK_RUNS failed"; false; }
	done
	[ -z "$(rt list -q </dev/null)" ]
	nothing_left "$id"
	eventually 30 programs_back_to "$before"
	[ "$(policy_entries)" -le "$entries_before" ] ||
		{ echo "$(policy_entries) containers' maps in the egress tables, $entries_before before"; false; }
}

@test "soak: $SOAK_CYCLES create/start/kill/delete cycles of a confined container leave nothing behind" {
	require_enforcement
	command -v bpftool >/dev/null || skip "bpftool is not installed (make deps)"
	egress_setup_net
	local id i before entries_before
	new_id id
	egress_bundle "b-$id" "exec sleep 600" "$(allow "$EG_A:$EG_P")"
	before=$(egress_programs)
	entries_before=$(policy_entries)
	for ((i = 1; i <= SOAK_CYCLES; i++)); do
		{
			quiet_rt create --bundle "$BUNDLE" "$id" &&
				quiet_rt start "$id" &&
				quiet_rt kill "$id" KILL &&
				eventually 10 is_stopped "$id" &&
				quiet_rt delete "$id"
		} || { echo "cycle $i of $SOAK_CYCLES failed"; false; }
	done
	[ -z "$(rt list -q </dev/null)" ]
	nothing_left "$id"
	eventually 30 programs_back_to "$before"
	[ "$(policy_entries)" -le "$entries_before" ] ||
		{ echo "$(policy_entries) containers' maps in the egress tables, $entries_before before"; false; }
}

@test "soak: $SOAK_EXECS execs into one confined container: the shim's fds and threads do not grow, the policy holds" {
	require_enforcement
	egress_setup_net
	local id i shim fds_before threads_before
	new_id id
	egress_bundle "b-$id" "exec sleep 600" "$(allow "$EG_A:$EG_P")"
	quiet_rt run -d --bundle "$BUNDLE" "$id"
	shim=$(shim_pids_of "$id")
	[ "$(wc -w <<<"$shim")" -eq 1 ] || { echo "expected one shim, got: $shim"; false; }
	# The first exec starts what every later one reuses (e.g. a worker thread).
	quiet_rt exec "$id" true
	fds_before=$(ls "/proc/$shim/fd" | wc -l)
	threads_before=$(ls "/proc/$shim/task" | wc -l)
	for ((i = 1; i <= SOAK_EXECS; i++)); do
		quiet_rt exec "$id" true || { echo "exec $i of $SOAK_EXECS failed"; false; }
	done
	# The shim closes an exec's listener once that process is gone, in its own time.
	fds_same() { [ "$(ls "/proc/$shim/fd" | wc -l)" -le "$fds_before" ]; }
	threads_same() { [ "$(ls "/proc/$shim/task" | wc -l)" -le "$threads_before" ]; }
	eventually 10 fds_same || { echo "shim fds: $(ls "/proc/$shim/fd" | wc -l), before: $fds_before"; false; }
	eventually 10 threads_same || { echo "shim threads: $(ls "/proc/$shim/task" | wc -l), before: $threads_before"; false; }
	# Still supervised after all that: an exec'd process reaches the allowed listener and
	# not the denied one, judged at the listeners.
	rt exec "$id" /probe --label ok connect tcp "$EG_A" "$EG_P" soak-allowed </dev/null
	run rt exec "$id" /probe --label no connect tcp "$EG_D" "$EG_P" soak-denied </dev/null
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" soak-allowed
	expect_count 0 received_anywhere soak-denied
	quiet_rt delete --force "$id"
	nothing_left "$id"
	[ -z "$(shim_pids_of "$id")" ]
}
