#!/usr/bin/env bats
# --systemd-cgroup against a real systemd (integration/systemd.bash starts Debian's
# systemd as PID 1 of its own namespaces, this host does not run it): the container's
# cgroup is a transient scope systemd owns, with Delegate, the limits it knows of as unit
# properties, every limit in the cgroup files, and delete stops the unit and leaves no
# cgroup behind. Everything runs inside systemd's namespaces (sd_in).
# runc is the reference: `RUNTIME=$(which runc) bats integration/systemd.bats`.

load helpers
load systemd

setup_file() {
	[ -x /lib/systemd/systemd ] || skip "systemd is not installed (make deps installs it)"
	command -v nsenter >/dev/null || skip "nsenter (util-linux) is not installed"
	[ -d /sys/fs/cgroup/memory ] || skip "needs the cgroup v1 controllers (hybrid or legacy host)"
	sd_start
}

teardown_file() {
	sd_stop
}

setup() {
	common_setup
	[ -n "$(sd_pid)" ] || { echo "systemd is not running" >&2; return 1; }
}

# The containers live in systemd's namespaces: delete them there, never from the host
# (whose cgroup paths and pid numbers are not the namespace's).
teardown() {
	local id
	for id in "${CONTAINERS[@]}"; do
		sd_rt delete --force "$id" >/dev/null 2>&1 </dev/null
	done
	CONTAINERS=()
	common_teardown
}

# sd_rt ARGS...: the runtime inside systemd's namespaces, with --systemd-cgroup.
sd_rt() {
	sd_in timeout --kill-after=5 "$RT_TIMEOUT" "$RUNTIME" --root "$TEST_ROOT" --systemd-cgroup "$@" 3>&-
}

# sd_show UNIT PROPERTY: one property of a unit, as systemctl shows it.
sd_show() {
	sd_in systemctl show -p "$2" --value "$1"
}

# sd_cg CONTROLLER PATH FILE: a cgroup file as seen inside the namespace.
sd_cg() {
	sd_in cat "/sys/fs/cgroup/$1$2/$3"
}

# sd_run_detached ID BUNDLE: run -d inside the namespace; the pid (namespace's numbering)
# in BUNDLE/pid.
sd_run_detached() {
	sd_rt run -d --bundle "$2" --pid-file "$2/pid" "$1" >"$2/init.out" 2>"$2/init.err" </dev/null || {
		local status=$?
		cat "$2/init.out" "$2/init.err" >&2
		return $status
	}
}

@test "systemd: the container's cgroup is a transient scope with Delegate, its limits as properties and in the cgroup files" {
	new_id id
	local unit="sandlock-$id.scope" cg="/system.slice/sandlock-$id.scope"
	make_bundle b ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" \
		'.linux.resources.pids = {"limit": 77}' \
		'.linux.resources.memory = {"limit": 67108864}' \
		'.linux.resources.cpu = {"shares": 512, "quota": 50000, "period": 100000}' \
		"$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	pid=$(cat "$BUNDLE/pid")
	echo "pid $pid unit $unit"
	[ "$(sd_show "$unit" ActiveState)" = active ]
	[ "$(sd_show "$unit" Delegate)" = yes ]
	[ "$(sd_show "$unit" ControlGroup)" = "$cg" ]
	[ "$(sd_show "$unit" Slice)" = system.slice ]
	[ "$(sd_show "$unit" TasksMax)" = 77 ]
	[ "$(sd_show "$unit" MemoryLimit)" = 67108864 ]
	[ "$(sd_show "$unit" CPUShares)" = 512 ]
	[ "$(sd_show "$unit" CPUQuotaPerSecUSec)" = 500ms ]
	# systemd knows the init process as the scope's
	sd_in systemctl status "$unit" --no-pager | tee /dev/stderr | grep -qE "^ +[^0-9]*$pid sleep 1000"
	# the process is in the scope in every hierarchy, the limits are in the files
	sd_in cat "/proc/$pid/cgroup" >&2
	for c in name=systemd memory pids cpu cpuset freezer devices; do
		sd_in cat "/proc/$pid/cgroup" | grep -qE "^[0-9]+:([^:]*,)?$c(,[^:]*)?:$cg\$"
	done
	[ "$(sd_cg pids "$cg" pids.max)" = 77 ]
	[ "$(sd_cg memory "$cg" memory.limit_in_bytes)" = 67108864 ]
	[ "$(sd_cg cpu "$cg" cpu.shares)" = 512 ]
	[ "$(sd_cg cpu "$cg" cpu.cfs_quota_us)" = 50000 ]
	# state and ps read the same cgroup
	[ "$(sd_rt state "$id" | jq -r .status)" = running ]
	sd_rt ps "$id" | tee /dev/stderr | awk 'NR > 1 { print $2 }' | grep -qxF "$pid"
	# update writes the files (systemd does not put its values back over them)
	sd_rt update --pids-limit 99 --memory 96m "$id"
	[ "$(sd_cg pids "$cg" pids.max)" = 99 ]
	[ "$(sd_cg memory "$cg" memory.limit_in_bytes)" = 100663296 ]
	# ...and sets them as the unit's properties, which a daemon-reload applies again
	[ "$(sd_show "$unit" TasksMax)" = 99 ]
	[ "$(sd_show "$unit" MemoryLimit)" = 100663296 ]
	sd_in systemctl daemon-reload
	[ "$(sd_cg pids "$cg" pids.max)" = 99 ]
	[ "$(sd_cg memory "$cg" memory.limit_in_bytes)" = 100663296 ]

	sd_rt delete --force "$id"
	[ "$(sd_show "$unit" LoadState)" = not-found ]
	for c in memory pids cpu cpuset freezer devices systemd unified; do
		sd_in test ! -d "/sys/fs/cgroup/$c$cg"
	done
	sd_in test ! -d "/proc/$pid"
}

@test "systemd: without a cgroupsPath the scope is runc-<id>.scope in system.slice; a custom slice nests" {
	new_id id
	make_bundle b '.linux.cgroupsPath = ""' "$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	[ "$(sd_show "runc-$id.scope" ActiveState)" = active ]
	[ "$(sd_show "runc-$id.scope" ControlGroup)" = "/system.slice/runc-$id.scope" ]

	new_id id2
	make_bundle b2 ".linux.cgroupsPath = \"sandlock-test.slice:pfx:$id2\"" "$(args sleep 1000)"
	sd_run_detached "$id2" "$BUNDLE"
	[ "$(sd_show "pfx-$id2.scope" ControlGroup)" = "/sandlock.slice/sandlock-test.slice/pfx-$id2.scope" ]
	[ "$(sd_show sandlock-test.slice ActiveState)" = active ]
	pid=$(cat "$BUNDLE/pid")
	sd_in cat "/proc/$pid/cgroup" | grep -qE "^[0-9]+:memory:/sandlock.slice/sandlock-test.slice/pfx-$id2.scope\$"

	sd_rt delete --force "$id"
	sd_rt delete --force "$id2"
	[ "$(sd_show "runc-$id.scope" LoadState)" = not-found ]
	[ "$(sd_show "pfx-$id2.scope" LoadState)" = not-found ]
}

@test "systemd: exec joins the scope; a container whose init exited is collected by systemd and delete still succeeds" {
	new_id id
	local unit="sandlock-$id.scope"
	make_bundle b ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" \
		"$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	run sd_rt exec "$id" sh -c 'cat /proc/self/cgroup'
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qE "^[0-9]+:memory:/system.slice/$unit\$" <<<"$output"
	# init exits: systemd stops the now empty scope on its own
	pid=$(cat "$BUNDLE/pid")
	sd_in kill -9 "$pid"
	local deadline=$((SECONDS + 10))
	until [ "$(sd_show "$unit" LoadState)" = not-found ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
	[ "$(sd_show "$unit" LoadState)" = not-found ]
	[ "$(sd_rt state "$id" | jq -r .status)" = stopped ]
	run sd_rt delete "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	sd_in test ! -d "/sys/fs/cgroup/memory/system.slice/$unit"
	sd_in test ! -d "$TEST_ROOT/$id"
}

@test "systemd: a scope that already exists is refused with systemd's reason, the first container untouched, nothing left" {
	new_id id
	local unit="sandlock-$id.scope"
	make_bundle b ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" "$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	first=$(cat "$BUNDLE/pid")
	new_id id2
	make_bundle b2 ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" "$(args sleep 1000)"
	run sd_rt run -d --bundle "$BUNDLE" "$id2"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(wc -l <<<"$output")" -eq 1 ]
	grep -qF "systemd cgroup driver: systemd could not start $unit: Unit $unit was already loaded" <<<"$output"
	sd_in test ! -d "$TEST_ROOT/$id2"
	# no process of the second container is left in the namespace
	[ -z "$(sd_in pgrep -f "sandlock-runc.*$id2")" ]
	[ "$(sd_in cat /sys/fs/cgroup/pids/system.slice/$unit/cgroup.procs)" = "$first" ]
	[ "$(sd_show "$unit" ActiveState)" = active ]
	[ "$(sd_rt state "$id" | jq -r .status)" = running ]
}

@test "systemd: org.systemd.property.* annotations become unit properties (xxxSec in seconds); a bad one fails create cleanly" {
	new_id id
	local unit="sandlock-$id.scope"
	make_bundle b ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" \
		'.linux.resources.pids = {"limit": 77}' \
		'.annotations["org.systemd.property.TimeoutStopSec"] = "uint64 42"' \
		'.annotations["org.systemd.property.CollectMode"] = "'"'inactive-or-failed'"'"' \
		'.annotations["org.systemd.property.TasksMax"] = "uint64 55"' \
		"$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	[ "$(sd_show "$unit" ActiveState)" = active ]
	[ "$(sd_show "$unit" TimeoutStopUSec)" = 42s ]
	[ "$(sd_show "$unit" CollectMode)" = inactive-or-failed ]
	# the user's value comes after the runtime's own, so it is the one systemd keeps
	[ "$(sd_show "$unit" TasksMax)" = 55 ]
	sd_rt delete --force "$id"
	[ "$(sd_show "$unit" LoadState)" = not-found ]

	new_id id2
	make_bundle b2 ".linux.cgroupsPath = \"system.slice:sandlock:$id2\"" \
		'.annotations["org.systemd.property.TimeoutStopSec"] = "soon"' "$(args true)"
	run sd_rt run --bundle "$BUNDLE" "$id2"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qF 'annotation org.systemd.property.TimeoutStopSec=soon value parse error' <<<"$output"
	[ "$(wc -l <<<"$output")" -eq 1 ]
	sd_in test ! -d "$TEST_ROOT/$id2"
	[ "$(sd_show "sandlock-$id2.scope" LoadState)" = not-found ]
	sd_in test ! -d "/sys/fs/cgroup/pids/system.slice/sandlock-$id2.scope"
}

@test "systemd: a bad systemd cgroupsPath is refused before anything is made" {
	new_id id
	make_bundle b '.linux.cgroupsPath = "system.slice:sandlock"' "$(args true)"
	run sd_rt run --bundle "$BUNDLE" "$id"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qF 'invalid cgroupsPath "system.slice:sandlock": expected "slice:prefix:name"' <<<"$output"
	make_bundle b2 '.linux.cgroupsPath = "bad/slice.slice:p:n"' "$(args true)"
	run sd_rt run --bundle "$BUNDLE" "$id"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -q 'invalid slice name' <<<"$output"
	sd_in test ! -d "$TEST_ROOT/$id"
	[ "$(sd_show "sandlock-$id.scope" LoadState)" = not-found ]
}

@test "systemd: a container with an egress policy gets its shim and the kernel programs on the scope's cgroup2 directory" {
	new_id id
	local unit="sandlock-$id.scope"
	make_bundle b ".linux.cgroupsPath = \"system.slice:sandlock:$id\"" \
		'.annotations["io.sandlock.network.allow"] = "10.213.0.1:9"' "$(args sleep 1000)"
	sd_run_detached "$id" "$BUNDLE"
	cat "$BUNDLE/init.out" "$BUNDLE/init.err"
	# no warning: the programs found the unit's directory (made by systemd at the first join)
	[ ! -s "$BUNDLE/init.err" ]
	[ "$(sd_rt state "$id" | jq -r .status)" = running ]
	run sd_in "$BUILD/helpers/egress_probe" --label progs cgroup-progs "/sys/fs/cgroup/unified/system.slice/$unit"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "progs ok sock_create=1 connect4=1 connect6=1 sendmsg4=1 sendmsg6=1 inet_egress=1 sock_release=1" ]
	# the shim supervises the container from a scope of its own next to it, with its limits
	sd_rt egress "$id" | tee /dev/stderr | grep -q '10.213.0.1'
	[ "$(sd_show "sandlock-$id:shim.scope" ActiveState)" = active ]
	[ "$(sd_show "sandlock-$id:shim.scope" TasksMax)" = 64 ]
	[ "$(sd_show "sandlock-$id:shim.scope" ControlGroup)" = "/system.slice/sandlock-$id:shim.scope" ]
	sd_rt delete --force "$id"
	[ "$(sd_show "$unit" LoadState)" = not-found ]
	[ "$(sd_show "sandlock-$id:shim.scope" LoadState)" = not-found ]
	[ -z "$(sd_in pgrep -f "sandlock-shim.*$id")" ]
}
