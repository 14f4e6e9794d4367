#!/usr/bin/env bats
# Live policy changes (issue 12): `sandlock-runc egress ID --allow RULE --revoke RULE` on a
# running container, in kernel mode (the cgroup programs' maps switch) and in supervisor
# mode (the shim's own verdicts switch). Every verdict is judged at the listeners of the
# egress test network (egress.bash), for init and for exec'd processes, never by a return
# code alone. Addresses: $EG_A is allowed at create, $EG_D is what the changes add and
# revoke.

load helpers
load egress

setup_file() {
	egress_mode_setup
	egress_detect_enforcement
}

setup() {
	common_setup
	EG_LISTENERS=()
}

teardown() {
	unset SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER SANDLOCK_RUNC_SUPERVISOR_MODE SANDLOCK_RUNC_CONFIG
	if [ -n "${DNS_PID:-}" ]; then
		kill "$DNS_PID" 2>/dev/null
		wait "$DNS_PID" 2>/dev/null
		DNS_PID=
	fi
	common_teardown
	if [ -n "${NO_BPFFS_HOLDER:-}" ]; then
		kill "$NO_BPFFS_HOLDER" 2>/dev/null
		wait "$NO_BPFFS_HOLDER" 2>/dev/null
		NO_BPFFS_HOLDER=
	fi
	egress_teardown
}

# in_mode kernel|supervisor: the mode the next create runs in (egress.bash's switch).
in_mode() {
	EG_MODE=$1
	egress_mode_setup
}

# The init of the live tests: for each round I (0, 1, 2), once /tmp/goI exists, connects
# to $EG_D:$EG_P with payload init-I and writes its result line to /tmp/rI; then sleeps.
live_init() {
	echo "i=0
		while [ \$i -lt 3 ]; do
			if [ -e /tmp/go\$i ]; then
				/probe --label init-\$i connect tcp $EG_D $EG_P init-\$i >/tmp/r\$i
				i=\$((i + 1))
			fi
			sleep 0.05
		done
		exec sleep 1000"
}

# init_round ID I: lets init make its round I connect; prints its result line.
init_round() {
	local i
	rt exec "$1" touch "/tmp/go$2" || return 1
	for i in $(seq 200); do
		if rt exec "$1" cat "/tmp/r$2" 2>/dev/null | grep -q "^init-$2 "; then
			rt exec "$1" cat "/tmp/r$2"
			return 0
		fi
		sleep 0.05
	done
	echo "init did not report round $2" >&2
	return 1
}

# exec_probe ID LABEL: an exec'd process connects to $EG_D:$EG_P with payload LABEL.
exec_probe() {
	rt exec "$1" /probe --label "$2" connect tcp "$EG_D" "$EG_P" "$2"
}

# start_confined RULES: $ID, a running container allowed RULES whose init sleeps.
start_confined() {
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "$1")" || return 1
	start_container "$ID" "$BUNDLE" && wait_status "$ID" running
}

# rules_of ID: the container's allow rules as its egress.json now holds them, one a line.
rules_of() {
	rt egress --format json "$1" | jq -r '.policy.allow_rules[]'
}

# kernel_entries: the containers' entries in the egress programs' tables, every build's.
kernel_entries() {
	local t n=0
	for t in /sys/fs/bpf/sandlock-runc/*/policy_counters; do
		[ -e "$t" ] || continue
		n=$((n + $(bpftool -j map dump pinned "$t" | jq length)))
	done
	echo "$n"
}

# live_allow_revoke MODE: the change cycle, judged at the listeners.
live_allow_revoke() {
	in_mode "$1"
	egress_setup_net
	local entries_before
	entries_before=$(kernel_entries)
	new_id ID
	egress_bundle b "$(live_init)" "$(allow "$EG_A:$EG_P")"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	[ "$(rt egress --format json "$ID" | jq -r .enforcement)" = "$1" ]

	# before: refused for init and for an exec'd process
	output=$(init_round "$ID" 0; exec_probe "$ID" x-0; true)
	echo "$output"
	assert_refused init-0
	assert_refused x-0

	run rtq egress "$ID" --allow "$EG_D:$EG_P"
	echo "allow: $status $output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(rules_of "$ID" | sort | tr '\n' ' ')" = "$EG_A:$EG_P $EG_D:$EG_P " ]
	output=$(init_round "$ID" 1; exec_probe "$ID" x-1; true)
	echo "$output"
	assert_ok init-1
	assert_ok x-1
	# the rule added is that port only
	output=$(rt exec "$ID" /probe --label x-port connect tcp "$EG_D" "$EG_P2" x-port; true)
	assert_refused x-port

	run rtq egress "$ID" --revoke "$EG_D:$EG_P"
	echo "revoke: $status $output"
	[ "$status" -eq 0 ]
	[ "$(rules_of "$ID")" = "$EG_A:$EG_P" ]
	output=$(init_round "$ID" 2; exec_probe "$ID" x-2; rt exec "$ID" /probe --label x-a connect tcp "$EG_A" "$EG_P" x-a; true)
	echo "$output"
	assert_refused init-2
	assert_refused x-2
	assert_ok x-a

	settle
	show_listeners
	expect_count 1 received tcp "$EG_D" "$EG_P" init-1
	expect_count 1 received tcp "$EG_D" "$EG_P" x-1
	expect_count 1 received tcp "$EG_A" "$EG_P" x-a
	for l in init-0 x-0 init-2 x-2 x-port; do
		expect_count 0 received_anywhere "$l"
	done
	# exactly the two allowed rounds reached the address the change opened and closed
	# (each an accept and a data record)
	expect_count 4 received_at tcp "$EG_D" "$EG_P"
	expect_count 0 received_at tcp "$EG_D" "$EG_P2"
	# every version of the policy leaves the kernel's tables with the container, even when
	# its shim died after the changes (delete removes what it left)
	kill -9 $(shim_pids_of "$ID")
	rtq delete --force "$ID"
	[ "$(kernel_entries)" -eq "$entries_before" ]
}

@test "live: --allow opens a refused destination and --revoke closes it again, for init and exec'd processes (kernel mode)" {
	require_enforcement
	live_allow_revoke kernel
}

@test "live: --allow opens a refused destination and --revoke closes it again, for init and exec'd processes (supervisor mode)" {
	require_enforcement
	live_allow_revoke supervisor
}

# without_bpffs: from here the runtime (every rt call, the shims it starts) runs in a mount
# namespace of this test where bpffs is not mounted, as on a host whose init never mounts
# it. A process holds the namespace; teardown ends it after the containers.
without_bpffs() {
	local real=$RUNTIME
	unshare -m --propagation private sh -c 'while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 1; done; exec sleep 1000' &
	NO_BPFFS_HOLDER=$!
	local i
	for i in $(seq 100); do
		[ "$(readlink /proc/$NO_BPFFS_HOLDER/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
			[ "$(readlink /proc/$NO_BPFFS_HOLDER/exe)" = "$(readlink -f "$(command -v sleep)")" ] && break
		sleep 0.05
	done
	! nsenter -t "$NO_BPFFS_HOLDER" -m mountpoint -q /sys/fs/bpf
	RUNTIME=$BATS_TEST_TMPDIR/sandlock-runc-without-bpffs
	# (entering a mount namespace moves to its root: --wd keeps the caller's directory)
	printf '#!/bin/sh\nexec nsenter -t %s -m --wd="$PWD" %s "$@"\n' "$NO_BPFFS_HOLDER" "$real" >"$RUNTIME"
	chmod +x "$RUNTIME"
}

# change_and_probe ID --allow|--revoke RULE LABEL: the change, which must succeed, then an
# exec'd process's connect to $EG_D:$EG_P with payload LABEL (its result line in $output).
change_and_probe() {
	run rtq egress "$1" "$2" "$3"
	echo "$2: $status $output"
	[ "$status" -eq 0 ] || return 1
	output=$(exec_probe "$1" "$4"; true)
	echo "$output"
}

# The kernel keeps a UDP socket's last allowed destination in the socket's own storage
# (egress.bpf.c's last_sent): a revoke must reach a socket that has been sending there,
# at its next datagram. Supervisor mode: the shim judges every datagram with the policy of
# the moment.
live_udp_socket_revoked() {
	in_mode "$1"
	egress_setup_net
	start_confined "$EG_A:$EG_P;udp://$EG_D:$EG_P"
	rt exec "$ID" /probe --label u-held udp-hold "$EG_D" "$EG_P" u-held 100 /tmp/gate >"$BATS_TEST_TMPDIR/held.out" 2>&1 &
	local held=$! i
	for i in $(seq 200); do
		[ "$(received udp "$EG_D" "$EG_P" u-held-before)" -ge 1 ] && break
		sleep 0.05
	done
	[ "$(received udp "$EG_D" "$EG_P" u-held-before)" -ge 1 ]
	rtq egress "$ID" --revoke "udp://$EG_D:$EG_P"
	rt exec "$ID" touch /tmp/gate
	wait "$held" || true
	output=$(cat "$BATS_TEST_TMPDIR/held.out")
	echo "$output"
	local refused=EPERM  # the kernel's sendmsg program; the shim says ECONNREFUSED
	[ "$1" = supervisor ] && refused=ECONNREFUSED
	[[ "$(result u-held)" == "errno $refused at=after"* ]]
	settle
	show_listeners
	expect_count 0 received udp "$EG_D" "$EG_P" u-held-after
}

@test "live: --revoke refuses the next datagram of a UDP socket that was sending there (kernel mode)" {
	require_enforcement
	live_udp_socket_revoked kernel
}

@test "live: --revoke refuses the next datagram of a UDP socket that was sending there (supervisor mode)" {
	require_enforcement
	live_udp_socket_revoked supervisor
}

# A live change writes the programs' shared tables (the container's policy_ref entry and the
# outer maps). Without bpffs nothing is pinned: the shim has them only as fds from create.
@test "live: on a host without bpffs, --allow and --revoke still change a kernel-mode policy" {
	require_enforcement
	in_mode kernel
	egress_setup_net  # first: the test network's netns mounts must be in the namespace
	without_bpffs
	start_confined "$EG_A:$EG_P"
	[ "$(rt egress --format json "$ID" | jq -r .enforcement)" = kernel ]
	# create found no bpffs: the state records no pinned tables
	[ "$(jq -r .kernel_tables "$TEST_ROOT/$ID/state.json")" = "" ]
	output=$(exec_probe "$ID" x-0; true)
	assert_refused x-0
	change_and_probe "$ID" --allow "$EG_D:$EG_P" x-1
	assert_ok x-1
	change_and_probe "$ID" --revoke "$EG_D:$EG_P" x-2
	assert_refused x-2
	settle
	show_listeners
	expect_count 1 received tcp "$EG_D" "$EG_P" x-1
	expect_count 0 received_anywhere x-0
	expect_count 0 received_anywhere x-2
}

@test "live: after --revoke an established connection keeps working; new connections are refused at once" {
	require_enforcement
	egress_setup_net
	start_confined "$EG_A:$EG_P;$EG_D:$EG_P"
	rt exec "$ID" /probe --label held hold "$EG_D" "$EG_P" held /tmp/gate >"$BATS_TEST_TMPDIR/held.out" 2>&1 &
	local held=$! i
	# connected (the listener records the data at EOF: one record "held-beforeheld-after")
	for i in $(seq 200); do
		[ "$(received_at tcp "$EG_D" "$EG_P")" -ge 1 ] && break
		sleep 0.05
	done
	expect_count 1 received_at tcp "$EG_D" "$EG_P"
	rtq egress "$ID" --revoke "$EG_D:$EG_P"
	output=$(exec_probe "$ID" x-new; true)
	echo "$output"
	assert_refused x-new
	rt exec "$ID" touch /tmp/gate
	wait "$held"
	output=$(cat "$BATS_TEST_TMPDIR/held.out")
	echo "$output"
	assert_ok held
	settle
	show_listeners
	expect_count 1 received tcp "$EG_D" "$EG_P" held-beforeheld-after
	expect_count 0 received_anywhere x-new
}

@test "live: --allow of a host name resolves it and puts it in the container's /etc/hosts, whole" {
	require_enforcement
	egress_setup_net
	local hosts=$BATS_TEST_TMPDIR/hosts name=live-new.slit.test
	printf '127.0.0.1 localhost\n%s %s\n' "$EG_D" "$name" >"$hosts"
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "$EG_A:$EG_P")"
	# the shim resolves the name: it runs in the private resolver's namespace
	rtq_private_resolver "$hosts" create --bundle "$BUNDLE" "$ID"
	rtq start "$ID"
	wait_status "$ID" running
	run rt exec "$ID" /probe resolve "$name"
	echo "$output"
	[[ "$output" != *"$EG_D"* ]]
	# a reader of /etc/hosts throughout the change sees the old file or the new one, whole
	rt exec "$ID" sh -c 'while :; do n=$(grep -c . /etc/hosts); echo "$n"; [ -e /tmp/stop ] && break; done' \
		>"$BATS_TEST_TMPDIR/reads" &
	local reader=$!
	run rtq egress "$ID" --allow "$name:$EG_P"
	echo "allow: $status $output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	rt exec "$ID" touch /tmp/stop
	wait "$reader"
	sort "$BATS_TEST_TMPDIR/reads" | uniq -c
	# two line counts only: the old file's and the new one's (marker + one line)
	[ "$(sort -u "$BATS_TEST_TMPDIR/reads" | wc -l)" -le 2 ]
	run rt exec "$ID" cat /etc/hosts
	echo "$output"
	grep -qE "^${EG_D//./\\.}[[:space:]]+${name//./\\.}\$" <<<"$output"
	grep -q '^# added by sandlock-runc' <<<"$output"
	# still read-only for the container
	run rt exec "$ID" sh -c "echo '$EG_X $name' >>/etc/hosts"
	[ "$status" -ne 0 ]
	output=$(rt exec "$ID" /probe --label n-ok connect tcp "$name" "$EG_P" n-ok)
	echo "$output"
	assert_ok n-ok
	settle
	expect_count 1 received tcp "$EG_D" "$EG_P" n-ok
	# revoked, the name leaves the file too
	rtq egress "$ID" --revoke "$name:$EG_P"
	run rt exec "$ID" cat /etc/hosts
	! grep -q "$name" <<<"$output"
	# each change replaced the file mounted by the last: one mount, one copy, however many
	rtq egress "$ID" --allow "$name:$EG_P2"
	rtq egress "$ID" --revoke "$name:$EG_P2"
	[ "$(rt exec "$ID" grep -c ' /etc/hosts ' /proc/self/mountinfo)" -eq 1 ]
	[ "$(find "$TEST_ROOT/$ID" -name 'hosts.*' | wc -l)" -eq 1 ]
	# the host's own file is untouched
	! grep -q "$name" /etc/hosts
}

@test "live: a container's /etc/hosts that is a FIFO or a symlink out does not hang or leak: the policy changes, the file is left as it is" {
	require_enforcement
	egress_setup_net
	local hosts=$BATS_TEST_TMPDIR/hosts name=live-fifo.slit.test
	printf '127.0.0.1 localhost\n%s %s\n' "$EG_D" "$name" >"$hosts"
	new_id ID
	egress_bundle b "rm /etc/hosts; mkfifo /etc/hosts; exec sleep 1000" "$(allow "$EG_A:$EG_P")"
	rtq_private_resolver "$hosts" create --bundle "$BUNDLE" "$ID"
	rtq start "$ID"
	wait_status "$ID" running
	for i in $(seq 50); do rt exec "$ID" test -p /etc/hosts && break; sleep 0.1; done
	SECONDS=0
	run rtq egress "$ID" --allow "$name:$EG_P"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	[ "$SECONDS" -lt 10 ]
	[ "$output" = "warning: /etc/hosts not updated: the container's /etc/hosts is not a regular file" ]
	output=$(rt exec "$ID" /probe --label f-ok connect tcp "$EG_D" "$EG_P" f-ok; true)
	assert_ok f-ok
	# a symlink to a host path is read inside the container's root, never the host's
	local secret=$BATS_TEST_TMPDIR/secret
	echo "10.9.9.9 host-secret-$RANDOM$RANDOM" >"$secret"
	rt exec "$ID" sh -c "rm /etc/hosts && ln -s $secret /etc/hosts"
	run rtq egress "$ID" --allow "$name:$EG_P2"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	run rt exec "$ID" sh -c "cat /etc/hosts; cat $TEST_ROOT/$ID/hosts.* 2>/dev/null"
	echo "$output"
	! grep -q host-secret <<<"$output"
	! grep -q host-secret "$TEST_ROOT/$ID"/hosts.* 2>/dev/null
	settle
	expect_count 1 received tcp "$EG_D" "$EG_P" f-ok
}

@test "live: the operator's ceiling bounds --allow; bad changes fail with one line and change nothing" {
	require_enforcement
	egress_setup_net
	local config=$BATS_TEST_TMPDIR/config.yaml
	printf '%s\n' "ceiling: {allow: ['10.213.0.0/16:$EG_P']}" >"$config"
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "$EG_A:$EG_P")"
	rtq --config "$config" create --bundle "$BUNDLE" "$ID"
	rtq start "$ID"
	wait_status "$ID" running
	run rtq egress "$ID" --allow "$EG_D:$EG_P2"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "--allow: rule \"$EG_D:$EG_P2\" is outside the operator's ceiling" ]
	run rtq egress "$ID" --revoke "$EG_D:$EG_P"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "--revoke: rule \"$EG_D:$EG_P\" is not in the policy (\`sandlock-runc egress ID\` lists its rules)" ]
	run rtq egress "$ID" --allow "$EG_D:0"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "--allow: rule \"$EG_D:0\": port 0 is not valid"* ]]
	# inside the ceiling it works, and nothing of the refused changes got in
	rtq egress "$ID" --allow "$EG_D:$EG_P"
	[ "$(rules_of "$ID" | sort | tr '\n' ' ')" = "$EG_A:$EG_P $EG_D:$EG_P " ]
	output=$(rt exec "$ID" /probe --label c-p2 connect tcp "$EG_D" "$EG_P2" c-p2; exec_probe "$ID" c-ok; true)
	echo "$output"
	assert_refused c-p2
	assert_ok c-ok
	settle
	expect_count 0 received_anywhere c-p2
	expect_count 1 received tcp "$EG_D" "$EG_P" c-ok
}

@test "live: concurrent --allow and --revoke from many clients leave one consistent policy" {
	require_enforcement
	egress_setup_net
	start_confined "$EG_A:$EG_P"
	local i pids=()
	for i in $(seq 10 25); do
		rt egress "$ID" --allow "10.213.$EG_N.$i:$EG_P" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	[ "$(rules_of "$ID" | wc -l)" -eq 17 ]
	pids=()
	for i in $(seq 10 2 25); do
		rt egress "$ID" --revoke "10.213.$EG_N.$i:$EG_P" &
		pids+=($!)
	done
	# meanwhile an allow of the destination the container uses next
	rt egress "$ID" --allow "$EG_D:$EG_P" &
	pids+=($!)
	for i in "${pids[@]}"; do wait "$i"; done
	run rules_of "$ID"
	echo "$output"
	[ "${#lines[@]}" -eq 10 ]
	for i in $(seq 11 2 25); do grep -qx "10.213.$EG_N.$i:$EG_P" <<<"$output"; done
	for i in $(seq 10 2 25); do ! grep -qx "10.213.$EG_N.$i:$EG_P" <<<"$output"; done
	# what the kernel (or the shim) enforces is what the file says
	output=$(exec_probe "$ID" cc-ok)
	assert_ok cc-ok
	rtq egress "$ID" --revoke "$EG_D:$EG_P"
	output=$(exec_probe "$ID" cc-gone; true)
	assert_refused cc-gone
	settle
	expect_count 1 received tcp "$EG_D" "$EG_P" cc-ok
	expect_count 0 received_anywhere cc-gone
}

@test "live: only root reaches the control socket; the container cannot see it; a dead shim fails closed" {
	require_enforcement
	egress_setup_net
	start_confined "$EG_A:$EG_P"
	local sock=$TEST_ROOT/$ID/shim.sock
	[ -S "$sock" ]
	[ "$(stat -c %a "$sock")" = 600 ]
	# another user is turned away (by the state dir's and the socket's modes, and by the
	# shim's own check of the peer's credentials)
	run setpriv --reuid=nobody --regid=nogroup --clear-groups "$RUNTIME" --root "$TEST_ROOT" egress "$ID" --allow "$EG_D:$EG_P"
	echo "$output"
	[ "$status" -ne 0 ]
	run setpriv --reuid=nobody --regid=nogroup --clear-groups socat - "UNIX-CONNECT:$sock"
	[ "$status" -ne 0 ]
	# the container's processes do not have the path at all
	run rt exec "$ID" ls "$sock"
	[ "$status" -ne 0 ]
	[ "$(rules_of "$ID")" = "$EG_A:$EG_P" ]
	# a dead shim: the change fails with one line, the policy stays closed
	kill -9 $(shim_pids_of "$ID")
	run rtq egress "$ID" --allow "$EG_D:$EG_P"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "egress shim is not running: the policy cannot change (a dead shim fails closed)" ]
	output=$(exec_probe "$ID" dead 2>&1; true)
	echo "$output"
	settle
	expect_count 0 received_anywhere dead
}

@test "live: a container without a policy, a deny list and a stopped container refuse changes with one line" {
	new_id ID
	make_bundle b "$(args sleep 1000)"
	start_container "$ID" "$BUNDLE"
	run rtq egress "$ID" --allow "10.213.0.1:80"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "container $ID has no egress policy to change" ]
	run rtq egress "$ID"
	[ "$status" -eq 0 ]
	new_id ID2
	make_bundle b2 "$(args sleep 1000)" "$(deny private)"
	start_container "$ID2" "$BUNDLE"
	run rtq egress "$ID2" --allow "10.213.0.1:80"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "this container's policy is a deny list (io.sandlock.network.deny): only an allow list can change live" ]
	rtq kill "$ID2" KILL
	wait_status "$ID2" stopped
	run rtq egress "$ID2" --allow "10.213.0.1:80"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "cannot change the egress policy of a stopped container" ]
}

# dns_up ADDR NAME: a DNS server of the test's own (dnsmasq) on $EG_A:53, the host side of
# the test network, answering NAME with ADDR from $DNS_HOSTS with a TTL of 1 s and nothing
# else (no upstream, no host files). dns_move ADDR rewrites the answer.
dns_up() {
	DNS_HOSTS=$BATS_TEST_TMPDIR/dns-hosts DNS_NAME=$2
	printf '%s %s\n' "$1" "$2" >"$DNS_HOSTS"
	dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$DNS_HOSTS" \
		--local=/slit.test/ --local-ttl=1 --listen-address="$EG_A" --bind-interfaces --port=53 --user=root \
		--pid-file="$BATS_TEST_TMPDIR/dnsmasq.pid" --log-facility="$BATS_TEST_TMPDIR/dnsmasq.log" --log-queries &
	DNS_PID=$!
	local i
	for i in $(seq 100); do
		[ "$(getent_via_test_dns "$2")" = "$1" ] && return 0
		sleep 0.05
	done
	echo "dnsmasq did not answer" >&2
	cat "$BATS_TEST_TMPDIR/dnsmasq.log" >&2
	return 1
}

dns_move() {
	printf '%s %s\n' "$1" "$DNS_NAME" >"$DNS_HOSTS"
	kill -HUP "$DNS_PID"
}

# getent_via_test_dns NAME: NAME's first IPv4 address as the test's DNS server answers it.
getent_via_test_dns() {
	with_test_dns getent ahostsv4 "$1" | awk 'NR == 1 { print $1 }'
}

# with_test_dns CMD...: CMD in a private mount namespace whose /etc/resolv.conf names only
# the test's DNS server and whose /etc/nsswitch.conf says "hosts: dns": no query leaves
# the machine and no host file changes. Processes CMD leaves running (the shim) stay there.
with_test_dns() {
	local resolv=$BATS_TEST_TMPDIR/resolv.conf nss=$BATS_TEST_TMPDIR/nsswitch-dns.conf
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$EG_A" >"$resolv"
	echo "hosts: dns" >"$nss"
	timeout --kill-after=5 "$RT_TIMEOUT" unshare --mount --propagation private -- sh -c '
		mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf || exit 125
		if [ -S /var/run/nscd/socket ]; then mount -t tmpfs none /var/run/nscd || exit 125; fi
		shift 2
		exec "$@"' sh "$resolv" "$nss" "$@" 3>&-
}

# policy_addresses ID NAME: the addresses the container's policy holds for NAME, sorted.
policy_addresses() {
	rt egress --format json "$1" | jq -r --arg n "$2" '.policy.hosts[] | select(.name == $n) | .addresses[]' | sort
}

# wait_policy_addresses ID NAME WANT: until the policy holds exactly WANT (a sorted,
# space-separated list) for NAME, at most 20 s.
wait_policy_addresses() {
	local i
	for i in $(seq 200); do
		[ "$(policy_addresses "$1" "$2" | tr '\n' ' ')" = "$3" ] && return 0
		sleep 0.1
	done
	echo "policy for $2: '$(policy_addresses "$1" "$2" | tr '\n' ' ')', expected '$3'" >&2
	rt egress --format json "$1" | jq -c '{names, refresh: .policy.refresh}' >&2
	cat "$TEST_ROOT/$1/shim.log" >&2 2>/dev/null
	tail -5 "$BATS_TEST_TMPDIR/dnsmasq.log" >&2
	return 1
}

@test "live: names follow DNS: a moved name reaches its new address, the old one is refused after the grace, with a live change on top" {
	require_enforcement
	egress_setup_net
	local name=moving.slit.test config=$BATS_TEST_TMPDIR/config.yaml
	dns_up "$EG_D" "$name"
	printf '%s\n' "resolve: {refresh: true, min_interval: 1s, max_interval: 2s, grace: 6s}" >"$config"
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "$name:$EG_P")"
	with_test_dns "$RUNTIME" --root "$TEST_ROOT" --config "$config" create --bundle "$BUNDLE" "$ID"
	rtq start "$ID"
	wait_status "$ID" running
	[ "$(policy_addresses "$ID" "$name")" = "$EG_D" ]
	output=$(rt exec "$ID" /probe --label d-0 connect tcp "$name" "$EG_P" d-0
		rt exec "$ID" /probe --label x-0 connect tcp "$EG_X" "$EG_P" x-0; true)
	echo "$output"
	assert_ok d-0
	assert_refused x-0
	# a live change on top: another rule, kept through the refreshes below
	rtq egress "$ID" --allow "$EG_A:$EG_P2"

	# the name moves to $EG_X: allowed at once, $EG_D for the grace only
	dns_move "$EG_X"
	wait_policy_addresses "$ID" "$name" "$EG_D $EG_X "
	# egress ID shows the name's next lookup and the address in its grace
	run rt egress "$ID"
	echo "$output"
	grep -q "REFRESH IN" <<<"$output"
	grep -q "$EG_D (until [0-9]*s)" <<<"$output"
	output=$(rt exec "$ID" /probe --label x-1 connect tcp "$EG_X" "$EG_P" x-1
		rt exec "$ID" /probe --label d-1 connect tcp "$EG_D" "$EG_P" d-1; true)
	echo "$output"
	assert_ok x-1
	assert_ok d-1
	run rt exec "$ID" cat /etc/hosts
	echo "$output"
	grep -qE "^${EG_X//./\\.}[[:space:]]+${name//./\\.}\$" <<<"$output"

	# after the grace the old address is gone from the policy and from /etc/hosts
	wait_policy_addresses "$ID" "$name" "$EG_X "
	output=$(rt exec "$ID" /probe --label d-2 connect tcp "$EG_D" "$EG_P" d-2
		rt exec "$ID" /probe --label n-2 connect tcp "$name" "$EG_P" n-2
		rt exec "$ID" /probe --label a-2 connect tcp "$EG_A" "$EG_P2" a-2; true)
	echo "$output"
	assert_refused d-2
	assert_ok n-2
	assert_ok a-2
	run rt exec "$ID" cat /etc/hosts
	echo "$output"
	! grep -q "^$EG_D[[:space:]]" <<<"$output"
	[ "$(rules_of "$ID" | sort | tr '\n' ' ')" = "$EG_A:$EG_P2 $name:$EG_P " ]

	settle
	show_listeners
	expect_count 1 received tcp "$EG_D" "$EG_P" d-0
	expect_count 1 received tcp "$EG_X" "$EG_P" x-1
	expect_count 1 received tcp "$EG_D" "$EG_P" d-1
	expect_count 1 received tcp "$EG_X" "$EG_P" n-2
	expect_count 1 received tcp "$EG_A" "$EG_P2" a-2
	expect_count 0 received_anywhere x-0
	expect_count 0 received_anywhere d-2
}

# The learning tests' workload: a name from the container's /etc/hosts, an address
# without one, UDP, ping, loopback (never suggested), then EXTRA (a script line).
learn_workload() {
	echo "/probe --label l-name connect tcp learn-a.slit.test $EG_P l-name
		/probe --label l-addr connect tcp $EG_D $EG_P2 l-addr
		/probe --label l-udp sendto udp learn-a.slit.test $EG_P2 l-udp
		/probe --label l-ping ping $EG_A
		/probe --label l-lo connect tcp 127.0.0.1 9 l-lo
		$1
		true"
}

@test "learn: what a workload reached becomes the suggested allow list; confined by it, it still works and a new destination is refused" {
	require_enforcement
	egress_setup_net
	new_id ID
	egress_bundle b "$(learn_workload)
		exec sleep 1000" "$(annotation io.sandlock.network.learn true)"
	printf '%s learn-a.slit.test\n' "$EG_A" >>"$BUNDLE/rootfs/etc/hosts"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	[ "$(rt egress --format json "$ID" | jq -r .policy.learn)" = true ]
	local i
	for i in $(seq 100); do
		[ "$(received udp "$EG_A" "$EG_P2" l-udp)" -ge 1 ] && [ "$(counter icmp_allowed)" -ge 1 ] && break
		sleep 0.1
	done
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" l-name
	expect_count 1 received tcp "$EG_D" "$EG_P2" l-addr
	expect_count 1 received udp "$EG_A" "$EG_P2" l-udp
	run rt egress --suggest "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	local suggested
	suggested=$(jq -r '.["io.sandlock.network.allow"]' <<<"$output")
	[ "$suggested" = "$EG_D:$EG_P2;learn-a.slit.test:$EG_P;udp://learn-a.slit.test:$EG_P2;icmp://learn-a.slit.test" ]
	rtq delete --force "$ID"

	# the suggestion as the policy: the same workload works, a new destination is refused
	local hosts=$BATS_TEST_TMPDIR/hosts
	printf '127.0.0.1 localhost\n%s learn-a.slit.test\n' "$EG_A" >"$hosts"
	new_id ID2
	egress_bundle b2 "$(learn_workload "/probe --label l-new connect tcp $EG_X $EG_P l-new")" "$(allow "$suggested")"
	printf '%s learn-a.slit.test\n' "$EG_A" >>"$BUNDLE/rootfs/etc/hosts"
	run rtq_private_resolver "$hosts" run --bundle "$BUNDLE" "$ID2"
	echo "$output"
	assert_ok l-name
	assert_ok l-addr
	assert_ok l-udp
	assert_ok l-ping
	assert_refused l-new
	settle
	show_listeners
	expect_count 2 received tcp "$EG_A" "$EG_P" l-name
	expect_count 2 received tcp "$EG_D" "$EG_P2" l-addr
	expect_count 2 received udp "$EG_A" "$EG_P2" l-udp
	expect_count 0 received_anywhere l-new
}

@test "learn: refused with allow, deny or a profile, and beyond a ceiling; --suggest only in learning mode" {
	new_id ID
	egress_bundle b "true" "$(annotation io.sandlock.network.learn true)" "$(allow "10.213.0.1:80")"
	run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" "^io\.sandlock\.network\.learn: learning mode allows every destination: it cannot be combined with io\.sandlock\.network\.allow, io\.sandlock\.network\.deny or io\.sandlock\.network\.profile$"
	local config=$BATS_TEST_TMPDIR/config.yaml
	printf '%s\n' "ceiling: {allow: ['*:443']}" >"$config"
	egress_bundle b2 "true" "$(annotation io.sandlock.network.learn true)"
	run rtq --config "$config" create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" "^io\.sandlock\.network\.learn: learning mode allows every destination, beyond the operator's ceiling"
	egress_bundle b3 "exec sleep 1000" "$(allow "10.213.0.1:80")"
	start_container "$ID" "$BUNDLE"
	run rtq egress --suggest "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "container $ID is not in learning mode (io.sandlock.network.learn: \"true\")" ]
}
