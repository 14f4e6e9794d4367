#!/usr/bin/env bats
# Egress confinement end to end (issue 6): real containers in a test network namespace
# joined to the host by a veth pair, listeners on the host side, and every verdict judged
# by what the listeners (or nftables counters, for ICMP) received: a probe's return code
# alone never passes a test. Topology and helpers: egress.bash. The workload:
# helpers/egress_probe.c (static, runs in the busybox rootfs).
#
# The policy tests skip, with the reason, while the runtime's create refuses the
# io.sandlock.network annotations with "not enforced by this build" (detected once, in
# setup_file); the control test, which shows that every destination and every bypass
# below really delivers when nothing is enforced, and the bad-annotation tests whose
# error comes from the grammar, run whatever the build.
#
# Two modes (egress.bash): this file runs in kernel mode, integration/egress_supervisor.bats
# (a symlink to it) in supervisor mode; the few tests that only make sense in one mode
# say why at the test, and skip in the other file. A refused connect is ECONNREFUSED in
# both modes (but a UDP socket's connect to where only TCP is allowed: the kernel's connect
# hook refuses it), a refused datagram $EG_DGRAM_REFUSED (EPERM from the kernel's programs,
# ECONNREFUSED from the shim).
#
# Addresses (N differs per test): $EG_A = 10.213.N.1 and $EG_A6 = fd00:213:N::1 are the
# destinations a policy allows, $EG_D = 10.213.N.3 and $EG_D6 = fd00:213:N::3 the ones it
# does not, $EG_X = 10.213.N.4 the head-of-line test's black hole; ports $EG_P, $EG_P2.

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
	common_teardown
	egress_teardown
}

# nothing_reached_denied: not one packet from the container reached the denied addresses,
# and no listener there recorded anything from it.
nothing_reached_denied() {
	local proto port
	settle || return 1
	for proto in tcp udp; do
		for port in "${EG_PORTS[@]}"; do
			expect_count 0 received_at "$proto" "$EG_D" "$port" || return 1
			expect_count 0 received_at "$proto" "$EG_D6" "$port" || return 1
		done
	done
	expect_count 0 counter to_denied && expect_count 0 counter to_denied6 &&
		expect_count 0 counter wire_denied && expect_count 0 counter wire_denied6
}

# ---------------------------------------------------------------- control (no policy)

# (The controls run without a policy, where the mode does not apply: in one file only.)
@test "control: without a policy every destination and every bypass below delivers" {
	only_in kernel
	egress_setup_net
	egress_drop "$EG_P2"
	egress_run "
		cd /
		P=/probe
		\$P --label c-tcp connect tcp $EG_D $EG_P c-tcp
		\$P --label c-tcp6 connect tcp $EG_D6 $EG_P c-tcp6
		\$P --label c-udp sendto udp $EG_D $EG_P c-udp
		\$P --label c-msg sendmsg udp $EG_D $EG_P c-msg
		\$P --label c-uconn connect udp $EG_D $EG_P c-uconn
		\$P --label c-mmsg sendmmsg udp $EG_A $EG_P $EG_D $EG_P $EG_A $EG_P
		\$P --label c-ping ping $EG_D
		\$P --label c-ping6 ping $EG_D6
		\$P --label c-mapped connect6-mapped $EG_D $EG_P c-mapped
		\$P --label c-mapped-udp sendto6-mapped $EG_D $EG_P c-mapped-udp
		\$P --label c-tfo tfo $EG_D $EG_P c-tfo
		\$P --label c-raw raw $EG_D $EG_P
		\$P --label c-packet packet eth0 $EG_MAC $EG_C $EG_D $EG_P
		\$P --label c-iouring iouring $EG_D $EG_P c-iouring
		\$P --label c-fork fork-connect $EG_D $EG_P c-fork
		\$P --label c-thread thread-connect $EG_D $EG_P c-thread
		\$P --label c-exec exec-connect $EG_D $EG_P c-exec
		\$P --label c-flip flip-connect $EG_A $EG_D $EG_P 1000 peer_denied
		\$P --label c-flip-udp flip-sendto $EG_A $EG_D $EG_P 1000
		\$P --label c-flip-msg flip-sendmsg $EG_A $EG_D $EG_P 1000
		# (a port below the ephemeral range: the thousands of connects above may hold any port in it)
		nc -l -p 23300 >/tmp/lo.out </dev/null & nc=\$!
		# (until nc listens on 23300 = 0x5B04, at most 10 s; busybox nc listens on [::])
		i=0; until grep -q ':5B04 0*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null || [ \$i -ge 200 ]; do sleep 0.05; i=\$((i+1)); done
		\$P --label c-lo connect tcp 127.0.0.1 23300 c-lo
		# (nc ends with the connection; a refused connect must not hang the test)
		i=0; while kill -0 \$nc 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i+1)); done
		kill \$nc 2>/dev/null; wait \$nc
		echo \"lo-received \$(cat /tmp/lo.out)\"
		\$P --label c-hol connect tcp $EG_X $EG_P2 c-hol & hol=\$!
		# (its SYN is out once the socket is in SYN_SENT (02), at most 10 s; then it must hang)
		i=0; until grep -q ':$(printf %04X "$EG_P2") 02 ' /proc/net/tcp || [ \$i -ge 200 ]; do sleep 0.05; i=\$((i+1)); done
		sleep 1.5
		kill \$hol
		echo all-done
	"
	[ "$status" -eq 0 ]
	has_line all-done
	settle
	show_listeners
	for l in c-tcp c-mapped c-tfo c-iouring c-fork c-thread c-exec; do
		assert_ok "$l"
		expect_count 1 received tcp "$EG_D" "$EG_P" "$l"
	done
	assert_ok c-tcp6
	expect_count 1 received tcp "$EG_D6" "$EG_P" c-tcp6
	for l in c-udp c-msg c-uconn c-mapped-udp; do
		assert_ok "$l"
		expect_count 1 received udp "$EG_D" "$EG_P" "$l"
	done
	# sendmmsg: all three entries, the middle one at the other address
	[ "$(field c-mmsg ret)" = 3 ]
	expect_count 2 received_at udp "$EG_A" "$EG_P" c-mmsg-
	expect_count 1 received udp "$EG_D" "$EG_P" c-mmsg-2
	# ping sockets work in the netns and the counters see them
	[ "$(result c-ping)" = "ok reply=1" ]
	[ "$(result c-ping6)" = "ok reply=1" ]
	[ "$(counter icmp_denied)" -ge 1 ]
	[ "$(counter icmp6_denied)" -ge 1 ]
	# CAP_NET_RAW is granted: raw and packet sockets deliver unless the filter refuses them
	assert_ok c-raw
	assert_ok c-packet
	expect_count 1 received udp "$EG_D" "$EG_P" raw-bypass
	expect_count 1 received udp "$EG_D" "$EG_P" packet-bypass
	# the flipping threads really make the kernel see the denied address
	[ "$(field c-flip peer_denied)" -gt 0 ]
	[ "$(received_at tcp "$EG_D" "$EG_P" flip-)" -gt 0 ]
	[ "$(received_at udp "$EG_D" "$EG_P" flip-)" -gt 0 ]
	[ "$(received_at udp "$EG_A" "$EG_P" flip-)" -gt 0 ]
	# loopback inside the container's netns
	has_line "lo-received c-lo"
	# the head-of-line black hole: SYNs dropped, nothing accepted, the connect never returned
	[ "$(counter dropped)" -ge 1 ]
	expect_count 0 received_at tcp "$EG_X" "$EG_P2"
	[ -z "$(result c-hol)" ]
	[ "$(counter to_denied)" -gt 0 ]
}

# ---------------------------------------------------------------- allow-list basics

@test "allow: TCP reaches exactly the allowed address and port" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label t-ok connect tcp $EG_A $EG_P t-ok
		/probe --label t-port connect tcp $EG_A $EG_P2 t-port
		/probe --label t-addr connect tcp $EG_D $EG_P t-addr
		/probe --label t-v6 connect tcp $EG_A6 $EG_P t-v6
		/probe --label t-other connect tcp $EG_X $EG_P t-other
	" "$(allow "$EG_A:$EG_P")"
	settle
	show_listeners
	assert_ok t-ok
	expect_count 1 received tcp "$EG_A" "$EG_P" t-ok
	for l in t-port t-addr t-v6 t-other; do
		assert_refused "$l"
		expect_count 0 received_anywhere "$l"
	done
	expect_count 0 received_at tcp "$EG_A" "$EG_P2"
	expect_count 0 received_at tcp "$EG_A6" "$EG_P"
	expect_count 0 received_at tcp "$EG_X" "$EG_P"
	nothing_reached_denied
}

@test "allow: UDP rules, and a TCP rule never opens UDP nor a UDP rule TCP" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label u-ok sendto udp $EG_A $EG_P2 u-ok
		/probe --label m-ok sendmsg udp $EG_A $EG_P2 m-ok
		/probe --label u-addr sendto udp $EG_D $EG_P2 u-addr
		/probe --label m-addr sendmsg udp $EG_D $EG_P2 m-addr
		/probe --label u-port sendto udp $EG_A $EG_P u-port
		/probe --label t-ok connect tcp $EG_A $EG_P t-ok
		/probe --label t-udp-port connect tcp $EG_A $EG_P2 t-udp-port
		/probe --label uc-ok connect udp $EG_A $EG_P2 uc-ok
		/probe --label uc-tcp-port connect udp $EG_A $EG_P uc-tcp-port
	" "$(allow "udp://$EG_A:$EG_P2;$EG_A:$EG_P")"
	settle
	show_listeners
	assert_ok u-ok
	assert_ok m-ok
	assert_ok t-ok
	expect_count 1 received udp "$EG_A" "$EG_P2" u-ok
	expect_count 1 received udp "$EG_A" "$EG_P2" m-ok
	expect_count 1 received tcp "$EG_A" "$EG_P" t-ok
	for l in u-addr m-addr u-port; do
		assert_refused "$l" "$EG_DGRAM_REFUSED"
		expect_count 0 received_anywhere "$l"
	done
	assert_refused t-udp-port
	expect_count 0 received_anywhere t-udp-port
	# a connected UDP socket: its connect is judged, its sends are not again
	assert_ok uc-ok
	expect_count 1 received udp "$EG_A" "$EG_P2" uc-ok
	# UDP connecting where only TCP is allowed. Kernel mode: the shim lets a connect to
	# where TCP is allowed through without looking at the socket, and the kernel's connect
	# hook refuses the UDP socket (EPERM); supervisor mode: the shim (ECONNREFUSED).
	[[ "$(result uc-tcp-port)" == "errno $EG_DGRAM_REFUSED at=connect"* ]]
	expect_count 0 received_anywhere uc-tcp-port
	expect_count 0 received_at udp "$EG_A" "$EG_P"
	expect_count 0 received_at tcp "$EG_A" "$EG_P2"
	nothing_reached_denied
}

@test "allow: ICMP through ping sockets, judged by the host's counters" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label p-ok ping $EG_A
		/probe --label p-denied ping $EG_D
		/probe --label p-v6 ping $EG_A6
	" "$(allow "icmp://$EG_A;$EG_D:$EG_P;[$EG_A6]:$EG_P")"
	show_listeners
	[ "$(result p-ok)" = "ok reply=1" ]
	[ "$(counter icmp_allowed)" -ge 1 ]
	# a TCP rule for the address does not allow ping to it
	assert_refused p-denied "$EG_DGRAM_REFUSED"
	assert_ping6_refused p-v6
	expect_count 0 counter icmp_denied
	expect_count 0 counter icmp6_allowed
	nothing_reached_denied
}

@test "allow: a host name is resolved at create and written to the container's /etc/hosts" {
	require_enforcement
	egress_setup_net
	local hosts=$BATS_TEST_TMPDIR/hosts name=egress-ok.slit.test host_sum rootfs_sum
	printf '127.0.0.1 localhost\n%s %s\n%s %s\n%s egress-other.slit.test\n' \
		"$EG_A" "$name" "$EG_A6" "$name" "$EG_D" >"$hosts"
	new_id ID
	egress_bundle b "
		cat /etc/hosts
		/probe resolve $name
		/probe --label n-ok connect tcp $name $EG_P n-ok
		/probe --label n-ok6 connect tcp $EG_A6 $EG_P n-ok6
		/probe --label n-other connect tcp egress-other.slit.test $EG_P n-other
		/probe --label n-addr connect tcp $EG_D $EG_P n-addr
		if echo '$EG_D $name' >>/etc/hosts; then echo hosts-writable; else echo hosts-read-only; fi
		true
	" "$(allow "$name:$EG_P")"
	host_sum=$(cksum </etc/hosts)
	rootfs_sum=$(cksum <"$BUNDLE/rootfs/etc/hosts")
	run rtq_private_resolver "$hosts" run --bundle "$BUNDLE" "$ID"
	echo "status $status: $output"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	# the container's /etc/hosts: the rootfs's own lines, then the policy's names
	grep -qE '^127\.0\.0\.1[[:space:]]+localhost$' <<<"$output"
	grep -qE "^${EG_A//./\\.}[[:space:]]+${name//./\\.}\$" <<<"$output"
	grep -qE "^${EG_A6}[[:space:]]+${name//./\\.}\$" <<<"$output"
	[ -z "$(grep -v '^n-' <<<"$output" | grep egress-other)" ]
	has_line "resolve $name $EG_A"
	# the container cannot rewrite what its names resolve to
	has_line hosts-read-only
	assert_ok n-ok
	assert_ok n-ok6
	expect_count 1 received tcp "$EG_A" "$EG_P" n-ok
	expect_count 1 received tcp "$EG_A6" "$EG_P" n-ok6
	# a name the policy does not list is not in the container's /etc/hosts
	[ "$(result n-other)" = "errno ENONAME host=egress-other.slit.test" ]
	assert_refused n-addr
	expect_count 0 received_anywhere n-addr
	nothing_reached_denied
	# neither the host's nor the rootfs's file changed
	[ "$(cksum </etc/hosts)" = "$host_sum" ]
	[ "$(cksum <"$BUNDLE/rootfs/etc/hosts")" = "$rootfs_sum" ]
}

@test "allow: a :port rule allows that TCP port on every address, nothing else" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label a-1 connect tcp $EG_A $EG_P a-1
		/probe --label a-3 connect tcp $EG_D $EG_P a-3
		/probe --label a-6 connect tcp $EG_D6 $EG_P a-6
		/probe --label a-port connect tcp $EG_A $EG_P2 a-port
		/probe --label a-udp sendto udp $EG_A $EG_P a-udp
	" "$(allow ":$EG_P")"
	settle
	show_listeners
	assert_ok a-1
	assert_ok a-3
	assert_ok a-6
	expect_count 1 received tcp "$EG_A" "$EG_P" a-1
	expect_count 1 received tcp "$EG_D" "$EG_P" a-3
	expect_count 1 received tcp "$EG_D6" "$EG_P" a-6
	assert_refused a-port
	assert_refused a-udp "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere a-port
	expect_count 0 received_anywhere a-udp
	expect_count 0 received_at tcp "$EG_A" "$EG_P2"
	expect_count 0 received_at udp "$EG_A" "$EG_P"
}

@test "allow: a host:* rule allows every TCP port of that address only" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label h-1 connect tcp $EG_A $EG_P h-1
		/probe --label h-2 connect tcp $EG_A $EG_P2 h-2
		/probe --label h-addr connect tcp $EG_D $EG_P h-addr
		/probe --label h-udp sendto udp $EG_A $EG_P h-udp
	" "$(allow "$EG_A:*")"
	settle
	show_listeners
	assert_ok h-1
	assert_ok h-2
	expect_count 1 received tcp "$EG_A" "$EG_P" h-1
	expect_count 1 received tcp "$EG_A" "$EG_P2" h-2
	assert_refused h-addr
	assert_refused h-udp "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere h-addr
	expect_count 0 received_anywhere h-udp
	nothing_reached_denied
}

@test "allow: *:* allows every TCP destination, and only TCP" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label s-1 connect tcp $EG_A $EG_P s-1
		/probe --label s-3 connect tcp $EG_D $EG_P2 s-3
		/probe --label s-6 connect tcp $EG_D6 $EG_P s-6
		/probe --label s-udp sendto udp $EG_A $EG_P s-udp
		/probe --label s-ping ping $EG_A
	" "$(allow "*:*")"
	settle
	show_listeners
	assert_ok s-1
	assert_ok s-3
	assert_ok s-6
	expect_count 1 received tcp "$EG_A" "$EG_P" s-1
	expect_count 1 received tcp "$EG_D" "$EG_P2" s-3
	expect_count 1 received tcp "$EG_D6" "$EG_P" s-6
	assert_refused s-udp "$EG_DGRAM_REFUSED"
	assert_refused s-ping "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere s-udp
	expect_count 0 received_at udp "$EG_A" "$EG_P"
	expect_count 0 counter icmp_allowed
}

# ---------------------------------------------------------------- deny-list mode

# Every address of the test network is private, so this shows the refusals; the test
# below shows what deny mode lets through (a non-private destination would mean traffic
# leaving the machine).
@test "deny: private refuses the RFC 1918 and ULA destinations; loopback stays open" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label d-tcp connect tcp $EG_A $EG_P d-tcp
		/probe --label d-tcp3 connect tcp $EG_D $EG_P d-tcp3
		/probe --label d-udp sendto udp $EG_A $EG_P d-udp
		/probe --label d-msg sendmsg udp $EG_D $EG_P d-msg
		/probe --label d-ping ping $EG_A
		/probe --label d-v6 connect tcp $EG_A6 $EG_P d-v6
		/probe --label d-mapped connect6-mapped $EG_A $EG_P d-mapped
		nc -l -p 23300 >/tmp/lo.out </dev/null & nc=\$!
		# (until nc listens on 23300 = 0x5B04, at most 10 s; busybox nc listens on [::])
		i=0; until grep -q ':5B04 0*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null || [ \$i -ge 200 ]; do sleep 0.05; i=\$((i+1)); done
		/probe --label d-lo connect tcp 127.0.0.1 23300 d-lo
		# (nc ends with the connection; a refused connect must not hang the test)
		i=0; while kill -0 \$nc 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i+1)); done
		kill \$nc 2>/dev/null; wait \$nc
		echo \"lo-received \$(cat /tmp/lo.out)\"
	" "$(deny private)"
	settle
	show_listeners
	for l in d-tcp d-tcp3 d-v6 d-mapped; do
		assert_refused "$l"
		expect_count 0 received_anywhere "$l"
	done
	for l in d-udp d-msg d-ping; do
		assert_refused "$l" "$EG_DGRAM_REFUSED"
		expect_count 0 received_anywhere "$l"
	done
	for port in "${EG_PORTS[@]}"; do
		expect_count 0 received_at tcp "$EG_A" "$port"
		expect_count 0 received_at udp "$EG_A" "$port"
		expect_count 0 received_at tcp "$EG_A6" "$port"
	done
	expect_count 0 counter icmp_allowed
	nothing_reached_denied
	# loopback is not in `private` (io.sandlock.network.loopback decides, allow by default)
	assert_ok d-lo
	has_line "lo-received d-lo"
}

@test "deny: a CIDR entry denies every port and ICMP; a :port entry that port only" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label e-ok connect tcp $EG_A $EG_P e-ok
		/probe --label e-udp-ok sendto udp $EG_A $EG_P e-udp-ok
		/probe --label e-ping-ok ping $EG_A
		/probe --label e-ok6 connect tcp $EG_A6 $EG_P e-ok6
		/probe --label e-addr connect tcp $EG_D $EG_P e-addr
		/probe --label e-udp-addr sendto udp $EG_D $EG_P e-udp-addr
		/probe --label e-ping-addr ping $EG_D
		/probe --label e-addr6 connect tcp $EG_D6 $EG_P e-addr6
		/probe --label e-port connect tcp $EG_A $EG_P2 e-port
		/probe --label e-udp-port sendto udp $EG_A $EG_P2 e-udp-port
	" "$(deny "$EG_D/32;[$EG_D6];:$EG_P2")"
	settle
	show_listeners
	assert_ok e-ok
	assert_ok e-udp-ok
	assert_ok e-ok6
	[ "$(result e-ping-ok)" = "ok reply=1" ]
	expect_count 1 received tcp "$EG_A" "$EG_P" e-ok
	expect_count 1 received udp "$EG_A" "$EG_P" e-udp-ok
	expect_count 1 received tcp "$EG_A6" "$EG_P" e-ok6
	[ "$(counter icmp_allowed)" -ge 1 ]
	for l in e-addr e-addr6 e-port; do
		assert_refused "$l"
		expect_count 0 received_anywhere "$l"
	done
	for l in e-udp-addr e-ping-addr e-udp-port; do
		assert_refused "$l" "$EG_DGRAM_REFUSED"
		expect_count 0 received_anywhere "$l"
	done
	expect_count 0 received_at tcp "$EG_A" "$EG_P2"
	expect_count 0 received_at udp "$EG_A" "$EG_P2"
	expect_count 0 counter icmp_denied
	nothing_reached_denied
}

# ---------------------------------------------------------------- attacks

# The flipping thread cycles the sockaddr through AF_INET allowed, AF_INET denied, AF_UNIX
# (a shim that CONTINUEs non-IP families lets the kernel re-read it) and AF_INET6
# ::ffff:denied, with random dwell times. The control test shows the kernel does connect
# to the denied address under this attack when nothing is enforced. The probe goes on past
# its N calls until each outcome a test asserts was seen (at most 10*N calls or 30 s):
# a 2-core machine may take longer to produce a rare interleaving.
# Supervisor mode: the shim connects its duplicate of the socket to its own copy of the
# address. Kernel mode: the shim answers an allowed connect CONTINUE and the kernel reads
# the sockaddr again, by then often flipped: its connect hook refuses those (EPERM).
@test "attack: a thread flipping the sockaddr during connect, 3000+ times" {
	require_enforcement
	egress_setup_net
	local until=ok,ECONNREFUSED
	[ "$EG_MODE" = kernel ] && until+=,EPERM
	egress_run "/probe --label flip flip-connect $EG_A $EG_D $EG_P 3000 $until" "$(allow "$EG_A:$EG_P")"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	ok=$(field flip ok)
	echo "connects refused by the shim: $(errno_count flip ECONNREFUSED), allowed by the shim and refused by the kernel: $(errno_count flip EPERM)"
	# the race was run: some connects went through, some were refused
	[ "$ok" -gt 0 ]
	[ "$(errno_count flip ECONNREFUSED)" -gt 0 ]
	if [ "$EG_MODE" = kernel ]; then
		# the kernel judged flipped copies (the race was won against the shim's decision)
		[ "$(errno_count flip EPERM)" -gt 0 ]
	fi
	[ "$(field flip peer_denied)" = 0 ]
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
	# every connect that succeeded is one the allowed listener accepted
	expect_count "$ok" received_at tcp "$EG_A" "$EG_P" flip-
	nothing_reached_denied
}

# Supervisor mode: the shim copies the address once and sends to its copy. Kernel mode: the
# shim never sees these calls; the kernel copies the address once and its sendmsg hook
# judges that copy (EPERM).
@test "attack: a thread flipping the destination of sendto and sendmsg's msg_name, 3000+ times each" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label flip-to flip-sendto $EG_A $EG_D $EG_P 3000 ok,$EG_DGRAM_REFUSED
		/probe --label flip-msg flip-sendmsg $EG_A $EG_D $EG_P 3000 ok,$EG_DGRAM_REFUSED
	" "$(allow "udp://$EG_A:$EG_P")"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	ok_to=$(field flip-to ok)
	ok_msg=$(field flip-msg ok)
	[ "$ok_to" -gt 0 ]
	[ "$ok_msg" -gt 0 ]
	[ "$(errno_count flip-to "$EG_DGRAM_REFUSED")" -gt 0 ]
	[ "$(errno_count flip-msg "$EG_DGRAM_REFUSED")" -gt 0 ]
	expect_count 0 received_at udp "$EG_D" "$EG_P"
	# every datagram reported sent arrived at the allowed address
	expect_count "$((ok_to + ok_msg))" received_at udp "$EG_A" "$EG_P" flip-
	nothing_reached_denied
}

@test "attack: sendmmsg mixing allowed and denied entries sends only up to the first denied one" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label mix sendmmsg udp $EG_A $EG_P $EG_D $EG_P $EG_A $EG_P
		/probe --label first sendmmsg udp $EG_D $EG_P $EG_A $EG_P
		/probe --label all sendmmsg udp $EG_A $EG_P $EG_A $EG_P2
	" "$(allow "udp://$EG_A:$EG_P;udp://$EG_A:$EG_P2")"
	settle
	show_listeners
	[ "$(result mix)" = "ok ret=1" ]
	expect_count 1 received udp "$EG_A" "$EG_P" mix-1
	expect_count 0 received_anywhere mix-2
	expect_count 0 received_anywhere mix-3
	# the first entry refused: the call fails and nothing is sent
	assert_refused first "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere first-1
	expect_count 0 received_anywhere first-2
	[ "$(result all)" = "ok ret=2" ]
	expect_count 1 received udp "$EG_A" "$EG_P" all-1
	expect_count 1 received udp "$EG_A" "$EG_P2" all-2
	nothing_reached_denied
}

@test "attack: IPv4-mapped IPv6 destinations are judged as their IPv4 address" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label m-ok connect6-mapped $EG_A $EG_P m-ok
		/probe --label m-denied connect6-mapped $EG_D $EG_P m-denied
		/probe --label m-udp-ok sendto6-mapped $EG_A $EG_P m-udp-ok
		/probe --label m-udp-denied sendto6-mapped $EG_D $EG_P m-udp-denied
	" "$(allow "$EG_A:$EG_P;udp://$EG_A:$EG_P")"
	settle
	show_listeners
	assert_ok m-ok
	assert_ok m-udp-ok
	expect_count 1 received tcp "$EG_A" "$EG_P" m-ok
	expect_count 1 received udp "$EG_A" "$EG_P" m-udp-ok
	assert_refused m-denied
	assert_refused m-udp-denied "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere m-denied
	expect_count 0 received_anywhere m-udp-denied
	nothing_reached_denied
}

# Kernel mode: the sendto is not notified; the kernel's connect hook judges the implicit
# connect (EPERM). Supervisor mode: the shim judges it as a connect (ECONNREFUSED).
@test "attack: TCP Fast Open (sendto with MSG_FASTOPEN) is judged like connect" {
	require_enforcement
	egress_setup_net
	# client TFO without a cookie in the test netns: the data rides in the SYN
	ip netns exec "$EG_NS" sysctl -qw net.ipv4.tcp_fastopen=5
	egress_run "
		/probe --label f-denied tfo $EG_D $EG_P f-denied
		/probe --label f-denied6 tfo $EG_D6 $EG_P f-denied6
		/probe --label f-ok tfo $EG_A $EG_P f-ok
	" "$(allow "$EG_A:$EG_P")"
	settle
	show_listeners
	assert_refused f-denied "$EG_DGRAM_REFUSED"
	assert_refused f-denied6 "$EG_DGRAM_REFUSED"
	expect_count 0 received_anywhere f-denied
	expect_count 0 received_anywhere f-denied6
	assert_ok f-ok
	expect_count 1 received tcp "$EG_A" "$EG_P" f-ok
	nothing_reached_denied
}

# Everything allowed by destination, CAP_NET_RAW granted: only the egress filter stands
# between these and the listeners (the control test shows each of them delivers).
@test "attack: raw sockets, AF_PACKET and io_uring are refused even when every destination is allowed" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label r-raw raw $EG_D $EG_P
		/probe --label r-raw-cloexec raw $EG_D $EG_P cloexec
		/probe --label r-packet packet eth0 $EG_MAC $EG_C $EG_D $EG_P
		/probe --label r-iouring iouring $EG_D $EG_P r-iouring
	" "$(allow "*:*;udp://*:*;icmp://*")"
	settle
	show_listeners
	assert_refused r-raw EPERM
	assert_refused r-raw-cloexec EPERM
	assert_refused r-packet EAFNOSUPPORT
	assert_refused r-iouring EPERM
	expect_count 0 received_anywhere raw-bypass
	expect_count 0 received_anywhere packet-bypass
	expect_count 0 received_anywhere r-iouring
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
	expect_count 0 received_at udp "$EG_D" "$EG_P"
}

# UDP-Lite (IPPROTO_UDPLITE 136), SCTP (132), SOCK_SEQPACKET and SOCK_DCCP: IP sockets
# that no rule can judge are refused at socket() by the seccomp filter (EPROTONOSUPPORT),
# not only by the kernel program. The control shows a UDP-Lite datagram does reach the
# denied address when there is no policy (the nft counter of packets to it).
@test "attack: IP sockets the policy cannot judge (UDP-Lite, SCTP, SEQPACKET, DCCP) are refused with EPROTONOSUPPORT" {
	require_enforcement
	egress_setup_net
	egress_run "/probe --label c-lite proto-send 2 136 $EG_D $EG_P c-lite"
	assert_ok c-lite
	positive() { [ "$("$@")" -gt 0 ]; }
	eventually 10 positive counter to_denied
	local before
	before=$(counter to_denied)
	egress_run "
		/probe --label lite proto-send 2 136 $EG_D $EG_P lite
		/probe --label lite6 proto-send 2 136 $EG_D6 $EG_P lite6
		/probe --label lite-allowed proto-send 2 136 $EG_A $EG_P lite-allowed
		/probe --label sctp proto-send 1 132 $EG_D $EG_P sctp
		/probe --label seqpacket proto-send 5 0 $EG_D $EG_P seqpacket
		/probe --label dccp proto-send 6 0 $EG_D $EG_P dccp
		/probe --label udp sendto udp $EG_A $EG_P still-udp
	" "$(allow "*:*;udp://*:*")"
	settle
	show_listeners
	local label
	for label in lite lite6 lite-allowed sctp seqpacket dccp; do
		assert_refused "$label" EPROTONOSUPPORT
		[ "$(field "$label" at)" = socket ]
	done
	expect_count "$before" counter to_denied
	expect_count 0 counter to_denied6
	expect_count 1 received udp "$EG_A" "$EG_P" still-udp
}

@test "attack: connects from a forked child, a thread and a re-exec'd grandchild are confined" {
	require_enforcement
	egress_setup_net
	egress_run "
		for how in fork thread exec; do
			/probe --label \$how-ok \$how-connect $EG_A $EG_P \$how-ok
			/probe --label \$how-denied \$how-connect $EG_D $EG_P \$how-denied
		done
	" "$(allow "$EG_A:$EG_P")"
	settle
	show_listeners
	for how in fork thread exec; do
		assert_ok "$how-ok"
		expect_count 1 received tcp "$EG_A" "$EG_P" "$how-ok"
		assert_refused "$how-denied"
		expect_count 0 received_anywhere "$how-denied"
	done
	nothing_reached_denied
}

@test "attack: a process started with exec is bound by the same policy" {
	require_enforcement
	egress_setup_net
	new_id ID
	egress_bundle b "exec sleep 1000" "$(allow "$EG_A:$EG_P;udp://$EG_A:$EG_P")"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	run rt exec "$ID" /probe --label x-ok connect tcp "$EG_A" "$EG_P" x-ok
	echo "$status: $output"
	assert_ok x-ok
	run rt exec "$ID" /probe --label x-denied connect tcp "$EG_D" "$EG_P" x-denied
	echo "$status: $output"
	assert_refused x-denied
	run rt exec "$ID" /probe --label x-udp sendto udp "$EG_D" "$EG_P" x-udp
	echo "$status: $output"
	assert_refused x-udp "$EG_DGRAM_REFUSED"
	# and the exec'd process's own children
	run rt exec "$ID" /probe --label x-fork fork-connect "$EG_D" "$EG_P" x-fork
	echo "$status: $output"
	assert_refused x-fork
	settle
	show_listeners
	expect_count 1 received tcp "$EG_A" "$EG_P" x-ok
	for l in x-denied x-udp x-fork; do
		expect_count 0 received_anywhere "$l"
	done
	nothing_reached_denied
}

# ---------------------------------------------------------------- head of line

@test "head of line: a connect hanging on a dropped destination does not delay the others" {
	require_enforcement
	egress_setup_net
	# the policy allows $EG_X:$EG_P2, the host drops it: that connect hangs in SYN retries
	egress_drop "$EG_P2"
	new_id ID
	egress_bundle b "
		/probe --label hang connect tcp $EG_X $EG_P2 hang >/tmp/hang 2>&1 &
		until [ -e /tmp/go ]; do sleep 0.05; done
		/probe --label many connect-many $EG_A $EG_P 20 >/tmp/many.tmp 2>&1
		mv /tmp/many.tmp /tmp/many
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;$EG_X:$EG_P2")"
	start_container "$ID" "$BUNDLE"
	# the hanging connect is in flight once its SYN was dropped
	deadline=$((SECONDS + 10))
	until [ "$(counter dropped)" -ge 1 ]; do
		[ $SECONDS -lt $deadline ] || { echo "the dropped destination saw no SYN" >&2; false; }
		sleep 0.05
	done
	touch "$BUNDLE/rootfs/tmp/go"
	wait_file "$BUNDLE/rootfs/tmp/many" 20
	cat "$BUNDLE/rootfs/tmp/many"
	output=$(cat "$BUNDLE/rootfs/tmp/many")
	# 20 connects of another process (same listener fd) completed, each promptly
	assert_ok many
	[ "$(field many ok)" = 20 ]
	[ "$(field many max_ms)" -lt 5000 ] # the stuck one hangs ~127 s
	# an exec'd process (its own listener) too
	run rt exec "$ID" /probe --label exec-many connect-many "$EG_A" "$EG_P" 5
	echo "$status: $output"
	assert_ok exec-many
	[ "$(field exec-many max_ms)" -lt 5000 ]
	# ... while the first connect still hangs
	[ ! -s "$BUNDLE/rootfs/tmp/hang" ]
	settle
	show_listeners
	# 20 from init's child, 5 from the exec'd process
	expect_count 25 received_at tcp "$EG_A" "$EG_P" many-
	expect_count 0 received_at tcp "$EG_X" "$EG_P2"
}

# ---------------------------------------------------------------- fail closed

# Every call the shim judges fails with ENOSYS once it is gone (the notify listener is
# closed): in supervisor mode every connect and send, in kernel mode the connects. In
# kernel mode the datagrams never went through the shim: the kernel's programs still judge
# them, the allowed ones are delivered and the refused ones never leave. Fail closed
# either way: nothing the policy refuses gets out.
@test "a dead shim (kill -9) fails closed: nothing refused is delivered, state works, delete cleans up" {
	require_enforcement
	egress_setup_net
	new_id ID
	egress_bundle b "
		until [ -e /tmp/go1 ]; do sleep 0.05; done
		/probe --label before connect tcp $EG_A $EG_P before >/tmp/r1.tmp 2>&1
		mv /tmp/r1.tmp /tmp/r1
		until [ -e /tmp/go2 ]; do sleep 0.05; done
		{
			/probe --label after connect tcp $EG_A $EG_P after
			/probe --label after-denied connect tcp $EG_D $EG_P after-denied
			/probe --label after-udp sendto udp $EG_A $EG_P after-udp
			/probe --label after-udp-denied sendto udp $EG_D $EG_P after-udp-denied
			/probe --label after-ping ping $EG_A
			/probe --label after-ping-denied ping $EG_D
		} >/tmp/r2.tmp 2>&1
		mv /tmp/r2.tmp /tmp/r2
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;udp://$EG_A:$EG_P;icmp://$EG_A")"
	start_container "$ID" "$BUNDLE"
	# the shim works
	touch "$BUNDLE/rootfs/tmp/go1"
	wait_file "$BUNDLE/rootfs/tmp/r1" 20
	output=$(cat "$BUNDLE/rootfs/tmp/r1")
	echo "$output"
	assert_ok before
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" before
	# kill it
	[ -s "$TEST_ROOT/$ID/shim.pid" ]
	shim=$(cat "$TEST_ROOT/$ID/shim.pid")
	tr '\0' ' ' <"/proc/$shim/cmdline" | grep -q shim
	kill -9 "$shim"
	wait_gone "$shim"
	icmp_before=$(counter icmp_allowed)
	touch "$BUNDLE/rootfs/tmp/go2"
	wait_file "$BUNDLE/rootfs/tmp/r2" 20
	output=$(cat "$BUNDLE/rootfs/tmp/r2")
	echo "$output"
	assert_refused after ENOSYS
	assert_refused after-denied ENOSYS
	if [ "$EG_MODE" = kernel ]; then
		assert_ok after-udp
		[ "$(result after-ping)" = "ok reply=1" ]
		assert_refused after-udp-denied EPERM
		assert_refused after-ping-denied EPERM
	else
		for l in after-udp after-udp-denied after-ping after-ping-denied; do
			assert_refused "$l" ENOSYS
		done
	fi
	# state still works; exec refuses to run a process the dead shim cannot confine
	run rt state "$ID"
	echo "state: $status: $output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = running ]
	run rt exec "$ID" /probe --label exec-after connect tcp "$EG_A" "$EG_P" exec-after
	echo "exec: $status: $output"
	[ "$status" -ne 0 ]
	settle
	show_listeners
	expect_count 0 received_anywhere after
	expect_count 0 received_anywhere after-denied
	expect_count 0 received_anywhere after-udp-denied
	expect_count 0 received_anywhere exec-after
	expect_count 0 counter icmp_denied
	if [ "$EG_MODE" = kernel ]; then
		expect_count 1 received udp "$EG_A" "$EG_P" after-udp
		[ "$(counter icmp_allowed)" -gt "$icmp_before" ]
	else
		expect_count 0 received_anywhere after-udp
		expect_count "$icmp_before" counter icmp_allowed
	fi
	nothing_reached_denied
	# delete cleans up everything, the dead shim's files included
	run rt delete --force "$ID"
	echo "delete: $status: $output"
	[ "$status" -eq 0 ]
	assert_no_leftovers "$ID" "$BUNDLE"
	assert_no_shim "$ID"
}

@test "the shim: detached, outside the container's cgroup, 0600 socket, gone with the container" {
	require_enforcement
	new_id ID
	make_bundle b "$(allow "10.213.0.1:9")" "$(args sleep 1000)"
	create_container "$ID" "$BUNDLE"
	[ -s "$TEST_ROOT/$ID/shim.pid" ]
	shim=$(cat "$TEST_ROOT/$ID/shim.pid")
	init=$(state_of "$ID" pid)
	kill -0 "$shim"
	tr '\0' ' ' <"/proc/$shim/cmdline" | grep -q shim
	# the small sandlock-shim program when it lies next to the runtime (as `make` builds it)
	if [ -x "$(dirname "$(readlink -f "$RUNTIME")")/sandlock-shim" ]; then
		[ "$(readlink -f "/proc/$shim/exe")" = "$(dirname "$(readlink -f "$RUNTIME")")/sandlock-shim" ]
	fi
	# its own session, stdio on /dev/null, no fd of ours (create's stdout was init.out)
	[ "$(ps -o sid= -p "$shim" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ]
	for fd in 0 1 2; do
		[ "$(readlink "/proc/$shim/fd/$fd")" = /dev/null ]
	done
	for fd in /proc/"$shim"/fd/*; do
		[[ "$(readlink "$fd")" != "$BUNDLE"* ]]
	done
	# not in the container's cgroup (a cgroup kill or freeze of the container spares it)
	[ "$(cat "/proc/$shim/cgroup")" != "$(cat "/proc/$init/cgroup")" ]
	# the control socket
	[ -S "$TEST_ROOT/$ID/shim.sock" ]
	[ "$(stat -c %a "$TEST_ROOT/$ID/shim.sock")" = 600 ]
	# it exits by itself once the container's processes are gone
	rt start "$ID"
	rt kill "$ID" KILL
	wait_status "$ID" stopped
	wait_gone "$shim" 10
	rt delete "$ID"
	assert_no_leftovers "$ID" "$BUNDLE"
	assert_no_shim "$ID"
}

@test "audit=all: egress ID prints the rules, the counters and each decision" {
	require_enforcement
	egress_setup_net
	new_id ID
	egress_bundle b "
		/probe --label au-ok connect tcp $EG_A $EG_P au-ok
		/probe --label au-denied connect tcp $EG_D $EG_P2 au-denied
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P")" "$(annotation io.sandlock.audit all)"
	start_container "$ID" "$BUNDLE"
	deadline=$((SECONDS + 10))
	until grep -q '^au-denied ' "$BUNDLE/init.out"; do
		[ $SECONDS -lt $deadline ] || false
		sleep 0.05
	done
	cat "$BUNDLE/init.out"
	run rt egress "$ID"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	grep -qF "$EG_A" <<<"$output"
	grep -qF "$EG_D" <<<"$output"
	grep -qF "$EG_P2" <<<"$output"
	grep -qiE 'allow' <<<"$output"
	grep -qiE 'deny|denied|refuse' <<<"$output"
	if [ "$EG_MODE" = kernel ]; then
		grep -qE '^enforced by: +kernel \(cgroup BPF programs\) and the shim$' <<<"$output"
	else
		grep -qE '^enforced by: +supervisor mode \(the shim alone: no kernel programs\)$' <<<"$output"
	fi
	[ "$(rt egress --format json "$ID" | jq -r .enforcement)" = "$EG_MODE" ]
	# every connect is in audit.log, the allowed one too (with allowed calls recorded, kernel
	# mode's shim never lets a connect through on its address alone)
	local log=$TEST_ROOT/$ID/audit.log
	cat "$log"
	[ "$(jq -s --arg d "$EG_A" '[.[] | select(.syscall == "connect" and .verdict == "allow" and .destination == $d)] | length' "$log")" = 1 ]
	[ "$(jq -s --arg d "$EG_D" '[.[] | select(.syscall == "connect" and .verdict == "deny" and .destination == $d)] | length' "$log")" = 1 ]
}

# The audit log cannot make anything outside the container's cgroup grow without bound:
# a flood of refused connects with audit=deny is rate-limited (what is dropped is counted
# in a "suppressed" record) and the log rotates once at its size cap (16 MiB by default;
# SANDLOCK_RUNC_AUDIT_MAX_SIZE in the runtime's environment), so audit.log + audit.log.1
# stay under twice the cap. The container's allowed traffic still works afterwards.
@test "audit: 200,000 refused connects leave audit.log + its rotation under 2x the cap, rate-limited and counted" {
	require_enforcement
	egress_setup_net
	local id log dir bytes
	for cap in default 65536; do
		new_id id
		egress_bundle "b-$id" "
			/probe --label flood connect-many $EG_D $EG_P 200000
			/probe --label after connect tcp $EG_A $EG_P audit-after-$cap
		" "$(allow "$EG_A:$EG_P")" "$(annotation io.sandlock.audit deny)"
		if [ "$cap" = default ]; then
			run rtq run --keep --bundle "$BUNDLE" "$id"
		else
			run env SANDLOCK_RUNC_AUDIT_MAX_SIZE=$cap timeout 120 "$RUNTIME" --root "$TEST_ROOT" run --keep --bundle "$BUNDLE" "$id" </dev/null 3>&-
		fi
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$(field flood ok)" = 0 ]
		[ "$(field flood first_errno)" = ECONNREFUSED ]
		assert_ok after
		dir=$TEST_ROOT/$id
		bytes=$(cat "$dir"/audit.log "$dir"/audit.log.1 2>/dev/null | wc -c)
		echo "cap $cap: audit.log $(stat -c %s "$dir/audit.log") bytes, audit.log.1 $(stat -c %s "$dir/audit.log.1" 2>/dev/null || echo -) bytes, $(cat "$dir"/audit.log* | grep -c '"verdict"') decisions recorded, $(cat "$dir"/audit.log* | jq -s '[.[] | .suppressed // 0] | add') suppressed"
		# every line is a JSON record; the flood was rate-limited and the drops counted
		cat "$dir"/audit.log* | jq -e . >/dev/null
		[ "$(cat "$dir"/audit.log* | jq -s '[.[] | .suppressed // 0] | add')" -gt 0 ]
		# audit=deny: refusals only (the allowed connect after the flood is not recorded)
		[ "$(cat "$dir"/audit.log* | jq -s '[.[] | select(.verdict == "allow")] | length')" = 0 ]
		if [ "$cap" = default ]; then
			[ "$bytes" -lt $((32 << 20)) ]
		else
			# rotated, and each file within the cap
			[ -e "$dir/audit.log.1" ]
			[ "$(stat -c %s "$dir/audit.log")" -le "$cap" ]
			[ "$(stat -c %s "$dir/audit.log.1")" -le "$cap" ]
		fi
		rt delete "$id"
	done
	settle
	expect_count 1 received tcp "$EG_A" "$EG_P" audit-after-default
	expect_count 1 received tcp "$EG_A" "$EG_P" audit-after-65536
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
}

# Fail closed: where the kernel programs cannot be attached (forced here by the
# runtime's test-only environment switch), create refuses the policy unless supervisor
# mode is allowed; allowed, the shim alone enforces it, and says so. (Kernel mode's file
# only: the supervisor copy runs every test with that switch and the permission set.)
@test "supervisor mode: without the kernel layer create fails closed unless allowed; allowed, the shim enforces alone" {
	only_in kernel
	require_enforcement
	egress_setup_net
	local id dir rel
	new_id id
	egress_bundle "b-$id" "
		/probe --label sv-ok connect tcp $EG_A $EG_P sv-ok
		/probe --label sv-denied connect tcp $EG_D $EG_P sv-denied
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P")"
	# (stdio on a file, not under `run`: a runtime that wrongly starts the container must
	# not leave its init holding the test's pipe)
	rt_no_kernel_layer() {
		status=0
		env SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1 timeout 60 "$RUNTIME" --root "$TEST_ROOT" "$@" \
			</dev/null 3>&- >"$BATS_TEST_TMPDIR/nkl.out" 2>&1 || status=$?
		output=$(cat "$BATS_TEST_TMPDIR/nkl.out")
	}
	rt_no_kernel_layer create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" \
		'^egress: the kernel layer is switched off for a test .*refusing to run the policy without the kernel layer .*SANDLOCK_RUNC_SUPERVISOR_MODE=allow\)$'
	[ "$(grep -c . <<<"$output")" -eq 1 ]
	assert_no_shim "$id"
	# --supervisor-mode deny is the same; allow (flag or environment) runs it
	rt_no_kernel_layer --supervisor-mode deny create --bundle "$BUNDLE" "$id"
	[ "$status" -eq 1 ]
	# (not under `run`: the container's init keeps the stdout it is given)
	env SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1 SANDLOCK_RUNC_SUPERVISOR_MODE=allow \
		timeout 60 "$RUNTIME" --root "$TEST_ROOT" create --bundle "$BUNDLE" "$id" \
		</dev/null 3>&- >"$BUNDLE/init.out" 2>"$BATS_TEST_TMPDIR/create.err" ||
		{ cat "$BATS_TEST_TMPDIR/create.err"; false; }
	cat "$BATS_TEST_TMPDIR/create.err"
	grep -q 'supervisor mode: the seccomp supervisor enforces the policy alone' "$BATS_TEST_TMPDIR/create.err"
	rel=$(sed -n 's/^0:://p' "/proc/$(state_of "$id" pid)/cgroup")
	dir=/sys/fs/cgroup/unified$rel
	[ -d "$dir" ] || dir=/sys/fs/cgroup$rel
	run "$(egress_probe_bin)" --label progs cgroup-progs "$dir"
	[ "$output" = "progs ok sock_create=0 connect4=0 connect6=0 sendmsg4=0 sendmsg6=0 inet_egress=0 sock_release=0" ]
	rt start "$id"
	eventually 10 grep -q '^sv-denied ' "$BUNDLE/init.out"
	cat "$BUNDLE/init.out"
	run rt egress "$id"
	echo "$output"
	grep -qE '^enforced by: +supervisor mode \(the shim alone: no kernel programs\)$' <<<"$output"
	[ "$(rt egress --format json "$id" | jq -r .enforcement)" = supervisor ]
	settle
	show_listeners
	expect_count 1 received tcp "$EG_A" "$EG_P" sv-ok
	expect_count 0 received_anywhere sv-denied
	nothing_reached_denied
}

# ---------------------------------------------------------------- bad annotations

# bad_annotation KEY VALUE MESSAGE: create fails with exit 1, an error containing MESSAGE
# (literally), and nothing left behind. Names resolve from an empty hosts file.
bad_annotation() {
	local key=$1 value=$2 message=$3 id pattern
	new_id id
	make_bundle "b-$id" "$(annotation "$key" "$value")" "$(args sleep 1000)"
	: >"$BATS_TEST_TMPDIR/hosts.empty"
	run rtq_private_resolver "$BATS_TEST_TMPDIR/hosts.empty" create --bundle "$BUNDLE" "$id"
	pattern=$(sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$message")
	echo "[$key = '$value']"
	assert_fails_cleanly "$id" "$BUNDLE" "$pattern" || return 1
	assert_no_shim "$id"
}

# (This test and the next are about create's parsing of the annotations, done before a
# layer is chosen: the same in both modes; they run in egress.bats only.)
@test "bad annotations: every allow-rule grammar error fails create, names the rule and the reason" {
	only_in kernel
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotations"
	local k=io.sandlock.network.allow
	bad_annotation $k "ftp://10.213.0.1:21" "$k: rule \"ftp://10.213.0.1:21\": unknown scheme \"ftp://\""
	bad_annotation $k "10.213.0.1" "$k: rule \"10.213.0.1\": expected \"host:port\" or \":port\""
	bad_annotation $k "10.213.0.1:http" "$k: rule \"10.213.0.1:http\": invalid port \"http\""
	bad_annotation $k "10.213.0.1:" "$k: rule \"10.213.0.1:\": invalid port \"\""
	bad_annotation $k "10.213.0.1:65536" "$k: rule \"10.213.0.1:65536\": invalid port \"65536\""
	bad_annotation $k "10.213.0.1:0" "$k: rule \"10.213.0.1:0\": port 0 is not valid"
	bad_annotation $k "10.213.0.1:*,80" "$k: rule \"10.213.0.1:*,80\": cannot mix \"*\" with concrete ports"
	bad_annotation $k "icmp://10.213.0.1:80" "$k: rule \"icmp://10.213.0.1:80\": icmp rules take no port"
	bad_annotation $k "icmp://" "$k: rule \"icmp://\": icmp rule needs a host or \"*\""
	bad_annotation $k "[fd00::1:80" "$k: rule \"[fd00::1:80\": missing \"]\""
	bad_annotation $k "[fd00::1]x:80" "$k: rule \"[fd00::1]x:80\": unexpected \"x:80\" after \"]\""
	bad_annotation $k "[fd00::zz]:80" "$k: rule \"[fd00::zz]:80\": invalid IPv6 address \"fd00::zz\""
	bad_annotation $k "10.0.0.300/8:80" "$k: rule \"10.0.0.300/8:80\": invalid network address \"10.0.0.300\""
	bad_annotation $k "10.0.0.0/33:80" "$k: rule \"10.0.0.0/33:80\": invalid prefix length \"33\""
	# the bad rule of a list is the one named
	bad_annotation $k "10.213.0.1:80;ftp://x:1" "$k: rule \"ftp://x:1\": unknown scheme"
	bad_annotation $k "" "$k: empty value"
	bad_annotation $k " ; " "$k: no entries"
}

@test "bad annotations: deny, allow_bind, loopback, audit and unknown keys fail create cleanly" {
	only_in kernel
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotations"
	local d=io.sandlock.network.deny b=io.sandlock.network.allow_bind
	bad_annotation $d "example.com" "$d: rule \"example.com\": expected an IP address, a CIDR or \"private\""
	bad_annotation $d "fd00::1" "$d: rule \"fd00::1\": IPv6 addresses must be in brackets"
	bad_annotation $d "10.0.0.0/40" "$d: rule \"10.0.0.0/40\": invalid prefix length \"40\""
	bad_annotation $d "10.213.0.1:0" "$d: rule \"10.213.0.1:0\": port 0 is not valid"
	bad_annotation $d "" "$d: empty value"
	bad_annotation $b "0" "$b: rule \"0\": port 0 is not valid"
	bad_annotation $b "9000-8000" "$b: rule \"9000-8000\": invalid port range"
	bad_annotation $b "http" "$b: rule \"http\": invalid port \"http\""
	bad_annotation io.sandlock.network.loopback "maybe" \
		"io.sandlock.network.loopback: invalid value \"maybe\" (expected allow, deny)"
	bad_annotation io.sandlock.audit "verbose" "io.sandlock.audit: invalid value \"verbose\" (expected off, deny, all)"
	bad_annotation io.sandlock.network.alow "10.213.0.1:80" "io.sandlock.network.alow: unknown annotation"
}

# A process with CAP_NET_ADMIN can replace the route to an allowed address, NAT or
# tunnel around every socket-level check; CAP_SYS_ADMIN can leave the cgroup the kernel
# programs hang on; CAP_SYS_MODULE and CAP_BPF load code no check sees. Under a policy
# they are refused in every set, at create and at exec, with one line.
@test "capabilities: a policy refuses NET_ADMIN, SYS_ADMIN, SYS_MODULE and BPF in every set, at create and exec" {
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotations"
	local k=io.sandlock.network.allow cap set id
	for cap in CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_MODULE CAP_BPF; do
		for set in bounding effective inheritable permitted ambient; do
			new_id id
			make_bundle "b-$id" "$(args true)" "$(allow 10.213.0.1:9)" \
				".process.capabilities.$set = ((.process.capabilities.$set // []) + [\"$cap\"])"
			run rtq create --bundle "$BUNDLE" "$id"
			assert_fails_cleanly "$id" "$BUNDLE" \
				"^\\.process\\.capabilities\\.$set: $cap cannot be granted under $k: " || return 1
			[ "$(grep -c . <<<"$output")" -eq 1 ] || { echo "not one line: $output"; false; }
		done
	done
	# Control: the same capability without a policy is granted (the refusal is the policy's).
	new_id id
	make_bundle "b-$id" "$(args sh -c 'grep CapBnd /proc/self/status')" \
		'.process.capabilities.bounding += ["CAP_NET_ADMIN"]'
	run_container "$id" "$BUNDLE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"CapBnd:"* ]]
	# exec: --cap and a process.json carrying one are refused; the container keeps running.
	new_id id
	make_bundle "b-$id" "$(args sleep 600)" "$(allow 10.213.0.1:9)"
	run rtq run -d --bundle "$BUNDLE" "$id"
	[ "$status" -eq 0 ]
	run rtq exec --cap CAP_NET_ADMIN "$id" true
	[ "$status" -eq 1 ]
	[[ "$output" == ".process.capabilities.bounding: CAP_NET_ADMIN cannot be granted under $k: "* ]]
	jq '.process | .args = ["true"] | .capabilities.ambient = ["CAP_BPF"] | .capabilities.permitted += ["CAP_BPF"] | .capabilities.inheritable = ["CAP_BPF"]' \
		"$BUNDLE/config.json" >"$BATS_TEST_TMPDIR/process.json"
	run rtq exec --process "$BATS_TEST_TMPDIR/process.json" "$id"
	[ "$status" -eq 1 ]
	[[ "$output" == ".process.capabilities."*": CAP_BPF cannot be granted under $k: "* ]]
	run rtq exec "$id" true
	[ "$status" -eq 0 ]
}

@test "bad annotations: allow and deny together fail create cleanly" {
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotations"
	new_id ID
	make_bundle b "$(allow "10.213.0.1:80")" "$(deny private)" "$(args sleep 1000)"
	run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" \
		'io\.sandlock\.network\.deny: cannot be combined with io\.sandlock\.network\.allow'
	assert_no_shim "$ID"
}

@test "bad annotations: an unresolvable host fails create, the host named, nothing left" {
	require_enforcement
	# resolution happens at create; names come from the test's hosts file only (no DNS)
	printf '127.0.0.1 localhost\n' >"$BATS_TEST_TMPDIR/hosts"
	new_id ID
	make_bundle b "$(allow "10.213.0.1:80;nope.invalid:443")" "$(args sleep 1000)"
	run rtq_private_resolver "$BATS_TEST_TMPDIR/hosts" create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'io\.sandlock\.network\.allow: cannot resolve host "nope\.invalid"'
	assert_no_shim "$ID"
	# the same name in the test's hosts file resolves: the failure was the name
	printf '10.213.0.1 nope.invalid\n' >>"$BATS_TEST_TMPDIR/hosts"
	new_id ID2
	make_bundle b2 "$(allow "10.213.0.1:80;nope.invalid:443")" "$(args true)"
	run rtq_private_resolver "$BATS_TEST_TMPDIR/hosts" create --bundle "$BUNDLE" "$ID2"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	run rt delete --force "$ID2"
	[ "$status" -eq 0 ]
	assert_no_shim "$ID2"
}

@test "a policy and an OCI seccomp SCMP_ACT_NOTIFY rule together fail create cleanly" {
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotations"
	new_id ID
	make_bundle b "$(allow "10.213.0.1:80")" "$(args sleep 1000)" \
		'.linux.seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/tmp/nowhere.sock",
			"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}'
	run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" \
		'SCMP_ACT_NOTIFY cannot be combined with io\.sandlock\.network'
	assert_no_shim "$ID"
}

# ---------------------------------------------------------------- the kernel layer (cgroup BPF)

# The fd-swap race: the shim CONTINUEs a connect on an AF_UNIX socket, and the kernel then
# looks the fd number up again; a second thread has meanwhile dup2()'d an IP socket onto
# it and put a sockaddr_in of the denied address in the buffer. Only the cgroup programs
# judge that call (EPERM). In kernel mode the shim never sees a send: the sendto calls on
# the swapping fd go straight to the kernel, whose sendmsg hook judges the IP socket's
# (EPERM), and for a ping socket, whose sendto runs no sockaddr hook, the egress program
# judges its packets (IPv4: EPERM; IPv6: the packet is dropped, the sendto still returns
# success). Without a policy nothing stands in the way: the control shows the probe's IP
# path really delivers.
@test "control: without a policy the fd-swap probe's IP socket reaches the listener" {
	only_in kernel
	egress_setup_net
	egress_run "
		/probe --label c-swap fdswap-connect $EG_D $EG_P 300 ip_connected
		/probe --label c-swap-udp fdswap-sendto $EG_D $EG_P 300 ok
		/probe --label c-swap-ping fdswap-ping $EG_D 300 ok
		/probe --label c-swap-ping6 fdswap-ping $EG_D6 300 ok
	"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	[ "$(field c-swap ip_connected)" -gt 0 ]
	[ "$(received_at tcp "$EG_D" "$EG_P" fdswap-)" -gt 0 ]
	[ "$(field c-swap-udp ok)" -gt 0 ]
	[ "$(received_at udp "$EG_D" "$EG_P" fdswap-)" -gt 0 ]
	# echo requests from the swapped-in ping sockets reached the denied addresses
	[ "$(field c-swap-ping ok)" -gt 0 ]
	[ "$(counter icmp_denied)" -gt 0 ]
	[ "$(field c-swap-ping6 ok)" -gt 0 ]
	[ "$(counter icmp6_denied)" -gt 0 ]
}

# Kernel mode only: supervisor mode has no kernel program behind the shim's CONTINUE of a
# non-IP call, so there this race can win (the supervisor mode of today, which a separate
# issue makes airtight; its own tests are the rest of this suite in egress_supervisor.bats).
@test "attack: a thread swapping an IP socket onto the fd of a unix-socket connect (fd swap), 3000+ times" {
	require_enforcement
	egress_setup_net
	if [ "$EG_MODE" = supervisor ]; then
		# The shim performs every call itself, unix ones included, on the socket it took:
		# a swap before it takes the fd is judged (ECONNREFUSED), one after it changes nothing.
		egress_run "
			/probe --label swap fdswap-connect $EG_D $EG_P 3000 ENOENT,ECONNREFUSED
			/probe --label swap-udp fdswap-sendto $EG_D $EG_P 3000 ENOENT,ECONNREFUSED
			/probe --label swap-ping fdswap-ping $EG_D 3000 ENOENT,ECONNREFUSED
			/probe --label swap-ping6 fdswap-ping $EG_D6 3000 ENOENT,ECONNREFUSED
		" "$(allow "$EG_A:$EG_P;icmp://$EG_A;icmp://[$EG_A6]")"
		[ "$status" -eq 0 ]
		settle
		show_listeners
		for l in swap swap-udp swap-ping swap-ping6; do
			echo "$l: $(errno_count $l ENOENT) on the unix socket, $(errno_count $l ECONNREFUSED) refused by the shim"
			[ "$(errno_count $l ENOENT)" -gt 0 ]
			[ "$(errno_count $l ECONNREFUSED)" -gt 0 ]
			[ "$(field $l ok)" = 0 ]
		done
		[ "$(field swap ip_connected)" = 0 ]
		expect_count 0 received_at tcp "$EG_D" "$EG_P"
		expect_count 0 received_at udp "$EG_D" "$EG_P"
		expect_count 0 counter icmp_denied
		expect_count 0 counter icmp6_denied
		nothing_reached_denied
		return
	fi
	egress_run "
		/probe --label swap fdswap-connect $EG_D $EG_P 3000 ENOENT,ECONNREFUSED,EPERM
		/probe --label swap-udp fdswap-sendto $EG_D $EG_P 3000 ENOENT,EPERM
		/probe --label swap-ping fdswap-ping $EG_D 3000 ENOENT,EPERM
		/probe --label swap-ping6 fdswap-ping $EG_D6 3000 ENOENT,ok
	" "$(allow "$EG_A:$EG_P;icmp://$EG_A;icmp://[$EG_A6]")"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	echo "connects won past the shim, refused by the kernel (EPERM): $(errno_count swap EPERM)"
	echo "sendtos and pings on the IP socket refused by the kernel (EPERM): $(errno_count swap-udp EPERM) sendtos, $(errno_count swap-ping EPERM) pings"
	echo "IPv6 pings dropped by the kernel without an error: $(field swap-ping6 ok)"
	# both states were hit: calls on the unix socket (its path does not exist) and, for
	# connect, calls the shim judged on the IP socket
	[ "$(errno_count swap ENOENT)" -gt 0 ]
	[ "$(errno_count swap ECONNREFUSED)" -gt 0 ]
	for l in swap-udp swap-ping swap-ping6; do
		[ "$(errno_count $l ENOENT)" -gt 0 ]
		# the shim never saw a send
		[ "$(errno_count $l ECONNREFUSED)" = 0 ]
	done
	# the connect race was won against the shim, and the kernel refused those calls; the
	# sends on the IP socket were refused by the kernel
	[ "$(errno_count swap EPERM)" -gt 0 ]
	[ "$(errno_count swap-udp EPERM)" -gt 0 ]
	[ "$(errno_count swap-ping EPERM)" -gt 0 ]
	[ "$(field swap-ping6 ok)" -gt 0 ]
	# nothing got through: no connected IP socket, no datagram, no echo request sent
	[ "$(field swap ok)" = 0 ]
	[ "$(field swap ip_connected)" = 0 ]
	[ "$(field swap-udp ok)" = 0 ]
	[ "$(field swap-ping ok)" = 0 ]
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
	expect_count 0 received_at udp "$EG_D" "$EG_P"
	expect_count 0 counter icmp_denied
	expect_count 0 counter icmp6_denied
	nothing_reached_denied
}

# Kernel mode takes the shim off the data path: the datagrams sent here never reach it (its
# counters do not move), the kernel counts them per rule row and its audit records carry
# "layer":"kernel". Supervisor mode: the shim judges, counts and records every one.
@test "datagrams: kernel mode judges and counts them in the kernel and never wakes the shim; supervisor mode in the shim" {
	require_enforcement
	egress_setup_net
	new_id ID
	egress_bundle b "
		until [ -e /tmp/go ]; do sleep 0.05; done
		{
			/probe --label dg-ok sendto-many $EG_A $EG_P 20
			/probe --label dg-denied sendto-many $EG_D $EG_P 7
			/probe --label dg-mmsg sendmmsg udp $EG_A6 $EG_P2 $EG_A6 $EG_P2 $EG_A6 $EG_P2
		} >/tmp/r.tmp 2>&1
		mv /tmp/r.tmp /tmp/r
		exec sleep 1000
	" "$(allow "$EG_A:$EG_P;udp://$EG_A:$EG_P;udp://[$EG_A6]:$EG_P2")" "$(annotation io.sandlock.audit deny)"
	start_container "$ID" "$BUNDLE"
	local before after
	before=$(rt egress --format json "$ID")
	echo "before: $(jq -c .counters <<<"$before")"
	touch "$BUNDLE/rootfs/tmp/go"
	wait_file "$BUNDLE/rootfs/tmp/r" 20
	output=$(cat "$BUNDLE/rootfs/tmp/r")
	echo "$output"
	after=$(rt egress --format json "$ID")
	echo "after: $(jq -c .counters <<<"$after")"
	# delta KEY: how much the counter at jq path KEY grew
	delta() { echo $(($(jq "$1 // 0" <<<"$after") - $(jq "$1 // 0" <<<"$before"))); }
	[ "$(result dg-ok)" = "ok ok=20 n=20" ]
	[ "$(result dg-denied)" = "errno ok=0 n=7 first_errno=$EG_DGRAM_REFUSED" ]
	[ "$(result dg-mmsg)" = "ok ret=3" ]
	settle
	show_listeners
	expect_count 20 received_at udp "$EG_A" "$EG_P" dg-ok-
	expect_count 3 received_at udp "$EG_A6" "$EG_P2" dg-mmsg-
	expect_count 0 received_anywhere dg-denied-0
	nothing_reached_denied
	local log=$TEST_ROOT/$ID/audit.log
	if [ "$EG_MODE" = kernel ]; then
		# the shim saw none of the 30 datagrams
		expect_count 0 delta .counters.allowed
		expect_count 0 delta .counters.denied
		expect_count 0 delta .counters.continued
		# the kernel judged each: 23 allowed by two rule rows (20 and 3; the TCP row none),
		# 7 denied by no rule
		expect_count 23 delta .counters.kernel.allowed
		expect_count 7 delta .counters.kernel.no_rule.denied
		expect_count 7 delta .counters.kernel.denied
		[ "$(jq -c '[.counters.kernel.rules as $a | $b.counters.kernel.rules | to_entries[] | .value.allowed - ($a[.key].allowed // 0)] | sort' \
			--argjson b "$after" <<<"$before")" = "[0,3,20]" ]
		# the refused ones are audited from the kernel's ring buffer
		kernel_denials() {
			jq -c --arg d "$EG_D" 'select(.layer == "kernel" and .destination == $d and .verdict == "deny")' "$log" 2>/dev/null | wc -l
		}
		positive() { [ "$("$@")" -gt 0 ]; }
		eventually 10 positive kernel_denials
	else
		# the shim judged every datagram (a sendmmsg entry each) and performed the allowed ones
		expect_count 23 delta .counters.allowed
		expect_count 7 delta .counters.denied
		[ "$(jq -c .counters.kernel <<<"$after")" = null ]
		[ "$(jq -c --arg d "$EG_D" 'select(.syscall == "sendto" and .destination == $d and .verdict == "deny" and .layer == null)' "$log" | wc -l)" -gt 0 ]
	fi
}

# IPv4 options and IPv6 routing headers send a packet elsewhere than the address every hook
# judged: a loose source route's first hop, a routing header's next segment becomes the
# packet's own destination. Here the allowed address is the one judged and the denied one
# the hop. Per message (control messages IP_RETOPTS, IPV6_RTHDR type 2: only on kernels
# with CONFIG_IPV6_MIP6, elsewhere the kernel refuses it, EINVAL) and sticky (IP_OPTIONS,
# IPV6_RTHDR with a segment routing header), from UDP, ping and TCP sockets. Judged on the
# wire: the host's prerouting counters see every packet with options or a routing header
# from the veth, and every packet to the denied addresses, before the host drops them.
@test "control: without a policy, source-routed packets (IPv4 options, IPv6 routing headers) leave for the hop" {
	only_in kernel
	egress_setup_net
	egress_run "
		/probe --label c-rt-udp route-sendmsg $EG_A $EG_P $EG_D c-rt-udp
		/probe --label c-rt-udp-sticky route-sendmsg $EG_A $EG_P $EG_D c-rt-udp-sticky sticky
		/probe --label c-rt-ping route-ping $EG_A $EG_D
		/probe --label c-rt-tcp route-connect $EG_A $EG_P $EG_D c-rt-tcp
		/probe --label c-rt-udp6 route-sendmsg $EG_A6 $EG_P $EG_D6 c-rt-udp6
		/probe --label c-rt-udp6-sticky route-sendmsg $EG_A6 $EG_P $EG_D6 c-rt-udp6-sticky sticky
		/probe --label c-rt-ping6 route-ping $EG_A6 $EG_D6
		/probe --label c-rt-tcp6 route-connect $EG_A6 $EG_P $EG_D6 c-rt-tcp6
		echo all-done
	"
	has_line all-done
	settle
	show_listeners
	for l in c-rt-udp c-rt-udp-sticky c-rt-ping c-rt-udp6-sticky; do
		assert_ok "$l"
	done
	[ "$(result c-rt-tcp)" = "ok connected=0" ]
	[ "$(result c-rt-tcp6)" = "ok connected=0" ]
	# IPv4: the UDP datagrams, the echo request and the SYN went to the hop with options
	[ "$(counter routed)" -ge 4 ]
	[ "$(counter wire_denied)" -ge 4 ]
	# IPv6: the sticky segment routing header took the datagram and the SYN to the hop
	local n6=2
	if [ "$(result c-rt-udp6)" = "errno EINVAL at=sendmsg" ]; then
		echo "this kernel refuses type-2 routing headers (no CONFIG_IPV6_MIP6)"
	else
		assert_ok c-rt-udp6
		n6=3
	fi
	[ "$(counter routed6)" -ge "$n6" ]
	[ "$(counter wire_denied6)" -ge "$n6" ]
}

# Kernel mode: a control message's options pass the sendmsg hook (it judges the address)
# and the packet program drops the packet (EPERM); supervisor mode: the shim refuses the
# control message (EPERM). Sticky options: the seccomp filter refuses setsockopt
# IP_OPTIONS and IPV6_RTHDR (EPERM) in both modes.
@test "attack: source-routed packets (IPv4 options, IPv6 routing headers) never leave, from UDP, ping and TCP sockets" {
	require_enforcement
	egress_setup_net
	egress_run "
		/probe --label r-rt-udp route-sendmsg $EG_A $EG_P $EG_D r-rt-udp
		/probe --label r-rt-udp-self route-sendmsg $EG_A $EG_P $EG_A r-rt-udp-self
		/probe --label r-rt-udp-sticky route-sendmsg $EG_A $EG_P $EG_D r-rt-udp-sticky sticky
		/probe --label r-rt-ping route-ping $EG_A $EG_D
		/probe --label r-rt-tcp route-connect $EG_A $EG_P $EG_D r-rt-tcp
		/probe --label r-rt-udp6 route-sendmsg $EG_A6 $EG_P $EG_D6 r-rt-udp6
		/probe --label r-rt-udp6-sticky route-sendmsg $EG_A6 $EG_P $EG_D6 r-rt-udp6-sticky sticky
		/probe --label r-rt-ping6 route-ping $EG_A6 $EG_D6
		/probe --label r-rt-tcp6 route-connect $EG_A6 $EG_P $EG_D6 r-rt-tcp6
		/probe --label r-plain sendto udp $EG_A $EG_P r-plain
		/probe --label r-plain6 sendto udp $EG_A6 $EG_P r-plain6
		echo all-done
	" "$(allow "$EG_A:$EG_P;[$EG_A6]:$EG_P;udp://$EG_A:$EG_P;udp://[$EG_A6]:$EG_P;icmp://$EG_A;icmp://[$EG_A6]")"
	has_line all-done
	settle
	show_listeners
	# per message (the second through the allowed address itself: options alone)
	assert_refused r-rt-udp EPERM
	assert_refused r-rt-udp-self EPERM
	assert_refused r-rt-ping EPERM
	# a type-2 routing header: refused by a kernel without CONFIG_IPV6_MIP6 (EINVAL),
	# else by the packet program or the shim (EPERM); a ping socket ignores it (its echo
	# request then goes to the allowed address, without the header)
	[[ "$(result r-rt-udp6)" =~ ^errno\ (EPERM|EINVAL) ]]
	[[ "$(result r-rt-ping6)" =~ ^(errno\ (EPERM|EINVAL)|ok) ]]
	# sticky options: refused at setsockopt
	for l in r-rt-udp-sticky r-rt-tcp r-rt-udp6-sticky r-rt-tcp6; do
		assert_refused "$l" EPERM
		[ "$(field "$l" at)" = setsockopt ]
	done
	# on the wire: no packet with options or a routing header, nothing to the hops
	expect_count 0 counter routed
	expect_count 0 counter routed6
	for l in r-rt-udp r-rt-udp-self r-rt-udp-sticky r-rt-tcp r-rt-udp6 r-rt-udp6-sticky r-rt-tcp6; do
		expect_count 0 received_anywhere "$l"
	done
	expect_count 0 counter icmp_denied
	expect_count 0 counter icmp6_denied
	nothing_reached_denied
	# the same destinations without the options are delivered
	expect_count 1 received udp "$EG_A" "$EG_P" r-plain
	expect_count 1 received udp "$EG_A6" "$EG_P" r-plain6
}

# QUIC sends on a connected UDP socket with control messages: UDP_SEGMENT (GSO: one call,
# three datagrams here) and IP_TOS / IPV6_TCLASS. In kernel mode the kernel runs the
# sendmsg hook for them without an address (it must not take that for 0.0.0.0, a loopback
# destination, under loopback=deny); in supervisor mode the shim sends them with their
# control messages. Both must deliver every datagram; the connect to a refused destination
# stays refused.
@test "QUIC-like sender: connected UDP with UDP_SEGMENT and IP_TOS control messages works under loopback=allow and loopback=deny" {
	require_enforcement
	egress_setup_net
	local lo
	for lo in allow deny; do
		egress_run "
			/probe --label q4-$lo quic $EG_A $EG_P 5 1000
			/probe --label q6-$lo quic $EG_A6 $EG_P 5 1000
			/probe --label t4-$lo quic $EG_A $EG_P 5
			/probe --label qd-$lo quic $EG_D $EG_P 1 1000
			echo all-done
		" "$(allow "udp://$EG_A:$EG_P;udp://[$EG_A6]:$EG_P")" "$(annotation io.sandlock.network.loopback $lo)"
		has_line all-done
		[ "$(result "q4-$lo")" = "ok ok=5 n=5 datagrams=15" ]
		[ "$(result "q6-$lo")" = "ok ok=5 n=5 datagrams=15" ]
		[ "$(result "t4-$lo")" = "ok ok=5 n=5 datagrams=5" ]
		assert_refused "qd-$lo"
		[ "$(field "qd-$lo" at)" = connect ]
	done
	settle
	show_listeners
	for lo in allow deny; do
		expect_count 15 received_at udp "$EG_A" "$EG_P" "q4-$lo-"
		expect_count 15 received_at udp "$EG_A6" "$EG_P" "q6-$lo-"
		expect_count 5 received_at udp "$EG_A" "$EG_P" "t4-$lo-"
		expect_count 0 received_anywhere "qd-$lo-0-0"
	done
	nothing_reached_denied
}

# Kernel mode: one program per hook; supervisor mode: none.
@test "the kernel layer: a container with a policy has the cgroup programs in kernel mode, none in supervisor mode; delete leaves no cgroup" {
	require_enforcement
	new_id ID
	make_bundle b "$(allow "10.213.0.1:9")" "$(args sleep 1000)"
	create_container "$ID" "$BUNDLE"
	bundle1=$BUNDLE
	init=$(state_of "$ID" pid)
	rel=$(sed -n 's/^0:://p' "/proc/$init/cgroup")
	dir=/sys/fs/cgroup/unified$rel
	[ -d "$dir" ] || dir=/sys/fs/cgroup$rel
	echo "cgroup2 directory: $dir"
	[ -n "$rel" ] && [ "$rel" != / ] && [ -d "$dir" ]
	run "$(egress_probe_bin)" --label progs cgroup-progs "$dir"
	echo "$output"
	[ "$status" -eq 0 ]
	local n=1
	[ "$EG_MODE" = kernel ] || n=0
	[ "$output" = "progs ok sock_create=$n connect4=$n connect6=$n sendmsg4=$n sendmsg6=$n inet_egress=$n sock_release=$n" ]
	# without a policy: none
	new_id ID2
	make_bundle b2 "$(args sleep 1000)"
	create_container "$ID2" "$BUNDLE"
	rel2=$(sed -n 's/^0:://p' "/proc/$(state_of "$ID2" pid)/cgroup")
	dir2=/sys/fs/cgroup/unified$rel2
	[ -d "$dir2" ] || dir2=/sys/fs/cgroup$rel2
	run "$(egress_probe_bin)" --label progs cgroup-progs "$dir2"
	[ "$output" = "progs ok sock_create=0 connect4=0 connect6=0 sendmsg4=0 sendmsg6=0 inet_egress=0 sock_release=0" ]
	for id in "$ID" "$ID2"; do
		rt delete --force "$id"
	done
	[ ! -e "$dir" ]
	[ ! -e "$dir2" ]
	assert_no_leftovers "$ID" "$bundle1"
	assert_no_leftovers "$ID2" "$BUNDLE"
	assert_no_shim "$ID"
}

# Kernel mode judges sockets by the cgroup that made them: an IP socket made outside the
# container (a UDP socket as stdout, or handed over with --preserve-fds) would connect and
# send unjudged, so create refuses it with one line; a pipe in the same places is fine.
@test "kernel mode: an IP socket handed in from outside (stdout, --preserve-fds) fails create cleanly; a pipe does not" {
	require_enforcement
	only_in kernel # supervisor mode performs every call on the shim's own duplicate
	new_id ID
	make_bundle b "$(allow "10.213.0.1:80")" "$(args true)"
	# nothing is sent on these sockets: 127.0.0.1:9 only names them
	run bash -c '"$@" 2>&1 >/dev/udp/127.0.0.1/9 </dev/null 3>&-' _ "$RUNTIME" --root "$TEST_ROOT" run --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" '^fd 1 is an AF_INET socket made outside the container: .*io\.sandlock\.network\.allow'
	[ "$(grep -c . <<<"$output")" -eq 1 ]
	assert_no_shim "$ID"
	run bash -c '"$@" 3>/dev/udp/127.0.0.1/9 </dev/null 2>&1' _ "$RUNTIME" --root "$TEST_ROOT" run --preserve-fds 1 --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" '^fd 3 is an AF_INET socket made outside the container'
	assert_no_shim "$ID"
	# control: a pipe as fd 3 and as stdout
	run bash -c 'set -o pipefail; "$@" 3</dev/null </dev/null 2>&1 | cat' _ "$RUNTIME" --root "$TEST_ROOT" run --preserve-fds 1 --bundle "$BUNDLE" "$ID"
	echo "$status: $output"
	[ "$status" -eq 0 ]
	rt delete -f "$ID" 2>/dev/null || true
	assert_no_shim "$ID"
}
