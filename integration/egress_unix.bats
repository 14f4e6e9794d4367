#!/usr/bin/env bats
# Unix sockets under an egress policy, and the fd-swap attacks on the calls the shim
# lets through for them (issue 11), end to end: real containers in the egress test
# network (egress.bash: a netns joined to the host by a veth, listeners on the host side
# that record what arrives), every verdict judged at the listeners.
#
# In supervisor mode (no cgroup programs: forced with the test-only switch, as
# egress_supervisor.bats does) the shim performs every connect/sendto/sendmsg/sendmmsg on
# a unix socket itself, on its duplicate of the caller's socket, never CONTINUE: a thread
# that dup2()s an IP socket onto the fd number between a CONTINUE and the kernel's own fd
# lookup would otherwise send to, or connect to, an address nobody judged. So unix paths
# must resolve as the caller's would (its root, its cwd, its permissions), SCM_RIGHTS and
# SCM_CREDENTIALS must keep working, and the attacks must deliver nothing.
# integration/egress_unix_kernel.bats (a symlink to this file) runs the same tests in
# kernel mode, where the shim CONTINUEs a unix connect and the kernel's connect hook
# judges whatever socket the fd names by then (sends never wake the shim).
#
# The controls show that each attack really delivers where nothing stops it: without a
# policy, and, with SANDLOCK_OLD_RUNTIME=/path/to/an/older/sandlock-runc (one that
# CONTINUEs unix calls in supervisor mode), under the same policy with that runtime.
#
# The workload: helpers/unix_probe.c (static, copied into the busybox rootfs as /uprobe).

load helpers
load egress

case "$(basename "$BATS_TEST_FILENAME")" in
egress_unix_kernel.bats) EG_MODE=kernel EG_DGRAM_REFUSED=EPERM ;;
*) EG_MODE=supervisor EG_DGRAM_REFUSED=ECONNREFUSED ;;
esac
BATS_TEST_NAME_PREFIX="[$EG_MODE mode] "

# Rounds per attack (each needs at least one swap between calls).
EGU_ROUNDS=${EGU_ROUNDS:-3000}

setup_file() {
	egress_mode_setup
	egress_detect_enforcement
}

setup() {
	common_setup
	EG_LISTENERS=()
	EGU_PIDS=()
}

teardown() {
	local pid
	for pid in "${EGU_PIDS[@]}"; do
		# by pid, and only if it still is our host-side unix listener
		if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q unix_probe; then
			kill "$pid" 2>/dev/null
		fi
	done
	common_teardown
	egress_teardown
	[ -z "${EGU_HOSTDIR:-}" ] || rm -rf --one-file-system "$EGU_HOSTDIR"
}

unix_probe_bin() { static_helper_bin unix_probe; }

# unix_run SCRIPT [FILTERS...]: egress_run with /uprobe in the rootfs too, and the
# capabilities to change uid (as-user).
unix_run() {
	local script=$1 id probe
	shift
	probe=$(unix_probe_bin) || return 1
	new_id id
	egress_bundle "b-$id" "$script" \
		'.process.capabilities |= with_entries(.value += ["CAP_SETUID", "CAP_SETGID"])' "$@" || return 1
	cp "$probe" "$BUNDLE/rootfs/uprobe"
	[ -z "${EGU_BEFORE_RUN:-}" ] || "$EGU_BEFORE_RUN" "$BUNDLE" || return 1
	run_container "$id" "$BUNDLE"
	echo "--- container $id: status $status"
	echo "$output"
	echo "---"
}

# host_unix_listen KIND DIR NAME SECONDS LOG: a host-side unix listener (stream|dgram)
# at DIR/NAME (bound from DIR: a unix path has 107 bytes at most); its result line goes
# to LOG when it ends (after SECONDS).
host_unix_listen() {
	local kind=$1 dir=$2 name=$3 secs=$4 log=$5 probe
	probe=$(unix_probe_bin) || return 1
	(cd "$dir" && exec "$probe" --label host "listen-$kind" "$name" "$secs") >"$log" 2>&1 3>&- &
	EGU_PIDS+=("$!")
	# listening once it said so
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "host_unix_listen: $path did not start" >&2
	return 1
}

# host_result LOG KEY: a key=value of a host listener's final line (waits for it).
host_result() {
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q ' ok ' "$1" 2>/dev/null && break
		sleep 0.05
	done
	sed -n "s/.* ok .*\b$2=\([0-9]*\).*/\1/p" "$1"
}

# swap_script PREFIX [until-ip]: the attacks' lines, one per kind, the IP side at the
# refused address $EG_D:$EG_P (until-ip: go on until a call landed on the IP socket)
swap_script() {
	local prefix=$1 until=${2:-} k
	for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
		echo "/uprobe --label $prefix-$k swap $k $EG_D $EG_P $EGU_ROUNDS $until"
	done
	echo "echo all-done"
}

# deliveries KIND: what reached the refused address from the attack KIND: datagrams
# (sendmsg, sendmmsg) at the UDP listener, connections at the TCP listener.
deliveries() {
	case $1 in
	sendmsg | sendmmsg) received_at udp "$EG_D" "$EG_P" "uswap-$1-" ;;
	*) received_at tcp "$EG_D" "$EG_P" "uswap-$1-" ;;
	esac
}

# ---------------------------------------------------------------- unix sockets work

@test "unix sockets under a policy: named stream connect (absolute, relative), dgram sendto by path, SCM_RIGHTS, SCM_CREDENTIALS, sendmmsg, a 1 MiB stream" {
	require_enforcement
	egress_net_up
	unix_run "
		mkdir -p /tmp/u
		/uprobe --label f functions /tmp/u
		echo all-done
	" "$(allow "$EG_A:$EG_P")"
	[ "$status" -eq 0 ]
	has_line all-done
	local c
	for c in connect-abs connect-rel peercred sendmsg-rights recv-rights scm-creds creds-own creds-fake \
		sendto-path connect-dgram sendmmsg stream-1mib; do
		assert_ok "f-$c"
	done
}

# The shim resolves a unix path from the caller's root and cwd: a path that exists only
# outside the container's root (here: host-side listeners in this test's directory, not
# under the rootfs) does not resolve, by absolute path, by "..", or through a symlink in
# the rootfs; the same listeners' twins under the rootfs are reached. Permissions are the
# caller's: uid 1000 cannot connect through a directory only root may search.
@test "unix paths resolve inside the container's root, with the caller's permissions; never outside it" {
	require_enforcement
	egress_net_up
	# outside the rootfs, a short path (removed by teardown)
	EGU_HOSTDIR=$(mktemp -d /tmp/slitu.XXXXXX)
	local host=$EGU_HOSTDIR
	chmod 755 "$host"
	host_unix_listen stream "$host" s.sock 30 "$BATS_TEST_TMPDIR/out-s.log"
	host_unix_listen dgram "$host" d.sock 30 "$BATS_TEST_TMPDIR/out-d.log"
	# the rootfs side: created before the container starts (EGU_BEFORE_RUN)
	inside() {
		local rootfs=$1/rootfs
		mkdir -p "$rootfs/$host" "$rootfs/priv"
		chmod 700 "$rootfs/priv"
		ln -s "$host/s.sock" "$rootfs/link.sock"
		host_unix_listen stream "$rootfs/$host" s.sock 30 "$BATS_TEST_TMPDIR/in-s.log" &&
			host_unix_listen dgram "$rootfs/$host" d.sock 30 "$BATS_TEST_TMPDIR/in-d.log" &&
			host_unix_listen stream "$rootfs/priv" p.sock 30 "$BATS_TEST_TMPDIR/in-p.log"
	}
	EGU_BEFORE_RUN=inside
	unix_run "
		cd /tmp
		/uprobe --label abs connect $host/s.sock abs
		/uprobe --label dotdot connect ../../../../../../../..$host/s.sock dotdot
		/uprobe --label link connect /link.sock link
		/uprobe --label dg dgram $host/d.sock dg
		/uprobe --label dgdot dgram ../../../../../../..$host/d.sock dgdot
		/uprobe --label priv-root connect /priv/p.sock
		/uprobe --label priv-user as-user 1000 connect /priv/p.sock
		echo all-done
	" "$(allow "$EG_A:$EG_P")"
	EGU_BEFORE_RUN=
	has_line all-done
	# each reached the twin inside the rootfs
	for l in abs dotdot link dg dgdot priv-root; do
		assert_ok "$l"
	done
	assert_refused priv-user EACCES
	# the listeners print their counts when they end
	for p in "${EGU_PIDS[@]}"; do kill -USR1 "$p" 2>/dev/null; done
	echo "outside: $(cat "$BATS_TEST_TMPDIR/out-s.log" "$BATS_TEST_TMPDIR/out-d.log" | grep ' ok ' | tr '\n' ' ')"
	echo "inside: $(cat "$BATS_TEST_TMPDIR"/in-*.log | grep ' ok ' | tr '\n' ' ')"
	# nothing reached the host-side sockets outside the root
	expect_count 0 host_result "$BATS_TEST_TMPDIR/out-s.log" accepted
	expect_count 0 host_result "$BATS_TEST_TMPDIR/out-d.log" data
	# their twins in the root got every one
	expect_count 3 host_result "$BATS_TEST_TMPDIR/in-s.log" accepted
	expect_count 2 host_result "$BATS_TEST_TMPDIR/in-d.log" data
	expect_count 1 host_result "$BATS_TEST_TMPDIR/in-p.log" accepted
}

# A container that shares the host's network namespace shares its abstract unix names.
# Under a policy the container's Landlock domain scopes them (ABI 6): a connect to a name
# bound outside the domain fails with EPERM. In kernel mode the shim CONTINUEs unix
# connects and no cgroup program judges unix sockets, so the refusal is Landlock's alone
# (the ruleset init applies); in supervisor mode the shim refuses them itself. The
# control, without a policy, shows the name is reachable from the container.
@test "abstract unix names of the host's network namespace: reached without a policy, refused (EPERM) under one, nothing arrives" {
	require_enforcement
	local abi
	abi=$("$(unix_probe_bin)" landlock-abi)
	[ "$abi" -ge 6 ] || skip "this kernel's Landlock has no abstract unix scope (ABI $abi < 6)"
	local name=@sandlock-test-abs-$$-$RANDOM hostnet='.linux.namespaces |= map(select(.type != "network"))'
	host_unix_listen stream "$BATS_TEST_TMPDIR" "$name" 60 "$BATS_TEST_TMPDIR/ctl.log"
	unix_run "/uprobe --label ctl connect $name ctl; echo all-done" "$hostnet"
	has_line all-done
	assert_ok ctl
	kill -USR1 "${EGU_PIDS[-1]}"
	expect_count 1 host_result "$BATS_TEST_TMPDIR/ctl.log" accepted
	host_unix_listen stream "$BATS_TEST_TMPDIR" "$name" 60 "$BATS_TEST_TMPDIR/pol.log"
	unix_run "/uprobe --label abs connect $name abs; echo all-done" "$hostnet" "$(allow "$EG_A:$EG_P")"
	has_line all-done
	assert_refused abs EPERM
	kill -USR1 "${EGU_PIDS[-1]}"
	expect_count 0 host_result "$BATS_TEST_TMPDIR/pol.log" accepted
}

# ---------------------------------------------------------------- the fd-swap attacks

# Without a policy the calls that land on the IP socket reach the refused address: the
# attack itself works (and the listeners see it).
@test "control: without a policy the fd-swap attacks (sendmsg, sendmmsg, TFO sendto/sendmsg, connect) deliver" {
	[ "$EG_MODE" = supervisor ] || skip "the control runs once (no policy: the mode does not apply)"
	egress_setup_net
	unix_run "$(swap_script c until-ip)"
	has_line all-done
	settle
	show_listeners
	local k
	for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
		echo "control $k: $(result "c-$k") -> delivered $(deliveries "$k")"
		[ "$(deliveries "$k")" -gt 0 ]
	done
}

# An older runtime that CONTINUEs unix calls in supervisor mode, under the same policy:
# the race is won (the figures are printed). Set SANDLOCK_OLD_RUNTIME to run it.
@test "control: a runtime that CONTINUEs unix calls lets the fd-swap attacks through (SANDLOCK_OLD_RUNTIME)" {
	[ "$EG_MODE" = supervisor ] || skip "supervisor mode only"
	[ -n "${SANDLOCK_OLD_RUNTIME:-}" ] || skip "set SANDLOCK_OLD_RUNTIME to an older sandlock-runc to run it"
	require_enforcement
	egress_setup_net
	local saved=$RUNTIME
	RUNTIME=$SANDLOCK_OLD_RUNTIME
	unix_run "$(swap_script o until-ip)" "$(allow "$EG_A:$EG_P")"
	RUNTIME=$saved
	has_line all-done
	settle
	show_listeners
	local k total=0
	for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
		echo "old runtime $k: $(result "o-$k") -> delivered to the refused address: $(deliveries "$k")"
		total=$((total + $(deliveries "$k")))
	done
	[ "$total" -gt 0 ]
}

# The attacks under a policy that refuses $EG_D: the refused address receives nothing.
# Both sides of every race were hit: calls on the unix socket (its path does not exist:
# ENOENT; a name on an unconnected unix stream: EOPNOTSUPP) and calls the shim judged on
# the IP socket (refused: ECONNREFUSED; in kernel mode the kernel refuses sends, EPERM).
@test "attack: fd swaps onto unix sendmsg, sendmmsg, TFO sendto/sendmsg and connect never reach a refused address" {
	require_enforcement
	egress_setup_net
	unix_run "$(swap_script a)" "$(allow "$EG_A:$EG_P")"
	has_line all-done
	settle
	show_listeners
	local k
	for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
		echo "$k: $(result "a-$k") -> delivered $(deliveries "$k")"
	done
	for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
		expect_count 0 deliveries "$k"
		[ "$(field "a-$k" ip_connected)" = 0 ]
	done
	# the unix side was exercised...
	[ "$(errno_count a-sendmsg ENOENT)" -gt 0 ]
	[ "$(errno_count a-sendmmsg ENOENT)" -gt 0 ]
	[ "$(errno_count a-connect ENOENT)" -gt 0 ]
	[ "$(($(errno_count a-tfo-sendto EOPNOTSUPP) + $(errno_count a-tfo-sendto ENOTCONN)))" -gt 0 ]
	# ...and so was the IP side, refused
	if [ "$EG_MODE" = supervisor ]; then
		for k in sendmsg sendmmsg tfo-sendto tfo-sendmsg connect; do
			[ "$(errno_count "a-$k" ECONNREFUSED)" -gt 0 ]
		done
	else
		[ "$(errno_count a-connect ECONNREFUSED)" -gt 0 ]
		[ "$(errno_count a-sendmsg EPERM)" -gt 0 ]
	fi
	expect_count 0 counter to_denied
	expect_count 0 counter wire_denied
}
