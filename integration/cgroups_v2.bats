#!/usr/bin/env bats
# The cgroup v2 code paths for real, on this hybrid host: setup_file hands the cpu,
# cpuset, pids, blkio (io) and memory controllers from their v1 hierarchies to cgroup2
# (a controller whose v1 hierarchy is unmounted and has no child cgroups goes back to
# the cgroup2 hierarchy), enables them and hugetlb (already on cgroup2 here) in the
# cgroup2 root's cgroup.subtree_control, and teardown_file gives everything back,
# mounted where and how it was (integration/cgroups_v2_restore.sh, which a human or a
# leak check can run too). Only hierarchies without child cgroups that can be unmounted
# are handed over; a test that needs one that is not says so in its skip reason
# ("this machine ..."). What cgroup2 offers without controllers (cgroup.procs,
# cgroup.freeze, cpu.stat, the eBPF device program, cgroup namespaces) is always tested.
#
# Every runtime command runs in a private mount namespace whose /sys/fs/cgroup is a
# plain cgroup2 mount, so the runtime sees a pure v2 host and takes its V2Manager; the
# container cgroups are the same directories the host sees under /sys/fs/cgroup/unified.
#
# runc is the reference: `RUNTIME=$(which runc) bats integration/cgroups_v2.bats`.

load helpers

UNIFIED=/sys/fs/cgroup/unified
RESTORE=$INTEGRATION_DIR/cgroups_v2_restore.sh
export SANDLOCK_CG_HANDOVER=${SANDLOCK_CG_HANDOVER:-/run/sandlock-it-cgroups-v2.handover}

# ---- the hand-over (setup_file / teardown_file) -----------------------------------------

# v1_hierarchy CONTROLLER: "HIERARCHY_ID NUM_CGROUPS" from /proc/cgroups.
v1_hierarchy() {
	awk -v c="$1" '$1 == c { print $2, $3 }' /proc/cgroups
}

# record LINE...: one tab-separated line in the hand-over record, before the step it names.
record() {
	local IFS=$'\t'
	echo "$*" >>"$SANDLOCK_CG_HANDOVER"
}

# v1_mounts CONTROLLER: "MOUNT_POINT VFS_OPTIONS SOURCE SUPER_OPTIONS" of every v1 mount
# of the hierarchy carrying CONTROLLER.
v1_mounts() {
	awk -v c="$1" '{
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($(i + 1) != "cgroup") next
		n = split($(i + 3), opts, ",")
		for (j = 1; j <= n; j++) if (opts[j] == c) { print $5, $6, $(i + 2), $(i + 3); next }
	}' /proc/self/mountinfo
}

# v2_name CONTROLLER: its name on cgroup2 (blkio is io there).
v2_name() {
	[ "$1" = blkio ] && echo io || echo "$1"
}

# remount_v1 CONTROLLER: mounts the hierarchy of CONTROLLER again, as the record says
# (a hand-over that did not work out; the restore script skips what is mounted).
remount_v1() {
	local kind mp vfs source super
	while IFS=$'\t' read -r kind mp vfs source super; do
		[ "$kind" = mount ] && [[ ",$super," == *",$1,"* ]] || continue
		findmnt -rn "$mp" >/dev/null && continue
		mount -t cgroup -o "$vfs,${super#rw,}" "$source" "$mp"
	done <"$SANDLOCK_CG_HANDOVER"
}

# hand_over CONTROLLER: moves it to cgroup2, or prints why not (on stdout) and leaves it.
hand_over() {
	local c=$1 h n mp vfs source super i
	read -r h n <<<"$(v1_hierarchy "$c")"
	if [ -z "$h" ]; then
		echo "this machine's kernel has no $c controller"
		return
	fi
	if [ "$h" -ne 0 ]; then
		# the runtime's empty warm cgroup (runtime/cgroups/v1.hpp kWarmCpusetCgroup) is not a
		# user's: it goes, and the next create on a v1 hierarchy makes it again
		[ "$c" = cpuset ] && while read -r mp _; do
			[ -n "$mp" ] && rmdir "$mp/sandlock-runc.cpuset" 2>/dev/null
		done < <(v1_mounts cpuset)
		# removed cgroups are counted until the kernel has freed them: give them a moment
		for i in 1 2 3 4 5 6 7 8 9 10; do
			[ "$n" -eq 1 ] && break
			sleep 0.2
			read -r h n <<<"$(v1_hierarchy "$c")"
		done
		if [ "$n" -ne 1 ]; then
			echo "this machine's v1 $c hierarchy holds $((n - 1)) other cgroups (/proc/cgroups: its own, or ones the kernel has not freed yet), so $c cannot be handed to cgroup2"
			return
		fi
		while read -r mp vfs source super; do
			[ -n "$mp" ] || continue
			record mount "$mp" "$vfs" "$source" "$super"
			umount "$mp" 2>/dev/null || {
				echo "this machine keeps the v1 $c hierarchy busy (umount $mp: target is busy; held by a process this test cannot see, such as PID 1), so $c cannot be handed to cgroup2"
				return
			}
		done < <(v1_mounts "$c")
		for ((i = 0; i < 40; i++)); do
			read -r h n <<<"$(v1_hierarchy "$c")"
			[ "$h" -eq 0 ] && break
			sleep 0.05
		done
		if [ "$h" -ne 0 ]; then
			remount_v1 "$c"
			echo "this machine keeps the v1 $c hierarchy alive after the unmount (another mount namespace, or a cgroup created meanwhile)"
			return
		fi
	fi
	record enabled "$(v2_name "$c")"
	echo "+$(v2_name "$c")" >"$UNIFIED/cgroup.subtree_control" 2>/dev/null ||
		echo "this machine's cgroup2 root refuses +$(v2_name "$c") in cgroup.subtree_control"
}

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	[ -e "$UNIFIED/cgroup.controllers" ] || return 0 # not hybrid: every test skips
	if [ -e "$SANDLOCK_CG_HANDOVER" ]; then
		# a previous run was killed before its teardown: put that back first
		"$RESTORE" || return 1
	fi
	local c why
	: >"$BATS_FILE_TMPDIR/unavailable"
	for c in cpu cpuset pids blkio memory hugetlb; do
		why=$(hand_over "$c")
		[ -n "$why" ] && printf '%s\t%s\n' "$(v2_name "$c")" "$why" >>"$BATS_FILE_TMPDIR/unavailable"
	done
	return 0
}

teardown_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	"$RESTORE"
}

# need CONTROLLER...: skips the test unless cgroup2 offers every CONTROLLER (v2 names).
need() {
	local c why
	[ -e "$UNIFIED/cgroup.controllers" ] || skip "needs a hybrid host (cgroup2 at $UNIFIED)"
	for c in "$@"; do
		why=$(awk -F'\t' -v c="$c" '$1 == c { print $2 }' "$BATS_FILE_TMPDIR/unavailable" 2>/dev/null)
		[ -n "$why" ] && skip "$why"
		grep -qw "$c" "$UNIFIED/cgroup.subtree_control" || skip "this machine's cgroup2 root does not offer $c"
	done
}

# ---- the runtime in a pure cgroup2 view -------------------------------------------------

# rt ARGS...: helpers' rt, in a private mount namespace where /sys/fs/cgroup is only a
# cgroup2 mount (the v1 tree is detached there, so the runtime's probe cannot see it).
# Every helper (create_container, state_of, teardown's delete) goes through it.
rt() {
	timeout --kill-after=5 "$RT_TIMEOUT" unshare -m --propagation private \
		sh -c 'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' sh \
		"$RUNTIME" --root "$TEST_ROOT" "$@" 3>&-
}

setup() {
	common_setup
}

teardown() {
	common_teardown
}

# cg2 ID FILE: a cgroup2 file of container ID, as the host sees it.
cg2() {
	cat "$UNIFIED/$1/$2"
}

# usage_usec ID: CPU time the container's cgroup has used.
usage_usec() {
	awk '$1 == "usage_usec" { print $2 }' "$UNIFIED/$1/cpu.stat"
}

# assert_v2_gone ID: no cgroup of ID left in the cgroup2 hierarchy.
assert_v2_gone() {
	[ ! -e "$UNIFIED/$1" ] || {
		echo "cgroup $UNIFIED/$1 is still there" >&2
		return 1
	}
}

# ---- tests ------------------------------------------------------------------------------

@test "v2: the runtime takes its V2Manager, and create/start/pause/resume/events/delete work" {
	need
	new_id id
	cgroup_bundle "$id" '.linux.namespaces += [{"type": "cgroup"}]' "$(args sh -c 'cat /proc/self/cgroup; exec sleep 1000')"
	create_container "$id" "$BUNDLE"
	[ "$(jq -r .cgroup.kind "$TEST_ROOT/$id/state.json")" = v2 ]
	[ "$(jq -r '.cgroup.targets[0].mount' "$TEST_ROOT/$id/state.json")" = /sys/fs/cgroup ]
	pid=$(cat "$BUNDLE/pid")
	# init is in the container's cgroup once create returns (parked before execve)
	[ "$(cg2 "$id" cgroup.procs)" = "$pid" ]
	grep -qx "0::/$id" "/proc/$pid/cgroup"
	rt start "$id"
	wait_for_line "$BUNDLE/init.out" "0::/" # its cgroup namespace is rooted at its cgroup
	rt pause "$id"
	[ "$(state_of "$id" status)" = paused ]
	grep -qx 'frozen 1' "$UNIFIED/$id/cgroup.events"
	rt resume "$id"
	[ "$(state_of "$id" status)" = running ]
	grep -qx 'frozen 0' "$UNIFIED/$id/cgroup.events"
	run rt events --stats "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .type <<<"$output")" = stats ]
	[ "$(jq -r '.data.cpu.usage.total > 0' <<<"$output")" = true ]
	[ "$(rt ps "$id" | tail -n +2 | wc -l)" -eq 1 ]
	rt delete --force "$id"
	assert_v2_gone "$id"
}

@test "v2: pids.max is written, a fork bomb stops at it, update changes it" {
	need pids
	new_id id
	cgroup_bundle "$id" '.linux.resources.pids = {"limit": 20}' \
		"$(args sh -c 'sh -c "i=0; while [ \$i -lt 60 ]; do sleep 1000 & i=\$((i+1)); done" 2>/dev/null; echo forked; exec sleep 1000')"
	start_container "$id" "$BUNDLE"
	[ "$(cg2 "$id" pids.max)" = 20 ]
	wait_for_line "$BUNDLE/init.out" forked
	current=$(cg2 "$id" pids.current)
	echo "pids.current=$current"
	[ "$current" -le 20 ]
	[ "$current" -ge 15 ]
	[ "$(awk '$1 == "max" {print $2}' "$UNIFIED/$id/pids.events")" -gt 0 ]
	rt update --pids-limit 30 "$id"
	[ "$(cg2 "$id" pids.max)" = 30 ]
	rt update --pids-limit -1 "$id"
	[ "$(cg2 "$id" pids.max)" = max ]
	run rt events --stats "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .data.pids.current <<<"$output")" = "$current" ]
	[ "$(jq -r '.data.cpu.usage.total > 0' <<<"$output")" = true ]
}

@test "v2: cpu shares -> cpu.weight, quota/period -> cpu.max, burst, and update" {
	need cpu
	new_id id
	cgroup_bundle "$id" '.linux.resources.cpu = {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000}' \
		"$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	# weight = 1 + ((512 - 2) * 9999) / 262142 = 20
	[ "$(cg2 "$id" cpu.weight)" = 20 ]
	[ "$(cg2 "$id" cpu.max)" = "50000 100000" ]
	[ "$(cg2 "$id" cpu.max.burst)" = 10000 ]
	rt update --cpu-share 1024 --cpu-quota 20000 --cpu-period 50000 "$id"
	[ "$(cg2 "$id" cpu.weight)" = 39 ]
	[ "$(cg2 "$id" cpu.max)" = "20000 50000" ]
	# the period alone keeps the quota (cpu.max holds both)
	rt update --cpu-period 40000 "$id"
	[ "$(cg2 "$id" cpu.max)" = "20000 40000" ]
	echo '{"cpu": {"quota": -1, "burst": 0}}' | rt update --resources - "$id"
	[ "$(cg2 "$id" cpu.max)" = "max 40000" ]
	[ "$(cg2 "$id" cpu.max.burst)" = 0 ]
	# the saved config carries what update set
	[ "$(jq -cS '.linux.resources.cpu' "$TEST_ROOT/$id/config.json")" = \
		'{"burst":0,"period":40000,"quota":-1,"shares":1024}' ]
}

@test "v2: cpus and mems -> cpuset.cpus/cpuset.mems, and update" {
	need cpuset
	new_id id
	last=$(($(nproc) - 1))
	cgroup_bundle "$id" ".linux.resources.cpu = {\"cpus\": \"$last\", \"mems\": \"0\"}" "$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	[ "$(cg2 "$id" cpuset.cpus)" = "$last" ]
	[ "$(cg2 "$id" cpuset.mems)" = 0 ]
	grep -qx "Cpus_allowed_list:[[:space:]]*$last" "/proc/$(cat "$BUNDLE/pid")/status"
	rt update --cpuset-cpus 0 "$id"
	[ "$(cg2 "$id" cpuset.cpus)" = 0 ]
	grep -qx "Cpus_allowed_list:[[:space:]]*0" "/proc/$(cat "$BUNDLE/pid")/status"
}

@test "v2: blkio weight -> io.bfq.weight (as is) or io.weight (scaled), and update" {
	need io
	new_id id
	cgroup_bundle "$id" '.linux.resources.blockIO = {"weight": 500}' "$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	if [ -e "$UNIFIED/$id/io.bfq.weight" ]; then
		file=io.bfq.weight want1=500 want2=200
	elif [ -e "$UNIFIED/$id/io.weight" ]; then
		# io.weight = 1 + ((w - 10) * 9999) / 990
		file=io.weight want1=4950 want2=1920
	else
		skip "this machine's kernel offers neither io.bfq.weight nor io.weight"
	fi
	echo "$file: $(cg2 "$id" $file)"
	[ "$(awk '$1 == "default" { print $2 }' "$UNIFIED/$id/$file")" = "$want1" ]
	rt update --blkio-weight 200 "$id"
	[ "$(awk '$1 == "default" { print $2 }' "$UNIFIED/$id/$file")" = "$want2" ]
}

@test "v2: hugepageLimits -> hugetlb.<size>.max, unified keys win, update, unknown keys refused" {
	need hugetlb
	[ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] || skip "this machine has no 2MB huge pages"
	new_id id
	cgroup_bundle "$id" '.linux.resources.hugepageLimits = [{"pageSize": "2MB", "limit": 4194304}]' \
		"$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	[ "$(cg2 "$id" hugetlb.2MB.max)" = 4194304 ]
	echo '{"hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}]}' | rt update --resources - "$id"
	[ "$(cg2 "$id" hugetlb.2MB.max)" = 8388608 ]
	# a unified key is written after the translated fields, so it wins
	echo '{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}], "unified": {"hugetlb.2MB.max": "2097152"}}' |
		rt update --resources - "$id"
	[ "$(cg2 "$id" hugetlb.2MB.max)" = 2097152 ]
	[ "$(jq -r '.linux.resources.unified["hugetlb.2MB.max"]' "$TEST_ROOT/$id/config.json")" = 2097152 ]
	run rt events --stats "$id"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.data.hugetlb | has("2MB")' <<<"$output")" = true ]
	echo '{"unified": {"hugetlb.2MB.bogus": "1"}}' >"$BATS_TEST_TMPDIR/bad.json"
	run rt update --resources "$BATS_TEST_TMPDIR/bad.json" "$id"
	[ "$status" -eq 1 ]
	[[ "$output" == *'unified["hugetlb.2MB.bogus"]: unknown cgroup v2 resource'* ]]
	# a controller cgroup2 does not offer here: a clear error naming it, nothing left
	new_id id2
	cgroup_bundle "$id2" '.linux.resources.unified = {"hugetlb.2MB.max": "2097152", "pids.max": "5"}' "$(args true)"
	if ! grep -qw pids "$UNIFIED/cgroup.subtree_control"; then
		run rtq create --bundle "$BUNDLE" "$id2"
		assert_fails_cleanly "$id2" "$BUNDLE" 'pids.max.*does not exist'
	fi
}

@test "v2: unified keys for cpu and pids are written last and win" {
	need pids cpu
	new_id id
	cgroup_bundle "$id" '.linux.resources.pids = {"limit": 20}' \
		'.linux.resources.unified = {"pids.max": "7", "cpu.weight": "300"}' "$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	[ "$(cg2 "$id" pids.max)" = 7 ]
	[ "$(cg2 "$id" cpu.weight)" = 300 ]
	echo '{"unified": {"cpu.weight": "55"}}' | rt update --resources - "$id"
	[ "$(cg2 "$id" cpu.weight)" = 55 ]
}

@test "v2: devices are enforced by the eBPF program" {
	need
	new_id id
	cgroup_bundle "$id" \
		'.mounts += [{"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}]' \
		"$(args sh -c 'echo x >/dev/null && echo null-ok; head -c1 /dev/urandom >/dev/null && echo urandom-ok; dd if=/dev/kmsg of=/dev/null bs=1 count=0 2>/dev/null || echo kmsg-denied; exec sleep 1000')"
	start_container "$id" "$BUNDLE"
	wait_for_line "$BUNDLE/init.out" kmsg-denied
	grep -qx null-ok "$BUNDLE/init.out"
	grep -qx urandom-ok "$BUNDLE/init.out"
	# the program is attached to the container's cgroup (bpftool, when installed, names it)
	if command -v bpftool >/dev/null; then
		bpftool cgroup show "$UNIFIED/$id" | grep -q cgroup_device
	fi
}

@test "v2: pause stops a busy process from using CPU (cgroup.freeze), resume restarts it" {
	need
	new_id id
	cgroup_bundle "$id" "$(args sh -c 'while :; do :; done')"
	start_container "$id" "$BUNDLE"
	sleep 0.3
	rt pause "$id"
	[ "$(cg2 "$id" cgroup.freeze)" = 1 ]
	[ "$(state_of "$id" status)" = paused ]
	a=$(usage_usec "$id")
	sleep 0.5
	b=$(usage_usec "$id")
	echo "paused: $a -> $b"
	[ "$((b - a))" -lt 5000 ]
	rt resume "$id"
	[ "$(cg2 "$id" cgroup.freeze)" = 0 ]
	a=$(usage_usec "$id")
	# running again: > 100 ms of CPU (within 10 s, however busy the machine is)
	used_since() { [ "$(($(usage_usec "$id") - a))" -gt 100000 ]; }
	eventually 10 used_since
	echo "resumed: $a -> $(usage_usec "$id")"
	rt pause "$id"
	rt delete --force "$id"
	assert_v2_gone "$id"
}

@test "v2: memory limit/reservation/swap -> memory.max/low/swap.max, update keeps swap consistent" {
	need memory
	new_id id
	cgroup_bundle "$id" '.linux.resources.memory = {"limit": 67108864, "reservation": 33554432}' "$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	[ "$(cg2 "$id" memory.max)" = 67108864 ]
	[ "$(cg2 "$id" memory.low)" = 33554432 ]
	rt update --memory 48m --memory-reservation 16m "$id"
	[ "$(cg2 "$id" memory.max)" = 50331648 ]
	[ "$(cg2 "$id" memory.low)" = 16777216 ]
	[ -e "$UNIFIED/$id/memory.swap.max" ] || skip "this machine's kernel does not account swap (no memory.swap.max)"
	# memory.swap.max = swap - limit
	rt update --memory-swap 128m "$id"
	[ "$(cg2 "$id" memory.swap.max)" = 83886080 ]
	# the limit alone: swap.max follows from the saved memory+swap
	rt update --memory 32m "$id"
	[ "$(cg2 "$id" memory.max)" = 33554432 ]
	[ "$(cg2 "$id" memory.swap.max)" = 100663296 ]
	rt update --memory-swap 64m "$id"
	[ "$(cg2 "$id" memory.swap.max)" = 33554432 ]
}

@test "v2: an allocation over memory.max is OOM-killed and events --stats shows it" {
	need memory
	new_id id
	cgroup_bundle "$id" '.linux.resources.memory = {"limit": 16777216, "swap": 16777216}' \
		"$(args sh -c 'head -c 64m /dev/zero | tail >/dev/null; echo "tail=$?"; sleep 1000')"
	start_container "$id" "$BUNDLE"
	# reclaim before the OOM kill can take long on a busy machine
	wait_for_line "$BUNDLE/init.out" "tail=137" 40
	run rt events --stats "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .data.memory.raw.oom_kill <<<"$output")" -ge 1 ]
	grep -qx 'oom_kill [1-9][0-9]*' "$UNIFIED/$id/memory.events"
}

@test "v2: the runtime's setup is not charged: memory.peak is small after create, 4 MiB runs" {
	need memory
	new_id id
	cgroup_bundle "$id" '.linux.resources.memory = {"limit": 4194304}' "$(args sh -c 'echo hello from 4MiB')"
	create_container "$id" "$BUNDLE"
	# memory.peak includes the kernel's per-CPU precharge (64 pages per CPU that charged
	# anything): bounded by it; memory.stat's exact counters must be near zero.
	if [ -e "$UNIFIED/$id/memory.peak" ]; then
		echo "memory.peak after create: $(cg2 "$id" memory.peak)"
		[ "$(cg2 "$id" memory.peak)" -le $((262144 * $(nproc))) ]
	fi
	used=$(awk '$1 == "anon" || $1 == "file" || $1 == "kernel" { n += $2 } END { print n }' "$UNIFIED/$id/memory.stat")
	echo "anon+file+kernel after create: $used"
	[ "$used" -lt 65536 ]
	rt start "$id"
	wait_for_line "$BUNDLE/init.out" "hello from 4MiB"
}

@test "v2: nothing is left: no container cgroup under $UNIFIED, no mounts" {
	need
	new_id id
	cgroup_bundle "$id" '.linux.namespaces += [{"type": "cgroup"}]' "$(args sleep 1000)"
	start_container "$id" "$BUNDLE"
	[ -d "$UNIFIED/$id" ]
	rt delete --force "$id"
	assert_no_leftovers "$id" "$BUNDLE"
	assert_v2_gone "$id"
	# the wrapper's cgroup2 mount lived in its own mount namespace only
	! findmnt -rn -o TARGET,FSTYPE | grep -qx '/sys/fs/cgroup cgroup2'
}
