# Shared harness for the integration tests; every .bats file does `load helpers`.
#
# The runtime under test is $RUNTIME (default $BUILD/sandlock-runc): the tests only use
# runc's command line, so `RUNTIME=$(which runc) bats integration/` runs them against runc.
#
# Isolation: every test gets its own state directory ($TEST_ROOT, passed as --root; never
# the system default), container ids "slit-<run>-<test>-<n>" (greppable by the leak check
# in tests/check.sh), and bundles under $BATS_TEST_TMPDIR. teardown deletes the test's
# containers, network namespaces and mounts, whatever the test did.

INTEGRATION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$INTEGRATION_DIR")
BUILD=${BUILD:-$REPO_DIR/build}
RUNTIME=${RUNTIME:-$BUILD/sandlock-runc}
# Seconds one runtime command may take before the test gives up on it.
RT_TIMEOUT=${RT_TIMEOUT:-60}

# shellcheck source=integration/rootfs.bash
source "$INTEGRATION_DIR/rootfs.bash"

ROOTFS=${SANDLOCK_IT_ROOTFS:-$BATS_RUN_TMPDIR/rootfs}
ROOT_BASE=${SANDLOCK_IT_ROOT:-$BATS_RUN_TMPDIR/root}
# Part of every container id and netns name; tests/check.sh sets it to find leaks.
RUN_TOKEN=${SANDLOCK_IT_TOKEN:-$(tr -dc 'a-z0-9' <<<"${BATS_RUN_TMPDIR##*-}" | tail -c 4)}

setup() {
	common_setup
}

teardown() {
	common_teardown
}

common_setup() {
	CONTAINERS=()
	TEST_NETNS=()
	TEST_MOUNTS=()
	ID_SEQ=0
	if [ "$(id -u)" -ne 0 ]; then
		skip "integration tests need root"
	fi
	if [ ! -x "$RUNTIME" ]; then
		echo "runtime under test not found: RUNTIME=$RUNTIME (run make, or set RUNTIME=)" >&2
		return 1
	fi
	TEST_ROOT=$ROOT_BASE/$BATS_SUITE_TEST_NUMBER
	mkdir -p "$TEST_ROOT"
	ensure_busybox_rootfs "$ROOTFS"
}

common_teardown() {
	local id ns i
	if [ -n "${TEST_ROOT:-}" ] && [ -x "$RUNTIME" ]; then
		for id in "${CONTAINERS[@]}" $(rt list -q 2>/dev/null </dev/null); do
			rt delete --force "$id" >/dev/null 2>&1 </dev/null
		done
	fi
	for ns in "${TEST_NETNS[@]}"; do
		ip netns delete "$ns" 2>/dev/null
	done
	for ((i = ${#TEST_MOUNTS[@]} - 1; i >= 0; i--)); do
		umount -l "${TEST_MOUNTS[i]}" 2>/dev/null
	done
	# Never follow a mount a broken runtime may have left in a bundle.
	find "$BATS_TEST_TMPDIR" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null
	[ -n "${TEST_ROOT:-}" ] && rmdir "$TEST_ROOT" 2>/dev/null
	return 0
}

# rt ARGS...: the runtime under test with this test's --root. Closes bats' fd 3 so a
# container that outlives the command cannot hold the test's output open.
rt() {
	timeout --kill-after=5 "$RT_TIMEOUT" "$RUNTIME" --root "$TEST_ROOT" "$@" 3>&-
}

# rtq ARGS...: rt with stdio on files, then their content on stdout (stdout first). For
# commands that may leave a container process holding their stdio (create, run -d), so
# that `run rtq create ...` can never hang on a pipe.
rtq() {
	local out err status
	out=$(mktemp "$BATS_TEST_TMPDIR/rtq.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/rtq.XXXXXX")
	rt "$@" >"$out" 2>"$err" </dev/null
	status=$?
	cat "$out" "$err"
	rm -f "$out" "$err"
	return $status
}

# new_id VAR: a fresh container id in VAR, deleted by teardown.
new_id() {
	printf -v "$1" 'slit-%s-%s-%s' "$RUN_TOKEN" "$BATS_SUITE_TEST_NUMBER" "$((++ID_SEQ))"
	CONTAINERS+=("${!1}")
}

# jargs WORDS...: the words as a JSON array.
jargs() {
	local a
	# one jq per word: jq 1.6 would take words like "-c" for its own options
	for a in "$@"; do jq -n --arg a "$a" '$a'; done | jq -sc .
}

# args WORDS...: a make_bundle filter setting process.args.
args() {
	echo ".process.args = $(jargs "$@")"
}

# make_bundle NAME [JQ_FILTER...]: $BATS_TEST_TMPDIR/NAME with a copy of the busybox
# rootfs and the config.json of `$RUNTIME spec`, made non-interactive and writable, then
# edited by each filter in order. Sets BUNDLE to its path.
make_bundle() {
	local name=$1 filter f
	shift
	BUNDLE=$BATS_TEST_TMPDIR/$name
	mkdir -p "$BUNDLE" || return 1
	cp -a "$ROOTFS" "$BUNDLE/rootfs" || return 1
	echo "$BUNDLE" >"$BUNDLE/rootfs/.slit-bundle"
	(cd "$BUNDLE" && "$RUNTIME" spec) || { echo "make_bundle: $RUNTIME spec failed" >&2; return 1; }
	filter='.process.terminal = false | .root.readonly = false'
	for f in "$@"; do
		filter+=" | $f"
	done
	jq "$filter" "$BUNDLE/config.json" >"$BUNDLE/config.json.new" || {
		echo "make_bundle: bad jq filter: $filter" >&2
		return 1
	}
	mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
}

# edit_config BUNDLE JQ_FILTER: edits an existing bundle's config.json.
edit_config() {
	jq "$2" "$1/config.json" >"$1/config.json.new" && mv "$1/config.json.new" "$1/config.json"
}

# create_container ID BUNDLE [CREATE_ARGS...]: create with --pid-file BUNDLE/pid; init's
# stdout/stderr go to BUNDLE/init.out and BUNDLE/init.err. Prints the runtime's own
# output on failure.
create_container() {
	local id=$1 bundle=$2
	shift 2
	rt create --bundle "$bundle" --pid-file "$bundle/pid" "$@" "$id" \
		>"$bundle/init.out" 2>"$bundle/init.err" </dev/null || {
		local status=$?
		echo "create $id failed ($status):" >&2
		cat "$bundle/init.out" "$bundle/init.err" >&2
		return $status
	}
}

# start_container ID [BUNDLE] [STATUS]: create (when BUNDLE is given) and start.
start_container() {
	local id=$1 bundle=${2:-}
	if [ -n "$bundle" ]; then
		create_container "$id" "$bundle" || return
	fi
	rt start "$id" </dev/null || { echo "start $id failed" >&2; return 1; }
}

# state_of ID FIELD: one field of `state ID` (status, pid, bundle, id ...).
state_of() {
	rt state "$1" </dev/null | jq -r ".$2"
}

# wait_status ID STATUS [SECONDS]: waits until the container reaches STATUS.
wait_status() {
	local id=$1 want=$2 deadline=$((SECONDS + ${3:-10})) now
	while :; do
		now=$(state_of "$id" status 2>/dev/null)
		[ "$now" = "$want" ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			echo "container $id is '$now', wanted '$want'" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_file PATH [SECONDS]: waits until PATH exists.
wait_file() {
	local deadline=$((SECONDS + ${2:-10}))
	until [ -e "$1" ]; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for $1" >&2
			return 1
		fi
		sleep 0.05
	done
}

# pids_with_cmdline TEXT: "PID:CMDLINE;" for every process whose command line holds TEXT.
pids_with_cmdline() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		[[ "$cmd" == *"$1"* ]] && printf '%s:%s; ' "${p#/proc/}" "$cmd"
	done
	return 0
}

# eventually SECONDS CMD...: runs CMD until it succeeds; fails (saying which command)
# once SECONDS have passed. For conditions another process makes true in its own time.
eventually() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_gone PID [SECONDS]: waits until process PID no longer exists.
wait_gone() {
	local deadline=$((SECONDS + ${2:-10}))
	while kill -0 "$1" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "process $1 is still alive: $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" >&2
			return 1
		fi
		sleep 0.05
	done
}

# run_container ID BUNDLE [RUN_ARGS...]: runs the bundle in the foreground (`run`), output in
# $output and exit code in $status as bats' run sets them.
run_container() {
	local id=$1 bundle=$2
	shift 2
	run rtq run --bundle "$bundle" "$@" "$id"
}

# helper NAME: path of a C helper from integration/helpers, built on demand when the
# Makefile has not built it (e.g. when running bats directly against runc).
helper() {
	local name=$1 bin=$BUILD/helpers/$1 tmp
	if [ -x "$bin" ] && [ "$bin" -nt "$INTEGRATION_DIR/helpers/$name.c" ]; then
		echo "$bin"
		return
	fi
	bin=$BATS_RUN_TMPDIR/helpers/$name
	if [ ! -x "$bin" ]; then
		mkdir -p "$(dirname "$bin")"
		tmp=$(mktemp "$bin.XXXXXX")
		cc -std=gnu11 -Wall -Wextra -Werror -O2 -o "$tmp" "$INTEGRATION_DIR/helpers/$name.c" -lpthread >&2 &&
			mv "$tmp" "$bin" || { rm -f "$tmp"; return 1; }
	fi
	echo "$bin"
}

# add_netns VAR: a new named network namespace (deleted by teardown), name in VAR.
add_netns() {
	printf -v "$1" 'slit-%s-%s-ns%s' "$RUN_TOKEN" "$BATS_SUITE_TEST_NUMBER" "$((++ID_SEQ))"
	ip netns add "${!1}" || return
	TEST_NETNS+=("${!1}")
}

# host_ns KIND: the host's namespace link of that kind, e.g. "net:[4026531840]".
host_ns() {
	readlink "/proc/self/ns/$1"
}

# pids_in_bundle BUNDLE: pids of processes whose root is BUNDLE's rootfs. A pivoted
# process's /proc/PID/root reads as "/" from the host, so make_bundle leaves a marker
# file naming the bundle in every rootfs and this looks for it through /proc/PID/root.
# (One grep over every marker: a cat each took seconds on a busy machine.)
pids_in_bundle() {
	grep -lsxF -- "$1" /proc/[0-9]*/root/.slit-bundle | sed -n 's|^/proc/\([0-9]*\)/root/\.slit-bundle$|\1|p'
	return 0
}

# cgroups_named ID: cgroup directories whose name contains ID, in any hierarchy.
cgroups_named() {
	find /sys/fs/cgroup -maxdepth 5 -type d -name "*$1*" 2>/dev/null
}

# assert_no_leftovers ID BUNDLE: nothing of container ID is left anywhere.
assert_no_leftovers() {
	local id=$1 bundle=$2 left=""
	if rt state "$id" >/dev/null 2>&1 </dev/null; then
		left+="state: $(rt state "$id" 2>&1 | tr -d '\n'); "
	fi
	[ -e "$TEST_ROOT/$id" ] && left+="state dir $TEST_ROOT/$id; "
	local pids
	pids=$(pids_in_bundle "$bundle" | tr '\n' ' ')
	[ -n "$pids" ] && left+="processes: $pids; "
	local cgs
	cgs=$(cgroups_named "$id" | tr '\n' ' ')
	[ -n "$cgs" ] && left+="cgroups: $cgs; "
	local mnts
	mnts=$(findmnt -rn -o TARGET | grep -F "$bundle" | tr '\n' ' ')
	[ -n "$mnts" ] && left+="mounts: $mnts; "
	if [ -n "$left" ]; then
		echo "leftovers of $id: $left" >&2
		return 1
	fi
}

# assert_fails_cleanly ID BUNDLE PATTERN: after `run rtq create ...`: exit 1, an error
# message matching the ERE PATTERN, and no leftovers.
assert_fails_cleanly() {
	local id=$1 bundle=$2 pattern=$3
	echo "exit status $status, output: $output" >&2
	[ "$status" -eq 1 ] || { echo "expected exit status 1" >&2; return 1; }
	grep -qiE -- "$pattern" <<<"$output" || { echo "output does not match /$pattern/" >&2; return 1; }
	assert_no_leftovers "$id" "$bundle"
}

# refute_line TEXT: no line of $output is exactly TEXT.
refute_line() {
	! grep -qxF -- "$1" <<<"$output" || {
		echo "unexpected line in output: $1" >&2
		return 1
	}
}

# cap_mask NAMES...: the hex mask /proc/PID/status shows for these capability names.
cap_mask() {
	local -A num=(
		[CAP_CHOWN]=0 [CAP_DAC_OVERRIDE]=1 [CAP_DAC_READ_SEARCH]=2 [CAP_FOWNER]=3
		[CAP_FSETID]=4 [CAP_KILL]=5 [CAP_SETGID]=6 [CAP_SETUID]=7 [CAP_SETPCAP]=8
		[CAP_LINUX_IMMUTABLE]=9 [CAP_NET_BIND_SERVICE]=10 [CAP_NET_BROADCAST]=11
		[CAP_NET_ADMIN]=12 [CAP_NET_RAW]=13 [CAP_IPC_LOCK]=14 [CAP_IPC_OWNER]=15
		[CAP_SYS_MODULE]=16 [CAP_SYS_RAWIO]=17 [CAP_SYS_CHROOT]=18 [CAP_SYS_PTRACE]=19
		[CAP_SYS_PACCT]=20 [CAP_SYS_ADMIN]=21 [CAP_SYS_BOOT]=22 [CAP_SYS_NICE]=23
		[CAP_SYS_RESOURCE]=24 [CAP_SYS_TIME]=25 [CAP_SYS_TTY_CONFIG]=26 [CAP_MKNOD]=27
		[CAP_LEASE]=28 [CAP_AUDIT_WRITE]=29 [CAP_AUDIT_CONTROL]=30 [CAP_SETFCAP]=31
		[CAP_MAC_OVERRIDE]=32 [CAP_MAC_ADMIN]=33 [CAP_SYSLOG]=34 [CAP_WAKE_ALARM]=35
		[CAP_BLOCK_SUSPEND]=36 [CAP_AUDIT_READ]=37 [CAP_PERFMON]=38 [CAP_BPF]=39
		[CAP_CHECKPOINT_RESTORE]=40
	)
	local mask=0 c
	for c in "$@"; do
		[ -n "${num[$c]:-}" ] || { echo "cap_mask: unknown capability $c" >&2; return 1; }
		mask=$((mask | (1 << num[$c])))
	done
	printf '%016x\n' "$mask"
}

# in_pty CMD: runs the shell command line CMD under a pseudo-terminal (script(1)) and
# returns its status. Its stdin stays open (and silent) until CMD ends: on an EOF, script
# types ^D into the terminal, and a client that has not switched it to raw mode yet
# (ctr, podman -t) then ends the process's input, which can hang its terminal up
# before it printed anything.
# CMD runs through bash with exec, so that it leads the terminal's foreground process
# group whatever $SHELL is: under a shell that forks it instead (dash, or $SHELL unset as
# in CI) it lands in a background group and stops on SIGTTOU when it sets raw mode.
in_pty() {
	local rc=0 feeder
	exec {feeder}< <(exec sleep 3600)
	local feeder_pid=$!
	SHELL=/bin/bash script -qefc "exec $1" /dev/null <&"$feeder" 3>&- || rc=$?
	exec {feeder}<&-
	kill "$feeder_pid" 2>/dev/null
	return "$rc"
}

# cgroup_bundle ID FILTERS...: a bundle with cgroupsPath /ID and the filters; sets BUNDLE.
cgroup_bundle() {
	local id=$1
	shift
	make_bundle "b-$id" ".linux.cgroupsPath = \"/$id\"" "$@"
}

# wait_for_line FILE TEXT [SECONDS]: waits until FILE has the line TEXT.
wait_for_line() {
	local deadline=$((SECONDS + ${3:-10}))
	until grep -qxF -- "$2" "$1" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for '$2' in $1: $(cat "$1" 2>/dev/null)" >&2
			return 1
		fi
		sleep 0.05
	done
}
