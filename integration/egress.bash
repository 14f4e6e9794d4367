# Helpers of integration/egress.bats (load it after `load helpers`).
#
# Topology, one per test (egress_net_up): a network namespace slit-<token>-eg<N> that the
# containers join by path, and a veth pair to the root namespace:
#
#   container side (eth0 in the netns)      host side ($EG_IF, root netns)
#   10.213.N.2/24, fd00:213:N::2/64          10.213.N.1/24     $EG_A   allowed destinations
#                                            fd00:213:N::1/64  $EG_A6
#                                            10.213.N.3/32     $EG_D   denied destinations
#                                            fd00:213:N::3/128 $EG_D6
#                                            10.213.N.4/32     $EG_X   the head-of-line test's
#                                                                      dropped destination
#
# N is chosen under a lock so that no two tests (or runs) use the same /24. Listeners
# (helpers/egress_listener.c) bind every host-side address; an nftables table of our own
# counts what arrives from the veth (and drops what the head-of-line test asks to drop):
# in its input chain what the host accepts for delivery, in its prerouting chain what came
# off the wire at all (routed: IPv4 packets with options, routed6: IPv6 packets with a
# routing header, wire_denied/wire_denied6: packets to the denied addresses), before the
# host drops a source-routed packet (accept_source_route=0) that no listener would see.
# egress_teardown removes the listeners (by pid), the table, the veth and the netns.
# Nothing ever leaves this machine: every address is on the veth we create.

# The ports the listeners use for both TCP and UDP (same numbers, so that a test can
# show that a TCP rule does not open UDP to the same port and the reverse).
# Below the ephemeral range (32768-60999), so no socket of the host can hold them.
EG_P=27101
EG_P2=27102
EG_PORTS=("$EG_P" "$EG_P2")
EG_LOCK=/run/lock/slit-egress.lock

# ---------------------------------------------------------------- the mode

# The suite runs twice: integration/egress.bats in kernel mode (the runtime attaches its
# cgroup programs: the shim judges connect only, the kernel every datagram), and
# integration/egress_supervisor.bats, a symlink to it, in supervisor mode (the runtime's
# test-only switch SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1, allowed by
# SANDLOCK_RUNC_SUPERVISOR_MODE=allow: no programs, the shim judges and performs every
# connect and send). The mode comes from the file's name; what differs is named here:
#   EG_DGRAM_REFUSED  the errno of a refused datagram (sendto, sendmsg, sendmmsg, a ping
#                     to a refused IPv4 address) and of a refused TCP Fast Open:
#                     the kernel's programs say EPERM, the shim ECONNREFUSED
# A refused connect is ECONNREFUSED in both modes (the shim decides it; in kernel mode a UDP
# socket's connect to where only TCP is allowed is the kernel's connect hook's: EPERM).
case "$(basename "${BATS_TEST_FILENAME:-egress.bats}")" in
egress_supervisor.bats) EG_MODE=supervisor EG_DGRAM_REFUSED=ECONNREFUSED ;;
*) EG_MODE=kernel EG_DGRAM_REFUSED=EPERM ;;
esac
# the TAP lines of the supervisor copy say so (the test names are the same)
[ "$EG_MODE" = supervisor ] && BATS_TEST_NAME_PREFIX="[supervisor mode] "

# egress_mode_setup: for setup_file, before egress_detect_enforcement. Every runtime
# command of the file then runs in the file's mode.
egress_mode_setup() {
	if [ "$EG_MODE" = supervisor ]; then
		export SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1 SANDLOCK_RUNC_SUPERVISOR_MODE=allow
	else
		unset SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER SANDLOCK_RUNC_SUPERVISOR_MODE
	fi
}

# only_in MODE: skips the test in the other mode's file (first line of a test that only
# makes sense in one mode; the reason follows as a comment at the test).
only_in() {
	[ "$EG_MODE" = "$1" ] ||
		skip "$1 mode only (this file runs the suite in $EG_MODE mode)"
}

# assert_ping6_refused LABEL: a ping to a refused IPv6 address sent nothing. The shim
# refuses the call (ECONNREFUSED); the kernel's packet program drops the echo request
# without an error (the ping socket's sendto returns success) and no reply comes back.
# Either way the host's counters must show nothing (the caller checks them).
assert_ping6_refused() {
	if [ "$EG_MODE" = kernel ]; then
		[ "$(result "$1")" = "ok reply=0" ] || {
			echo "$1: expected 'ok reply=0' (dropped by the kernel), got '$(result "$1")'" >&2
			return 1
		}
	else
		assert_refused "$1"
	fi
}

# ---------------------------------------------------------------- enforcement detection

# egress_detect_enforcement: for setup_file. Sets and exports EGRESS_SKIP to the reason
# the policy tests cannot run, or "" when they can. The only reasons: a runtime that is
# not sandlock-runc (the annotations are sandlock's), or a sandlock-runc whose create
# refuses the annotations with "not enforced by this build". Any other create failure
# leaves EGRESS_SKIP empty: the tests then run and show the failure.
egress_detect_enforcement() {
	export EGRESS_SKIP="" EGRESS_ENFORCEMENT=""
	if [[ "$(basename "$RUNTIME")" != sandlock-runc* ]]; then
		EGRESS_SKIP="the io.sandlock.network annotations are sandlock-specific (RUNTIME=$RUNTIME)"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] && [ -x "$RUNTIME" ] || return 0
	ensure_busybox_rootfs "$ROOTFS" || return 0
	local dir=$BATS_FILE_TMPDIR/detect id="slit-$RUN_TOKEN-egress-detect" out rc
	mkdir -p "$dir/root" "$dir/bundle"
	cp -a "$ROOTFS" "$dir/bundle/rootfs"
	(cd "$dir/bundle" && "$RUNTIME" spec) || return 0
	jq '.process.terminal = false | .process.args = ["true"]
		| .annotations["io.sandlock.network.allow"] = "10.213.0.1:9"' \
		"$dir/bundle/config.json" >"$dir/bundle/config.json.new" &&
		mv "$dir/bundle/config.json.new" "$dir/bundle/config.json"
	rc=0
	timeout --kill-after=5 "$RT_TIMEOUT" "$RUNTIME" --root "$dir/root" create --bundle "$dir/bundle" "$id" \
		>"$dir/out" 2>&1 </dev/null 3>&- || rc=$?
	out=$(head -c 500 "$dir/out")
	if [ "$rc" -ne 0 ] && grep -q 'not enforced by this build' <<<"$out"; then
		EGRESS_SKIP="egress enforcement is not wired into this build yet (create: $(grep -m1 'not enforced' <<<"$out"))"
	elif [ "$rc" -eq 0 ]; then
		# which layer enforces (require_enforcement compares it with the file's mode)
		EGRESS_ENFORCEMENT=$(timeout 30 "$RUNTIME" --root "$dir/root" egress --format json "$id" 2>/dev/null \
			</dev/null 3>&- | jq -r '.enforcement // "unknown"')
	else
		EGRESS_ENFORCEMENT="none (create failed: $(head -n 1 <<<"$out"))"
	fi
	timeout 30 "$RUNTIME" --root "$dir/root" delete --force "$id" >/dev/null 2>&1 </dev/null 3>&- || true
	rm -rf --one-file-system "$dir"
	return 0
}

# require_enforcement: first line of every test that needs a policy enforced. Fails when
# the runtime enforces in another mode than the file's (e.g. a host where the kernel
# programs cannot be attached, running egress.bats).
require_enforcement() {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	[ -z "${EGRESS_ENFORCEMENT:-}" ] || [ "$EGRESS_ENFORCEMENT" = "$EG_MODE" ] || {
		echo "this file runs the suite in $EG_MODE mode, but the runtime enforced a policy in mode: $EGRESS_ENFORCEMENT" >&2
		return 1
	}
}

# ---------------------------------------------------------------- binaries

# static_helper_bin NAME: path of a static build of integration/helpers/NAME.c (the
# helpers run in the busybox rootfs, which has no C library): the Makefile's build when it
# is static and fresh, else one built here.
static_helper_bin() {
	local src=$INTEGRATION_DIR/helpers/$1.c bin=$BUILD/helpers/$1 tmp
	if [ -x "$bin" ] && [ "$bin" -nt "$src" ] && file -L "$bin" | grep -q 'statically linked'; then
		echo "$bin"
		return
	fi
	bin=$BATS_RUN_TMPDIR/helpers/$1.static
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$(dirname "$bin")"
		tmp=$(mktemp "$bin.XXXXXX")
		cc -std=gnu11 -Wall -Wextra -Werror -O2 -static -o "$tmp" "$src" -lpthread >&2 &&
			mv "$tmp" "$bin" || { rm -f "$tmp"; return 1; }
	fi
	echo "$bin"
}

egress_probe_bin() { static_helper_bin egress_probe; }

# ---------------------------------------------------------------- topology

# egress_alloc_net: (under the lock) the first free 10.213.N.0/24, its veth and addresses.
# Prints N.
egress_alloc_net() {
	local ns=$1 start=$2 i n host peer
	for ((i = 0; i < 250; i++)); do
		n=$(((start + i) % 250 + 1))
		host=se${RUN_TOKEN}${n}h
		peer=se${RUN_TOKEN}${n}c
		[ -z "$(ip -o addr show to "10.213.$n.0/24" 2>/dev/null)" ] || continue
		[ -z "$(ip -o -6 addr show to "fd00:213:$n::/64" 2>/dev/null)" ] || continue
		ip link show "$host" >/dev/null 2>&1 && continue
		ip link add "$host" type veth peer name "$peer" || return 1
		ip link set "$peer" netns "$ns" || return 1
		sysctl -qw "net.ipv6.conf.$host.disable_ipv6=0" 2>/dev/null
		ip addr add "10.213.$n.1/24" dev "$host" &&
			ip addr add "10.213.$n.3/32" dev "$host" &&
			ip addr add "10.213.$n.4/32" dev "$host" &&
			ip -6 addr add "fd00:213:$n::1/64" dev "$host" nodad &&
			ip -6 addr add "fd00:213:$n::3/128" dev "$host" nodad &&
			ip link set "$host" up || return 1
		echo "$n"
		return 0
	done
	echo "egress_alloc_net: no free 10.213.N.0/24" >&2
	return 1
}

# egress_net_up: the test's netns, veth pair, addresses, nft table; sets the EG_* names.
egress_net_up() {
	local start
	EG_NS=slit-$RUN_TOKEN-eg$BATS_SUITE_TEST_NUMBER
	ip netns add "$EG_NS" || return
	TEST_NETNS+=("$EG_NS")
	start=$(($(cksum <<<"$RUN_TOKEN-$BATS_SUITE_TEST_NUMBER" | cut -d' ' -f1) % 250))
	EG_N=$(
		exec 9>"$EG_LOCK"
		flock -w 30 9 || exit 1
		egress_alloc_net "$EG_NS" "$start"
	) || return 1
	EG_IF=se${RUN_TOKEN}${EG_N}h
	EG_A=10.213.$EG_N.1
	EG_C=10.213.$EG_N.2
	EG_D=10.213.$EG_N.3
	EG_X=10.213.$EG_N.4
	EG_A6=fd00:213:$EG_N::1
	EG_D6=fd00:213:$EG_N::3
	EG_MAC=$(cat "/sys/class/net/$EG_IF/address")
	ip -n "$EG_NS" link set "se${RUN_TOKEN}${EG_N}c" name eth0 &&
		ip -n "$EG_NS" addr add "$EG_C/24" dev eth0 &&
		ip -n "$EG_NS" -6 addr add "fd00:213:$EG_N::2/64" dev eth0 nodad &&
		ip -n "$EG_NS" link set eth0 up &&
		ip -n "$EG_NS" link set lo up || return 1
	# ping sockets for the container's root group (the sysctl is per network namespace)
	ip netns exec "$EG_NS" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || return 1
	EG_NFT=slit_eg_${RUN_TOKEN}_$EG_N
	nft -f - <<-EOF || return 1
		table inet $EG_NFT {
			counter icmp_allowed {}
			counter icmp_denied {}
			counter icmp6_allowed {}
			counter icmp6_denied {}
			counter to_denied {}
			counter to_denied6 {}
			counter dropped {}
			counter routed {}
			counter routed6 {}
			counter wire_denied {}
			counter wire_denied6 {}
			chain prerouting {
				type filter hook prerouting priority -300; policy accept;
				iifname "$EG_IF" ip hdrlength != 5 counter name routed
				iifname "$EG_IF" exthdr rt exists counter name routed6
				iifname "$EG_IF" ip daddr $EG_D counter name wire_denied
				iifname "$EG_IF" ip6 daddr $EG_D6 counter name wire_denied6
			}
			chain input {
				type filter hook input priority -150; policy accept;
				iifname "$EG_IF" ip daddr $EG_A icmp type echo-request counter name icmp_allowed
				iifname "$EG_IF" ip daddr $EG_D icmp type echo-request counter name icmp_denied
				iifname "$EG_IF" ip6 daddr $EG_A6 icmpv6 type echo-request counter name icmp6_allowed
				iifname "$EG_IF" ip6 daddr $EG_D6 icmpv6 type echo-request counter name icmp6_denied
				iifname "$EG_IF" ip daddr $EG_D counter name to_denied
				iifname "$EG_IF" ip6 daddr $EG_D6 counter name to_denied6
			}
		}
	EOF
	EG_NFT_UP=1
}

# egress_drop PORT: packets from the veth to $EG_X:PORT/tcp are dropped (counted in
# "dropped"): a connect there hangs.
egress_drop() {
	nft add rule inet "$EG_NFT" input iifname "$EG_IF" ip daddr "$EG_X" tcp dport "$1" counter name dropped drop
}

# counter NAME: packets counted so far by one of the table's counters.
counter() {
	nft -j list counter inet "$EG_NFT" "$1" | jq '.nftables[] | select(.counter) | .counter.packets'
}

# egress_listen PROTO PORT: a listener on every host-side address; its records go to
# $BATS_TEST_TMPDIR/PROTO-PORT.log.
egress_listen() {
	local proto=$1 port=$2 pid log=$BATS_TEST_TMPDIR/$1-$2.log
	: >"$log"
	pid=$("$(helper egress_listener)" "$proto" "$EG_A,$EG_D,$EG_X,$EG_A6,$EG_D6" "$port" "$log" 600 3>&-) || return 1
	EG_LISTENERS+=("$pid")
}

# egress_listen_all: TCP and UDP listeners on both ports.
egress_listen_all() {
	local port
	for port in "${EG_PORTS[@]}"; do
		egress_listen tcp "$port" && egress_listen udp "$port" || return 1
	done
}

# egress_setup_net: topology plus every listener.
egress_setup_net() {
	egress_net_up && egress_listen_all
}

egress_teardown() {
	local pid
	for pid in "${EG_LISTENERS[@]}"; do
		# by pid, and only if it still is our listener
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q egress_listener; then
			kill "$pid" 2>/dev/null
		fi
	done
	EG_LISTENERS=()
	if [ -n "${EG_NFT_UP:-}" ]; then
		nft delete table inet "$EG_NFT" 2>/dev/null
		EG_NFT_UP=
	fi
	# the netns went with common_teardown; the host side goes with it unless a process
	# still holds the namespace
	if [ -n "${EG_IF:-}" ] && ip link show "$EG_IF" >/dev/null 2>&1; then
		ip link delete "$EG_IF" 2>/dev/null
	fi
	if [ -n "${EG_NS:-}" ]; then
		ip netns delete "$EG_NS" 2>/dev/null
	fi
	EG_IF='' EG_NS=''
	return 0
}

# ---------------------------------------------------------------- what the listeners got

# received PROTO ADDR PORT PAYLOAD: how many times PAYLOAD arrived at ADDR:PORT.
received() {
	awk -v a="$2" -v p="$3" -v d="$4" '$2 == a && $3 == p && $4 == "data" && $6 == d { n++ } END { print n + 0 }' \
		"$BATS_TEST_TMPDIR/$1-$3.log"
}

# received_at PROTO ADDR PORT [PREFIX]: records at ADDR:PORT of traffic from the container
# (its two addresses; the host's sentinels are not counted): data whose payload starts
# with PREFIX, and without PREFIX for TCP also every accepted connection, whether it
# sent anything or not.
received_at() {
	awk -v a="$2" -v p="$3" -v pre="${4:-}" -v c4="$EG_C" -v c6="fd00:213:$EG_N::2" '
		{ src = $5; sub(/:[0-9]+$/, "", src) }
		$2 == a && $3 == p && (src == c4 || src == c6) &&
			(($4 == "data" && index($6, pre) == 1) || ($4 == "accept" && pre == "")) { n++ }
		END { print n + 0 }' "$BATS_TEST_TMPDIR/$1-$3.log"
}

# received_anywhere PAYLOAD: records of PAYLOAD in every listener's log.
received_anywhere() {
	cat "$BATS_TEST_TMPDIR"/tcp-*.log "$BATS_TEST_TMPDIR"/udp-*.log 2>/dev/null |
		awk -v d="$1" '$4 == "data" && $6 == d { n++ } END { print n + 0 }'
}

# show_listeners: every listener's records (for a failing test's output).
show_listeners() {
	local f
	for f in "$BATS_TEST_TMPDIR"/tcp-*.log "$BATS_TEST_TMPDIR"/udp-*.log; do
		[ -e "$f" ] || continue
		echo "--- $(basename "$f"): $(wc -l <"$f") records"
		grep -v ' flip-\| many-' "$f" | head -n 40
	done
	[ -n "${EG_NFT_UP:-}" ] && nft list table inet "$EG_NFT" | grep -E 'counter|packets'
	return 0
}

# settle: every listener has processed what reached it so far. A sentinel from the host
# goes to each listening socket, through the same queue as the container's traffic; once
# every sentinel is recorded, everything sent before it is recorded too.
settle() {
	local probe proto port addr tag deadline
	probe=$(egress_probe_bin) || return 1
	tag=sentinel-$RANDOM$RANDOM
	for port in "${EG_PORTS[@]}"; do
		for addr in "$EG_A" "$EG_D" "$EG_X" "$EG_A6" "$EG_D6"; do
			"$probe" connect tcp "$addr" "$port" "$tag" >/dev/null
			"$probe" sendto udp "$addr" "$port" "$tag" >/dev/null
		done
	done
	deadline=$((SECONDS + 10))
	for proto in tcp udp; do
		for port in "${EG_PORTS[@]}"; do
			for addr in "$EG_A" "$EG_D" "$EG_X" "$EG_A6" "$EG_D6"; do
				until [ "$(received "$proto" "$addr" "$port" "$tag")" -ge 1 ]; do
					if [ $SECONDS -ge $deadline ]; then
						echo "settle: the $proto listener at $addr:$port did not record its sentinel" >&2
						return 1
					fi
					sleep 0.05
				done
			done
		done
	done
}

# ---------------------------------------------------------------- bundles and runs

# annotation KEY VALUE: a make_bundle filter setting one annotation.
annotation() {
	printf '.annotations[%s] = %s' "$(jq -n --arg k "$1" '$k')" "$(jq -n --arg v "$2" '$v')"
}

# allow RULES / deny ENTRIES: the annotation filters.
allow() { annotation io.sandlock.network.allow "$1"; }
deny() { annotation io.sandlock.network.deny "$1"; }

# egress_bundle NAME SCRIPT [FILTERS...]: a bundle in the test netns (when there is one)
# whose init runs SCRIPT with sh, /probe being the static egress_probe, CAP_NET_RAW
# granted (so that only the egress filter can refuse raw and packet sockets).
egress_bundle() {
	local name=$1 script=$2 probe filters=()
	shift 2
	probe=$(egress_probe_bin) || return 1
	[ -n "${EG_NS:-}" ] &&
		filters+=(".linux.namespaces |= map(if .type == \"network\" then .path = \"/run/netns/$EG_NS\" else . end)")
	filters+=('.process.capabilities |= with_entries(.value += ["CAP_NET_RAW"])')
	make_bundle "$name" "${filters[@]}" "$@" "$(args sh -c "$script")" || return 1
	cp "$probe" "$BUNDLE/rootfs/probe"
}

# egress_run SCRIPT [FILTERS...]: runs SCRIPT in a fresh container in the foreground;
# $status and $output as from bats' run (the container's output, then the runtime's).
egress_run() {
	local script=$1 id
	shift
	new_id id
	egress_bundle "b-$id" "$script" "$@" || return 1
	run_container "$id" "$BUNDLE"
	echo "--- container $id: status $status"
	echo "$output"
	echo "---"
}

# has_line TEXT: $output has the line TEXT.
has_line() {
	grep -qxF -- "$1" <<<"$output" || {
		echo "missing line: $1" >&2
		return 1
	}
}

# result LABEL: the probe's result line with that label, without the label.
result() {
	grep -m1 "^$1 " <<<"$output" | cut -d' ' -f2-
}

# field LABEL KEY: a key=value of LABEL's result line ("" when absent).
field() {
	result "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# errno_count LABEL ENAME: how many calls of a flip-* line failed with ENAME (0 if none).
errno_count() {
	local n
	n=$(field "$1" "$2")
	echo "${n:-0}"
}

# assert_ok LABEL / assert_refused LABEL [ERRNO]: the probe line LABEL says ok / errno
# (ECONNREFUSED unless given).
assert_ok() {
	[[ "$(result "$1")" == ok* ]] || {
		echo "$1: expected ok, got '$(result "$1")'" >&2
		return 1
	}
}

assert_refused() {
	[[ "$(result "$1")" == "errno ${2:-ECONNREFUSED}"* ]] || {
		echo "$1: expected errno ${2:-ECONNREFUSED}, got '$(result "$1")'" >&2
		return 1
	}
}

# expect_count N COMMAND...: COMMAND prints N.
expect_count() {
	local want=$1 got
	shift
	got=$("$@")
	[ "$got" = "$want" ] || {
		echo "$*: $got, expected $want" >&2
		return 1
	}
}

# ---------------------------------------------------------------- private name resolution

# rt_private_resolver HOSTS_FILE ARGS...: the runtime (with this test's --root) in a
# private mount namespace where /etc/hosts is HOSTS_FILE and /etc/nsswitch.conf says
# "hosts: files": names resolve from the test's file only, without any DNS query leaving
# the machine, and no host file is modified. Processes the runtime leaves running (the
# shim) stay in that namespace; it goes away with them.
rt_private_resolver() {
	local hosts=$1 nss=$BATS_TEST_TMPDIR/nsswitch.conf
	shift
	echo "hosts: files" >"$nss"
	timeout --kill-after=5 "$RT_TIMEOUT" unshare --mount --propagation private -- sh -c '
		mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf || exit 125
		if [ -S /var/run/nscd/socket ]; then mount -t tmpfs none /var/run/nscd || exit 125; fi
		shift 2
		exec "$@"' sh "$hosts" "$nss" "$RUNTIME" --root "$TEST_ROOT" "$@" 3>&-
}

# rtq_private_resolver HOSTS_FILE ARGS...: like rtq (stdio on files, then printed).
rtq_private_resolver() {
	local out err status
	out=$(mktemp "$BATS_TEST_TMPDIR/rtq.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/rtq.XXXXXX")
	rt_private_resolver "$@" >"$out" 2>"$err" </dev/null
	status=$?
	cat "$out" "$err"
	rm -f "$out" "$err"
	return $status
}

# ---------------------------------------------------------------- the shim

# shim_pids_of ID: processes whose command line names ID's state dir (the shim runs as
# `sandlock-runc shim <state dir>`).
# (One grep over every command line, a process each took seconds on a busy machine; the
# pattern comes from a file so that grep's own command line does not hold it.)
shim_pids_of() {
	grep -lsaFf <(printf '%s\n' "$TEST_ROOT/$1") /proc/[0-9]*/cmdline |
		sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
	return 0
}

# assert_no_shim ID: no shim (or any process) names ID's state dir.
assert_no_shim() {
	local pids
	pids=$(shim_pids_of "$1" | tr '\n' ' ')
	[ -z "$pids" ] || {
		echo "processes left for $1: $pids" >&2
		return 1
	}
}
