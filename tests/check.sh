#!/usr/bin/env bash
# The body of `make check`: unit tests, integration tests (bats, as root), and a leak check.
# Usage: BUILD=/abs/build tests/check.sh [--integration-only]
# Environment: RUNTIME (default $BUILD/sandlock-runc) is the runtime the integration tests
# drive; any runc-compatible binary works. Ends with one line "N passed, N failed, N skipped"
# and exits non-zero when anything failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
export BUILD=${BUILD:-$REPO/build}
export RUNTIME=${RUNTIME:-$BUILD/sandlock-runc}
# The whole bats run may take this long before it is stopped and counted as failed.
BATS_RUN_TIMEOUT=${BATS_RUN_TIMEOUT:-2400}

integration_only=0
case "${1:-}" in
--integration-only) integration_only=1 ;;
"") ;;
*)
	echo "usage: $0 [--integration-only]" >&2
	exit 2
	;;
esac

passed=0
failed=0
skipped=0

# sum_matches FILE REGEX: the sum of the first number of every line matching REGEX.
sum_matches() {
	grep -E "$2" "$1" | grep -oE '^ *[0-9]+' | awk '{s += $1} END {print s + 0}'
}

FAILURES=$(mktemp /tmp/sandlock-check-failures.XXXXXX)

run_unit_tests() {
	echo "# unit tests: $BUILD/unit-tests"
	if [ ! -x "$BUILD/unit-tests" ]; then
		echo "not ok - unit tests: $BUILD/unit-tests was not built"
		failed=$((failed + 1))
		return
	fi
	local log rc p f s
	log=$(mktemp)
	"$BUILD/unit-tests" --report_level=short 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# Boost: "  N test cases out of M passed" (aborted cases are also counted as failed)
	p=$(sum_matches "$log" '^ *[0-9]+ test cases? out of [0-9]+ passed')
	f=$(sum_matches "$log" '^ *[0-9]+ test cases? out of [0-9]+ failed')
	s=$(sum_matches "$log" '^ *[0-9]+ test cases? out of [0-9]+ skipped')
	grep -E 'error: in "|fatal error: in "|failure occurred' "$log" | head -n 40 | sed 's/^/unit: /' >>"$FAILURES"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# a crash, or an error Boost did not count as a test case
		echo "not ok - unit tests: $BUILD/unit-tests exited with status $rc"
		f=1
	fi
	if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && ! grep -q 'No errors detected' "$log"; then
		echo "not ok - unit tests: no Boost summary in the output"
		f=$((f + 1))
	fi
	echo "# unit tests: $p passed, $f failed, $s skipped"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	rm -f "$log"
}

# count_tap FILE BATS_STATUS: adds bats' TAP results to the totals.
count_tap() {
	local tap=$1 rc=$2 ok not_ok skip planned ran
	not_ok=$(grep -cE '^not ok ' "$tap")
	skip=$(grep -cE '^ok [0-9]+ .*# skip' "$tap")
	ok=$(($(grep -cE '^ok ' "$tap") - skip))
	planned=$(grep -oE '^1\.\.[0-9]+' "$tap" | head -n 1 | cut -d. -f3)
	ran=$((ok + not_ok + skip))
	if [ -n "$planned" ] && [ "$ran" -lt "$planned" ]; then
		echo "not ok - bats stopped after $ran of $planned tests"
		not_ok=$((not_ok + planned - ran))
	elif [ "$rc" -ne 0 ] && [ "$not_ok" -eq 0 ]; then
		echo "not ok - bats exited with status $rc"
		not_ok=$((not_ok + 1))
	fi
	passed=$((passed + ok))
	failed=$((failed + not_ok))
	skipped=$((skipped + skip))
	# each failure with the first lines of its diagnostics, repeated at the end
	awk '/^not ok /{keep=1; n=0; print; next} /^(ok|not ok) /{keep=0} keep && /^#/ && n < 12 {print; n++}' \
		"$tap" >>"$FAILURES"
}

# test_processes WORK TOKEN: pids of live (non-zombie) processes the tests started.
test_processes() {
	local work=$1 token=$2 p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
		if [[ "$(cat "$p/root/.slit-bundle" 2>/dev/null)" == "$work"/* ]] ||
			grep -qE "slit-$token-|sandlock-systemd-$token" "$p/cgroup" 2>/dev/null ||
			tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$work"; then
			echo "${p#/proc/}"
		fi
	done
}

# Leak check: whatever the integration tests left behind after their teardowns, found
# by the names and paths only tests use; reported, then cleaned so later runs start clean.
leak_check() {
	local work=$1 token=$2 leaks=() p m ns cg
	local mounts pids=() cgroups netns states

	mounts=$(findmnt -rn -o TARGET | grep -E "sandlock|$work" | sort -r)
	[ -n "$mounts" ] && leaks+=("mounts: $(echo $mounts)")

	states=$(find "$SANDLOCK_IT_ROOT" -mindepth 2 -maxdepth 2 2>/dev/null)
	[ -n "$states" ] && leaks+=("state dirs: $(echo $states)")

	# (systemd.bats runs its systemd in a subtree named sandlock-systemd-TOKEN)
	# (the unit tests' kernel-layer cgroups are sandlock-test-PID-N)
	cgroups=$(find /sys/fs/cgroup -maxdepth 6 -type d \( -name "*slit-$token-*" -o -name "sandlock-systemd-$token" \
		-o -name "sandlock-test-*" \) \
		2>/dev/null | sort -r)
	[ -n "$cgroups" ] && leaks+=("cgroups: $(echo $cgroups)")

	# Processes still exiting (a container's init being reaped by its subreaper) are
	# given a moment; zombies hold nothing but a pid and are not leaks.
	local tries
	for tries in 1 2 3 4 5 6 7 8 9 10; do
		test_processes "$work" "$token" | grep -q . || break
		sleep 0.2
	done
	for p in $(test_processes "$work" "$token"); do
		pids+=("$p")
	done
	if [ ${#pids[@]} -gt 0 ]; then
		local desc=""
		for p in "${pids[@]}"; do
			desc+="$p($(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-60)) "
		done
		leaks+=("processes: $desc")
	fi

	netns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^slit-$token-")
	[ -n "$netns" ] && leaks+=("network namespaces: $(echo $netns)")

	# cgroups_v2.bats hands v1 controllers to cgroup2 for its run and must give them back
	if ! "$REPO/integration/cgroups_v2_restore.sh" --check 2>/dev/null; then
		leaks+=("cgroup controllers still handed to cgroup2 (restored now)")
		"$REPO/integration/cgroups_v2_restore.sh"
	fi

	if [ ${#leaks[@]} -eq 0 ]; then
		echo "ok - leak check: no mounts, state, cgroups, processes or netns left by the tests"
		passed=$((passed + 1))
		return
	fi
	{
		echo "not ok - leak check"
		printf '#   %s\n' "${leaks[@]}"
	} | tee -a "$FAILURES"
	failed=$((failed + 1))

	# Clean up after a failure so the machine stays usable.
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	sleep 0.5
	for m in $mounts; do umount -l "$m" 2>/dev/null; done
	for ns in $netns; do ip netns delete "$ns" 2>/dev/null; done
	for cg in $cgroups; do rmdir "$cg" 2>/dev/null; done
}

run_integration_tests() {
	local files count
	files=("$REPO"/integration/*.bats)
	if [ "$(id -u)" -ne 0 ]; then
		count=$(bats --count "${files[@]}" 2>/dev/null || echo 0)
		echo "# integration tests skipped: they need root (running as uid $(id -u))"
		skipped=$((skipped + count + 1))
		return
	fi
	if ! command -v bats >/dev/null; then
		echo "not ok - integration tests: bats is not installed (make deps)"
		failed=$((failed + 1))
		return
	fi
	echo "# integration tests: RUNTIME=$RUNTIME"

	local work token rc
	work=$(mktemp -d /tmp/sandlock-it.XXXXXX)
	token=$(tr -dc 'a-z0-9' </dev/urandom | head -c 4)
	export SANDLOCK_IT_ROOT=$work/root
	export SANDLOCK_IT_TOKEN=$token
	# cached across runs; a change to rootfs.bash makes a new one
	export SANDLOCK_IT_ROOTFS=/tmp/sandlock-it-rootfs-$(id -u)-$(cksum <"$REPO/integration/rootfs.bash" | cut -d' ' -f1)
	mkdir -p "$work/tmp" "$SANDLOCK_IT_ROOT"

	# shellcheck source=integration/rootfs.bash
	source "$REPO/integration/rootfs.bash"
	if ! ensure_busybox_rootfs "$SANDLOCK_IT_ROOTFS"; then
		echo "not ok - integration tests: cannot build the busybox rootfs"
		failed=$((failed + 1))
		rm -rf "$work"
		return
	fi

	TMPDIR=$work/tmp timeout --kill-after=30 "$BATS_RUN_TIMEOUT" \
		bats --tap "${files[@]}" </dev/null 2>&1 | tee "$work/tap"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && echo "not ok - bats was stopped after ${BATS_RUN_TIMEOUT}s" | tee -a "$FAILURES"
	count_tap "$work/tap" "$rc"

	leak_check "$work" "$token"
	rm -rf --one-file-system "$work" 2>/dev/null
}

# The benchmarks in quick mode: they must keep working; timings are never judged.
run_bench_quick() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "# bench --quick skipped: it needs root"
		skipped=$((skipped + 1))
		return
	fi
	local log
	log=$(mktemp)
	if timeout --kill-after=10 600 "$REPO/bench/run.sh" --quick >"$log" 2>&1; then
		tail -n 30 "$log"
		echo "ok - bench --quick runs (results in $BUILD/bench/RESULTS-quick.md)"
		passed=$((passed + 1))
	else
		cat "$log"
		echo "not ok - bench --quick failed"
		{ echo "not ok - bench --quick failed"; tail -n 12 "$log"; } >>"$FAILURES"
		failed=$((failed + 1))
	fi
	rm -f "$log"
}

if [ "$integration_only" -eq 0 ]; then
	run_unit_tests
fi
run_integration_tests
if [ "$integration_only" -eq 0 ]; then
	run_bench_quick
fi

if [ -s "$FAILURES" ]; then
	echo "# the failures again (CI shows the end of this output):"
	cat "$FAILURES"
fi
rm -f "$FAILURES"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
