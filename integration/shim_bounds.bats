#!/usr/bin/env bats
# The egress shim is bounded on the host whatever the container does (issue 11): in
# supervisor mode it copies the caller's data, performs the sends and connects itself
# and writes the audit log, outside the container's cgroup. Each attack runs in a real
# container limited to 64 MiB and 64 pids, prints its figure, asserts the target, and
# shows that the container's allowed traffic still works during and after it (judged at
# the host-side listeners of egress.bash). The shim's own cgroup (runtime/container/
# shim_cgroup.hpp) is checked too: its limits, that it goes with the container, that a
# failed create leaves nothing of it.
#
# Supervisor mode is forced by the runtime's test-only switch (no kernel programs), as
# integration/egress_supervisor.bats does. The workloads: helpers/shim_attack.c (static,
# runs in the busybox rootfs) and helpers/egress_probe.c.

load helpers
load egress

# the suite's mode, whatever this file is called (egress.bash reads it from the name)
EG_MODE=supervisor
EG_DGRAM_REFUSED=ECONNREFUSED

# The container's limits in every attack.
CT_MEMORY=$((64 << 20))
CT_PIDS=64
# The targets.
MAX_SHIM_RSS_KB=$((64 << 10))
MAX_SHIM_THREADS=64
MAX_AUDIT_BYTES=$((32 << 20))

setup_file() {
	egress_mode_setup
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

shim_attack_bin() { static_helper_bin shim_attack; }

# attack_bundle NAME SCRIPT [FILTERS...]: egress_bundle with /attack and the container's
# limits (64 MiB, 64 pids).
attack_bundle() {
	local name=$1 script=$2 attack
	shift 2
	attack=$(shim_attack_bin) || return 1
	egress_bundle "$name" "$script" \
		".linux.resources.memory = {\"limit\": $CT_MEMORY} | .linux.resources.pids = {\"limit\": $CT_PIDS}" "$@" ||
		return 1
	cp "$attack" "$BUNDLE/rootfs/attack"
}

# shim_pid ID: the shim's pid from the state record.
shim_pid() {
	jq -r '.shim_process.pid' "$TEST_ROOT/$1/state.json"
}

# shim_cgroup_dirs ID: the shim's cgroup directories from the state record.
shim_cgroup_dirs() {
	jq -r '.shim_cgroup.targets[] | .mount + .cgroup' "$TEST_ROOT/$1/state.json"
}

# shim_cgroup_file ID NAME...: the first of the files NAME (v1 or v2 names) in the
# shim's cgroup directories that exists ("" when none does).
shim_cgroup_file() {
	local id=$1 d f
	shift
	for f in "$@"; do
		while read -r d; do
			[ -e "$d/$f" ] && { echo "$d/$f"; return 0; }
		done < <(shim_cgroup_dirs "$id")
	done
	echo ""
}

# status_kb PID FIELD: a /proc/PID/status field in kB (VmRSS, VmHWM) or a count (Threads).
status_field() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# shim_alive PID: the process runs (it is not gone, nor a zombie its parent has not reaped).
shim_alive() {
	local state
	state=$(status_field "$1" State 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# watch_shim PID DONE_FILE SECONDS: samples the shim's threads and RSS every 20 ms until
# DONE_FILE exists; sets MAX_THREADS and MAX_RSS_KB. Fails if the shim dies meanwhile or
# DONE_FILE does not come in time.
watch_shim() {
	local pid=$1 done_file=$2 deadline=$((SECONDS + $3)) t r
	MAX_THREADS=0 MAX_RSS_KB=0
	until [ -e "$done_file" ]; do
		shim_alive "$pid" || { echo "the shim ($pid) died during the attack" >&2; return 1; }
		t=$(status_field "$pid" Threads) r=$(status_field "$pid" VmRSS)
		[ "${t:-0}" -gt "$MAX_THREADS" ] && MAX_THREADS=$t
		[ "${r:-0}" -gt "$MAX_RSS_KB" ] && MAX_RSS_KB=$r
		[ $SECONDS -lt $deadline ] || { echo "timed out waiting for $done_file" >&2; return 1; }
		sleep 0.02
	done
}

mib() {
	awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'
}

# show_files DIR NAMES...: each file's content, for the test's output.
show_files() {
	local dir=$1 f
	shift
	for f in "$@"; do
		echo "--- $f"
		cat "$dir/$f" 2>/dev/null
	done
}

# ---------------------------------------------------------------- the shim's cgroup

@test "shim cgroup: a sibling of the container's with 64 MiB and 64 tasks, out of the container's sight, removed at delete" {
	require_enforcement
	new_id ID
	egress_bundle b "
		ls -R /sys/fs/cgroup 2>/dev/null | grep -c shim
		exec sleep 1000
	" "$(allow "10.213.0.1:9")"
	start_container "$ID" "$BUNDLE"
	local pid dirs d
	pid=$(shim_pid "$ID")
	dirs=$(shim_cgroup_dirs "$ID")
	echo "shim $pid in: $dirs"
	[ -n "$dirs" ]
	while read -r d; do
		[[ "$d" == *"/$ID:shim" ]]
		# the shim is in it, and nothing else
		[ "$(cat "$d/cgroup.procs")" = "$pid" ]
	done <<<"$dirs"
	# the limits
	[ "$(cat "$(shim_cgroup_file "$ID" memory.limit_in_bytes memory.max)")" = $((64 << 20)) ]
	[ "$(cat "$(shim_cgroup_file "$ID" pids.max)")" = 64 ]
	# not visible from inside the container
	wait_file "$BUNDLE/init.out"
	eventually 5 test -s "$BUNDLE/init.out"
	[ "$(cat "$BUNDLE/init.out")" = 0 ]
	rt delete --force "$ID"
	while read -r d; do
		[ ! -e "$d" ] || { echo "left: $d" >&2; false; }
	done <<<"$dirs"
	assert_no_leftovers "$ID" "$BUNDLE"
}

@test "shim cgroup: the operator's limits; a malformed one fails create with one line and leaves nothing" {
	require_enforcement
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "10.213.0.1:9")"
	SANDLOCK_RUNC_SHIM_MEMORY_MAX=96M SANDLOCK_RUNC_SHIM_PIDS_MAX=max create_container "$ID" "$BUNDLE"
	[ "$(cat "$(shim_cgroup_file "$ID" memory.limit_in_bytes memory.max)")" = $((96 << 20)) ]
	[[ "$(cat "$(shim_cgroup_file "$ID" pids.max)")" == max ]]
	rt delete --force "$ID"
	assert_no_leftovers "$ID" "$BUNDLE"

	new_id ID
	SANDLOCK_RUNC_SHIM_PIDS_MAX=lots run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" '^.*SANDLOCK_RUNC_SHIM_PIDS_MAX=lots: not a number'
	[ "${#lines[@]}" -eq 1 ]
	SANDLOCK_RUNC_SHIM_MEMORY_MAX=1M run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'SANDLOCK_RUNC_SHIM_MEMORY_MAX=1M: below the 16 MiB'
	# a create that fails once the shim runs in its cgroup (the kernel layer is off and
	# supervisor mode not allowed): the shim and its cgroup go too
	SANDLOCK_RUNC_SUPERVISOR_MODE=deny run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'SANDLOCK_RUNC_SUPERVISOR_MODE=allow'
	assert_no_shim "$ID"
	# a cgroup of the shim's name that exists already (not ours): refused, and kept
	mkdir "/sys/fs/cgroup/pids/$ID:shim"
	run rtq create --bundle "$BUNDLE" "$ID"
	rmdir "/sys/fs/cgroup/pids/$ID:shim"
	assert_fails_cleanly "$ID" "$BUNDLE" "cgroup .*$ID:shim exists already"
}

# ---------------------------------------------------------------- the attacks

@test "bounded shim: 300 rounds of the 64 MiB zero-page send leave it under 64 MiB RSS; allowed traffic flows" {
	require_enforcement
	egress_setup_net
	new_id ID
	# 24 threads: below the in-flight cap (32), so that the container's own allowed
	# traffic still has room while every attacker is in a call
	attack_bundle b "
		until [ -e /tmp/go ]; do sleep 0.05; done
		/attack zero-send $EG_A $EG_P 300 24 >/tmp/attack.tmp 2>&1 &
		a=\$!
		sleep 0.2
		/probe --label during connect tcp $EG_A $EG_P2 during >/tmp/during 2>&1
		wait \$a
		mv /tmp/attack.tmp /tmp/attack
		/probe --label after connect tcp $EG_A $EG_P2 after >/tmp/after 2>&1
		/probe --label after-udp sendto udp $EG_A $EG_P2 after-udp >>/tmp/after 2>&1
		touch /tmp/done
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;$EG_A:$EG_P2;udp://$EG_A:$EG_P;udp://$EG_A:$EG_P2")"
	start_container "$ID" "$BUNDLE"
	local pid hwm peak failcnt
	pid=$(shim_pid "$ID")
	touch "$BUNDLE/rootfs/tmp/go"
	watch_shim "$pid" "$BUNDLE/rootfs/tmp/done" 120
	hwm=$(status_field "$pid" VmHWM)
	output=$(cat "$BUNDLE/rootfs/tmp/attack" "$BUNDLE/rootfs/tmp/during" "$BUNDLE/rootfs/tmp/after")
	echo "$output"
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	peak=$(cat "$(shim_cgroup_file "$ID" memory.max_usage_in_bytes memory.peak)")
	failcnt=$(cat "$(shim_cgroup_file "$ID" memory.failcnt)" 2>/dev/null || echo 0)
	echo "# shim RSS after 300 rounds: $(mib $((MAX_RSS_KB << 10))) MiB sampled, $(mib $((hwm << 10))) MiB peak (VmHWM); its cgroup's peak $(mib "$peak") MiB, limit hit $failcnt times" >&3
	assert_ok zero-send
	[ "$(field zero-send calls)" = 300 ]
	# the shim copied something each call: the streams went out (256 KiB a call at most)
	[ "$(field zero-send sent)" -gt 0 ]
	[ "$hwm" -lt "$MAX_SHIM_RSS_KB" ]
	[ "$failcnt" = 0 ]
	# the same shim, alive
	[ "$(shim_pid "$ID")" = "$pid" ] && shim_alive "$pid"
	assert_ok during
	assert_ok after
	assert_ok after-udp
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P2" during
	expect_count 1 received tcp "$EG_A" "$EG_P2" after
	expect_count 1 received udp "$EG_A" "$EG_P2" after-udp
}

@test "bounded shim: 300 connects to a never-answering destination leave it under 64 threads; allowed traffic flows" {
	require_enforcement
	egress_setup_net
	# SYNs to $EG_X:$EG_P2 are dropped: a connect there waits (~2 min of SYN retries)
	egress_drop "$EG_P2"
	new_id ID
	# 16 processes at a time, each killed 300 ms into its connect: the shim must give each
	# up when its caller is gone (it notices within a 100 ms poll slice), or the in-flight
	# cap (32) is full after two rounds and stays full for minutes. (24 at a time kept
	# about 24 x 400/300 = 32 calls in flight: the cap itself, and a flaky "during".)
	attack_bundle b "
		until [ -e /tmp/go ]; do sleep 0.05; done
		/attack blackhole-connect $EG_X $EG_P2 300 16 300 >/tmp/attack.tmp 2>&1 &
		a=\$!
		sleep 1
		/probe --label during connect tcp $EG_A $EG_P during >/tmp/during 2>&1
		wait \$a
		mv /tmp/attack.tmp /tmp/attack
		/probe --label after connect tcp $EG_A $EG_P after >/tmp/after 2>&1
		/probe --label after-udp sendto udp $EG_A $EG_P after-udp >>/tmp/after 2>&1
		touch /tmp/done
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;$EG_X:$EG_P2;udp://$EG_A:$EG_P")"
	start_container "$ID" "$BUNDLE"
	local pid events
	pid=$(shim_pid "$ID")
	touch "$BUNDLE/rootfs/tmp/go"
	watch_shim "$pid" "$BUNDLE/rootfs/tmp/done" 120
	output=$(cat "$BUNDLE/rootfs/tmp/attack" "$BUNDLE/rootfs/tmp/during" "$BUNDLE/rootfs/tmp/after")
	echo "$output"
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	events=$(awk '$1 == "max" { print $2 }' "$(shim_cgroup_file "$ID" pids.events)")
	echo "# shim threads during 300 black-hole connects: at most $MAX_THREADS (now $(status_field "$pid" Threads)); its cgroup refused a task $events times; SYNs dropped: $(counter dropped)" >&3
	assert_ok blackhole-connect
	[ "$(field blackhole-connect started)" = 300 ]
	[ "$(counter dropped)" -gt 0 ]
	[ "$MAX_THREADS" -lt "$MAX_SHIM_THREADS" ]
	[ "${events:-0}" = 0 ]
	[ "$(shim_pid "$ID")" = "$pid" ] && shim_alive "$pid"
	assert_ok during
	assert_ok after
	assert_ok after-udp
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" during
	expect_count 1 received tcp "$EG_A" "$EG_P" after
	expect_count 1 received udp "$EG_A" "$EG_P" after-udp
	expect_count 0 received_at tcp "$EG_X" "$EG_P2"
}

@test "bounded shim: 200,000 refused sends with audit=deny leave audit.log and its rotation under 32 MiB; allowed traffic flows" {
	require_enforcement
	egress_setup_net
	new_id ID
	attack_bundle b "
		until [ -e /tmp/go ]; do sleep 0.05; done
		/attack refused-sends $EG_D $EG_P 200000 4 >/tmp/attack.tmp 2>&1 &
		a=\$!
		sleep 0.5
		/probe --label during connect tcp $EG_A $EG_P during >/tmp/during 2>&1
		wait \$a
		mv /tmp/attack.tmp /tmp/attack
		/probe --label after connect tcp $EG_A $EG_P after >/tmp/after 2>&1
		/probe --label after-udp sendto udp $EG_A $EG_P after-udp >>/tmp/after 2>&1
		touch /tmp/done
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;udp://$EG_A:$EG_P")" "$(annotation io.sandlock.audit deny)"
	start_container "$ID" "$BUNDLE"
	local pid start log bytes lines suppressed
	pid=$(shim_pid "$ID")
	log=$TEST_ROOT/$ID/audit.log
	start=$SECONDS
	touch "$BUNDLE/rootfs/tmp/go"
	watch_shim "$pid" "$BUNDLE/rootfs/tmp/done" 150
	output=$(cat "$BUNDLE/rootfs/tmp/attack" "$BUNDLE/rootfs/tmp/during" "$BUNDLE/rootfs/tmp/after")
	echo "$output"
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	bytes=$(cat "$log" "$log.1" 2>/dev/null | wc -c)
	lines=$(cat "$log" "$log.1" 2>/dev/null | grep -c '"verdict":"deny"')
	suppressed=$(cat "$log" "$log.1" 2>/dev/null | jq -s 'map(.suppressed // 0) | add')
	echo "# audit.log + rotation after 200,000 refused sends in $((SECONDS - start)) s: $(mib "$bytes") MiB ($lines decisions recorded, $suppressed suppressed by the rate limit)" >&3
	assert_ok refused-sends
	[ "$(field refused-sends ECONNREFUSED)" = 200000 ]
	[ "$bytes" -lt "$MAX_AUDIT_BYTES" ]
	[ "$suppressed" -gt 0 ]
	[ "$(shim_pid "$ID")" = "$pid" ] && shim_alive "$pid"
	assert_ok during
	assert_ok after
	assert_ok after-udp
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" during
	expect_count 1 received tcp "$EG_A" "$EG_P" after
	expect_count 1 received udp "$EG_A" "$EG_P" after-udp
	expect_count 0 received_at udp "$EG_D" "$EG_P"
}
