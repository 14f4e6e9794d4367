#!/usr/bin/env bash
# The body of `make bench`: sandlock-runc against runc and crun (lifecycle, memory) and its
# egress path against a minimal C supervisor (bench/min_supervisor.c), all in one run on
# this machine. Prints a table and writes it to bench/RESULTS.md (--quick: few
# repetitions, written to $BUILD/bench/RESULTS-quick.md; never asserts on timings).
#
#   BUILD=/abs/build bench/run.sh [--quick] [--only lifecycle|shim|egress|datapath|scale|live|rootless]
#
# BUILD (default: the repo's build/) holds sandlock-runc and helpers/egress_{listener,probe}.
# --only runs one section: its table is printed and written to
# $BUILD/bench/RESULTS-only-SECTION.md ($BUILD/bench/RESULTS-quick-only-SECTION.md with
# --quick), except a full (not --quick) `--only scale` or `--only live`, which replaces
# that section of bench/RESULTS.md (between its <!-- SECTION: begin/end --> markers) and
# keeps the rest of the file.
#
# Needs root. Creates, and removes on any exit: a network namespace and a veth pair
# (10.213.251.0/24; the live section a second pair and namespace, 10.213.252.0/24), an
# nftables table, listeners, containers under private --root
# directories (and their shims and cgroups), the data path's sink, and (for crun 1.8.1 on
# hybrid cgroups) a v1 hugetlb hierarchy mounted only while the lifecycle rows are timed
# and crun's memory is measured.
#
# --only rootless (issue 14; also part of a full run) also makes, and removes on any exit,
# a test user (slbench<pid>, useradd/userdel) and everything of it: its processes, its
# containers' state under the work dir, two egress_listeners (see "rootless" below).
#
# Timed comparisons are taken in interleaved rounds (the setups take turns, A B, B A, ...)
# and their ratios pair by pair: this machine drifts more between two series than the
# differences measured. --only datapath: the data path from inside a container, policy vs
# none (bench/datapath.c); the lifecycle section includes `run`/`create` with 1 and 1000
# rules.
#
# --only live (issue 12: "a live change takes effect within 10 ms (p99) of the command
# returning, and costs the running traffic nothing measurable"; bench/live_probe.c):
# - latency: a container allowed only 10.213.252.1:80 runs `live_probe probe`, a
#   non-blocking connect to 10.213.252.3:80 (a host listener) every 0.2 ms, and writes
#   the CLOCK_MONOTONIC time (shared by container and host: no time namespace) of the
#   first connect of each new outcome to its stdout, a file. `live_probe drive` runs
#   `egress ID --allow 10.213.252.3:80`, notes when it returned, waits for the prober's
#   "ok", then `--revoke` and "refused"; 50 cycles (--quick 5), in kernel mode and in
#   supervisor mode. Delay = first connect of the new outcome - the command's return
#   (negative: it held before the return; counted as 0 in the quantiles). p50/p99/max per
#   direction and mode, and the command's own duration.
# - cost: a TCP stream from a kernel-mode container to a host sink (exec `live_probe
#   stream`, 1 s; --quick 0.3 s), quiet, or while the host allows/revokes an unrelated
#   rule every 100 ms (`live_probe churn`), or while it runs the read-only `egress ID` at
#   the same rate (control: the commands' CPU without a change); 20 rounds (--quick 3) of
#   the three in turn, ratios round by round.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BUILD=${BUILD:-$REPO/build}
QUICK=0
ONLY=""
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--only)
		ONLY=${2:-}
		shift
		case $ONLY in lifecycle | shim | egress | datapath | scale | live | rootless) ;; *)
			echo "bench: --only lifecycle|shim|egress|datapath|scale|live|rootless" >&2
			exit 2
			;;
		esac
		;;
	*)
		echo "usage: bench/run.sh [--quick] [--only lifecycle|shim|egress|datapath|scale|live|rootless]" >&2
		exit 2
		;;
	esac
	shift
done
SL=$BUILD/sandlock-runc
BIN=$BUILD/bench

if ((QUICK)); then
	RUNS=3 RUNS_SPACED=2 WARMUP=1 NCONN=300 NUDP=2000 NTPUT=400 REPS=1 RSS_REPS=2
	SCALE_N=10 SCALE_ROUNDS=1
	LIVE_ROUNDS=5 LIVE_WARMUP=1 LIVE_COST_ROUNDS=3 LIVE_MS=300
	DP_ROUNDS=5 DP_WARMUP=1 DP_MS=100 DP_NCONN=300 DP_NTPUT=400 RL_RUNS=5
	RESULTS=$BIN/RESULTS-quick.md
else
	RUNS=30 RUNS_SPACED=30 WARMUP=3 NCONN=5000 NUDP=50000 NTPUT=8000 REPS=3 RSS_REPS=10
	SCALE_N=50 SCALE_ROUNDS=3
	LIVE_ROUNDS=50 LIVE_WARMUP=2 LIVE_COST_ROUNDS=20 LIVE_MS=1000
	DP_ROUNDS=25 DP_WARMUP=2 DP_MS=300 DP_NCONN=2000 DP_NTPUT=4000 RL_RUNS=40
	RESULTS=$HERE/RESULTS.md
fi

NET=10.213.251
LISTEN_IP=$NET.1 DROP_IP=$NET.4 PORT=80
TAG=slb$$
NS=slbench-$$
HOST_IF=${TAG}h
PEER_IF=${TAG}c
NFT_TABLE=slbench_$$
POLICY1="$LISTEN_IP:$PORT"
POLICY_EGRESS="$LISTEN_IP:$PORT;$DROP_IP:$PORT;udp://$LISTEN_IP:$PORT"
# 1000 distinct rules of IP literals in 10.100.0.0/16 (never sent to; only the policy's
# size matters) and the real destination last
POLICY1000=$(for ((i = 0; i < 1000; i++)); do printf '10.100.%d.%d:443;' $((i / 250)) $((i % 250 + 1)); done)$POLICY1

log() { echo "bench: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$SL" ] || die "$SL is missing (make -C $REPO)"

# ---------------------------------------------------------------- tools

ensure_tools() {
	local missing=() cmd pkg
	for cmd in runc:runc crun:crun /usr/bin/time:time jq:jq nft:nftables ip:iproute2 gcc:gcc; do
		pkg=${cmd#*:}
		cmd=${cmd%%:*}
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
			die "could not install ${missing[*]}"
	fi
}

build_programs() {
	local p
	mkdir -p "$BIN"
	for p in connect_bench min_supervisor interleave datapath live_probe; do
		if [ ! -x "$BIN/$p" ] || [ "$HERE/$p.c" -nt "$BIN/$p" ]; then
			gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$BIN/$p" "$HERE/$p.c" -lpthread ||
				die "cannot build $p"
		fi
	done
}

# ---------------------------------------------------------------- cleanup

WORK=""
LISTENER_PID=""
NET_UP=0
HUGETLB_MOUNTED=0
declare -A ROOTS=() # runtime label -> --root dir

runtime_bin() {
	case $1 in
	sl*) echo "$SL" ;;
	*) echo "$1" ;;
	esac
}

delete_all_containers() {
	local label root id
	for label in "${!ROOTS[@]}"; do
		root=${ROOTS[$label]}
		[ -d "$root" ] || continue
		for id in "$root"/*; do
			[ -e "$id" ] || continue
			timeout 30 "$(runtime_bin "$label")" --root "$root" delete --force "$(basename "$id")" >/dev/null 2>&1 </dev/null
		done
	done
}

# crun 1.8.1 refuses hybrid cgroups unless a v1 hugetlb hierarchy is mounted.
mount_hugetlb() {
	[ -e /sys/fs/cgroup/unified/cgroup.controllers ] || return 0 # not hybrid
	grep -q ' /sys/fs/cgroup/hugetlb ' /proc/mounts && return 0
	mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb ||
		die "cannot mount the v1 hugetlb hierarchy that crun needs"
	HUGETLB_MOUNTED=1
}

hugetlb_hierarchy() { awk '$1 == "hugetlb" { print $2 }' /proc/cgroups; }

# rmdir_child_cgroups: the hierarchy's empty child cgroups, deepest first (other tests
# running meanwhile, e.g. conmon, create cgroups in every hierarchy they see).
rmdir_child_cgroups() {
	local d
	find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d 2>/dev/null | while read -r d; do
		[ -s "$d/cgroup.procs" ] || rmdir "$d" 2>/dev/null
	done
}

# Gives hugetlb back to cgroup2. A hierarchy unmounted while it still has (or has dying)
# child cgroups survives unmounted; mounting it again, removing the children and
# unmounting then destroys it.
restore_hugetlb() {
	((HUGETLB_MOUNTED)) || return 0
	local i
	for ((i = 0; i < 50; i++)); do
		rmdir_child_cgroups
		umount /sys/fs/cgroup/hugetlb 2>/dev/null
		sleep 0.2
		[ "$(hugetlb_hierarchy)" = 0 ] && break
		mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null
	done
	# what others wrote into the bare mount point after the unmount (plain tmpfs files)
	grep -q ' /sys/fs/cgroup/hugetlb ' /proc/mounts || rm -rf --one-file-system /sys/fs/cgroup/hugetlb
	HUGETLB_MOUNTED=0
	[ "$(hugetlb_hierarchy)" = 0 ] || log "WARNING: hugetlb is still on a v1 hierarchy ($(hugetlb_hierarchy))"
}

stop_listener() {
	if [ -n "$LISTENER_PID" ] && tr '\0' ' ' <"/proc/$LISTENER_PID/cmdline" 2>/dev/null | grep -q 'connect_bench listen'; then
		kill "$LISTENER_PID" 2>/dev/null
		wait "$LISTENER_PID" 2>/dev/null
	fi
	LISTENER_PID=""
}

net_down() {
	((NET_UP)) || return 0
	nft delete table inet "$NFT_TABLE" 2>/dev/null
	ip link delete "$HOST_IF" 2>/dev/null
	ip netns delete "$NS" 2>/dev/null
	NET_UP=0
}

cleanup() {
	stop_bg
	delete_all_containers
	scale_cleanup
	rl_cleanup
	stop_listener
	stop_sink
	live_cleanup
	net_down
	restore_hugetlb
	[ -n "$WORK" ] && rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup

net_up() {
	[ -z "$(ip -o addr show to "$NET.0/24")" ] || die "$NET.0/24 is already in use (a leftover bench run?)"
	ip netns add "$NS" || die "ip netns add"
	NET_UP=1
	ip link add "$HOST_IF" type veth peer name "$PEER_IF" &&
		ip link set "$PEER_IF" netns "$NS" &&
		ip addr add "$LISTEN_IP/24" dev "$HOST_IF" &&
		ip addr add "$DROP_IP/32" dev "$HOST_IF" &&
		ip link set "$HOST_IF" up &&
		ip -n "$NS" link set "$PEER_IF" name eth0 &&
		ip -n "$NS" addr add "$NET.2/24" dev eth0 &&
		ip -n "$NS" link set eth0 up &&
		ip -n "$NS" link set lo up || die "cannot set up the veth pair"
	# the head-of-line destination: SYNs to it vanish, so a connect there hangs
	nft -f - <<-EOF || die "nft"
		table inet $NFT_TABLE {
			chain input {
				type filter hook input priority -150; policy accept;
				iifname "$HOST_IF" ip daddr $DROP_IP tcp dport $PORT drop
			}
		}
	EOF
}

start_listener() {
	local fifo=$WORK/listener.out line
	"$BIN/connect_bench" listen "$LISTEN_IP" "$PORT" 3600 >"$fifo" 2>&1 &
	LISTENER_PID=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs ready "$fifo" && return 0
		sleep 0.1
	done
	line=$(cat "$fifo")
	die "the listener did not start: $line"
}

# make_bundle NAME ARGS_JSON [ALLOW [NETNS]]: $WORK/b-NAME sharing $WORK/rootfs, joined to
# the network namespace NETNS (default $NS).
make_bundle() {
	local dir=$WORK/b-$1 args=$2 allow=${3:-} netns=${4:-$NS}
	mkdir -p "$dir"
	jq --arg root "$WORK/rootfs" --arg ns "/run/netns/$netns" --argjson args "$args" --arg allow "$allow" '
		.ociVersion = "1.0.2"
		| .root = {path: $root, readonly: true}
		| .process.terminal = false
		| .process.args = $args
		| .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
		| if $allow != "" then .annotations["io.sandlock.network.allow"] = $allow else . end' \
		"$WORK/base.json" >"$dir/config.json" || die "make_bundle $1"
}

setup() {
	WORK=$(mktemp -d /tmp/sandlock-bench.XXXXXX)
	# a private copy: a rebuild of the tree during the run must not change what is measured
	cp "$SL" "$WORK/sandlock-runc" || die "cannot copy $SL"
	# create starts the shim from sandlock-shim next to the runtime when it is there
	if [ -x "$BUILD/sandlock-shim" ]; then cp "$BUILD/sandlock-shim" "$WORK/" || die "cannot copy sandlock-shim"; fi
	SL_BUILT=$(date -u -r "$SL" '+%Y-%m-%d %H:%M UTC')
	SL=$WORK/sandlock-runc
	# shellcheck source=../integration/rootfs.bash
	source "$REPO/integration/rootfs.bash"
	build_busybox_rootfs "$WORK/rootfs" || die "cannot build the busybox rootfs"
	cp "$BIN/connect_bench" "$BIN/min_supervisor" "$BIN/datapath" "$BIN/live_probe" "$WORK/rootfs/"
	PAIRS=$WORK/pairs
	: >"$PAIRS"
	(cd "$WORK" && "$SL" spec && mv config.json base.json) || die "sandlock-runc spec"
	local label
	for label in sl slp slp100 slp1000 runc crun sllive; do
		ROOTS[$label]=$WORK/root-$label
		mkdir -p "${ROOTS[$label]}"
	done
	local many="$POLICY1" i
	for ((i = 1; i < 100; i++)); do many+=";$NET.$((i + 100)):$((1000 + i))"; done
	make_bundle true '["/bin/true"]'
	make_bundle true-p '["/bin/true"]' "$POLICY1"
	make_bundle sleep '["/bin/sleep","1000"]'
	make_bundle sleep-p '["/bin/sleep","1000"]' "$POLICY1"
	make_bundle sleep-p100 '["/bin/sleep","1000"]' "$many"
	make_bundle true-p1000 '["/bin/true"]' "$POLICY1000"
	make_bundle sleep-p1000 '["/bin/sleep","1000"]' "$POLICY1000"
}

# ---------------------------------------------------------------- measurement helpers

declare -A R=() # result key -> value
FAILURES=()     # lines for the report

# ---------------------------------------------------------------- pairs
#
# Every timed figure of the lifecycle and datapath sections comes from runs taken in
# turn (A B, B A, A B ...: bench/interleave.c, bench/datapath.c drive), so that this
# machine's drift, larger between two series than the differences measured, falls on
# every setup alike. Each run is a line "KEY ROUND LABEL VALUE" in $PAIRS (VALUE nan for a
# failed run); a ratio is taken round by round (A's run over B's run of the same round)
# and its median quoted, a figure's own median over its successful runs.

PAIRS="" # set by setup

# pmed KEY LABEL: the median of LABEL's KEY over its successful runs ("fail" if none).
pmed() { awk -v k="$1" -v l="$2" '$1 == k && $3 == l && $4 != "nan" { print $4 }' "$PAIRS" | median; }
# pcount KEY LABEL: LABEL's runs of KEY; pfails KEY LABEL: those that failed.
pcount() { awk -v k="$1" -v l="$2" '$1 == k && $3 == l { n++ } END { print n + 0 }' "$PAIRS"; }
pfails() { awk -v k="$1" -v l="$2" '$1 == k && $3 == l && $4 == "nan" { n++ } END { print n + 0 }' "$PAIRS"; }
# pround KEY A B OP: per round where both ran, A/B (OP ratio) or A-B (OP diff); one a line.
pround() {
	awk -v k="$1" -v a="$2" -v b="$3" -v op="$4" '
		$1 == k && $4 != "nan" { if ($3 == a) va[$2] = $4; if ($3 == b) vb[$2] = $4 }
		END { for (r in va) if (r in vb) { if (op == "diff") print va[r] - vb[r]; else if (vb[r] > 0) print va[r] / vb[r] } }' "$PAIRS"
}
# pratio KEY A B: the median of the round-by-round ratios A/B, as "1.23x" ("-" if none).
pratio() {
	local m
	m=$(pround "$1" "$2" "$3" ratio | median)
	awk -v m="$m" 'BEGIN { if (m ~ /^[0-9.e+-]+$/) printf "%.2fx", m; else print "-" }'
}
# pspread KEY A B: the lowest and highest of the round-by-round ratios A/B, "0.91-1.08".
pspread() {
	pround "$1" "$2" "$3" ratio | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f-%.2f", lo, hi; else print "-" }'
}
# pdiff KEY A B: the median of the round-by-round differences A-B, as "+1.2" ("-" if none).
pdiff() {
	local m
	m=$(pround "$1" "$2" "$3" diff | median)
	awk -v m="$m" 'BEGIN { if (m ~ /^[0-9.e+-]+$/) printf "%+.1f", m; else print "-" }'
}
# verdict VALUE LIMIT le|ge: met, MISSED, or ? when VALUE is no number ("1.05x" is one).
verdict() {
	awk -v v="${1%x}" -v lim="$2" -v dir="$3" 'BEGIN {
		if (v !~ /^[+-]?[0-9.]+$/) print "?"; else if ((dir == "le" && v + 0 <= lim) || (dir == "ge" && v + 0 >= lim)) print "met"; else print "MISSED" }'
}

# ---------------------------------------------------------------- lifecycle

# The label's runtime, root and bundle suffix (sl = no policy, slp = a 1-rule policy,
# slp100/slp1000 = 100/1000 rules).
rt_cmd() { echo "$(runtime_bin "$1") --root ${ROOTS[$1]}"; }
bundle_of() {
	case $1 in
	slp) echo "$WORK/b-$2-p" ;;
	slp100) echo "$WORK/b-$2-p100" ;;
	slp1000) echo "$WORK/b-$2-p1000" ;;
	*) echo "$WORK/b-$2" ;;
	esac
}

# op_spec OP LABEL: interleave.c's words for one runtime's turn at OP ([PREPARE ::] CMD
# [:: CONCLUDE]); the preparation and the clean-up are untimed.
op_spec() {
	local op=$1 label=$2 rt id b bs
	rt=$(rt_cmd "$label") id=bench-l-$label
	b=$(bundle_of "$label" true) bs=$(bundle_of "$label" sleep)
	local del="$rt delete --force $id >/dev/null 2>&1"
	# shellcheck disable=SC2086 # $rt's words are paths without spaces
	case $op in
	run | run_spaced) echo $rt run --bundle "$b" "$id" ;;
	csd) echo sh -c "'$del'" :: sh -c "'$rt create --bundle $b $id && $rt start $id && $rt delete --force $id'" ;;
	create) echo sh -c "'$del'" :: $rt create --bundle "$bs" "$id" :: sh -c "'$del'" ;;
	start) echo sh -c "'$del; $rt create --bundle $bs $id'" :: $rt start "$id" :: sh -c "'$del'" ;;
	kill) echo sh -c "'$del; $rt create --bundle $bs $id && $rt start $id'" :: $rt kill "$id" 9 :: sh -c "'$del'" ;;
	delete) echo sh -c "'$del; $rt create --bundle $bs $id && $rt start $id'" :: $rt delete --force "$id" ;;
	state) echo $rt state "$id" ;;
	esac
}

# BG_PID: a long measurement runs in the background, so that a signal to this script
# runs its trap at once (bash defers traps while a foreground child runs); cleanup
# stops it first.
BG_PID=""
run_bg() { # run_bg OUT ERR CMD...: CMD's status
	local out=$1 err=$2 rc
	shift 2
	"$@" >"$out" 2>"$err" </dev/null &
	BG_PID=$!
	wait "$BG_PID"
	rc=$?
	BG_PID=""
	return $rc
}
stop_bg() {
	local i
	[ -n "$BG_PID" ] || return 0
	kill "$BG_PID" 2>/dev/null
	# interleave.c finishes the runtime call under way before it exits
	for ((i = 0; i < 100; i++)); do kill -0 "$BG_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$BG_PID" 2>/dev/null
	wait "$BG_PID" 2>/dev/null
	BG_PID=""
}

# interleave_op OP RUNS WARMUP PAUSE_MS LABEL...: the LABELs' runtimes take turns at OP
# (bench/interleave.c); every run goes into $PAIRS, the failures into FAILURES.
interleave_op() {
	local op=$1 runs=$2 warm=$3 pause=$4 label words=() spec n
	shift 4
	for label in "$@"; do
		spec=$(op_spec "$op" "$label")
		eval "words+=($spec ';')"
	done
	if ! run_bg "$WORK/il-$op.out" "$WORK/il-$op.err" "$BIN/interleave" -o "$WORK/il-$op.raw" "$runs" "$warm" "$pause" -- "${words[@]}"; then
		FAILURES+=("$op: interleave failed: $(head -c 300 "$WORK/il-$op.err")")
		return
	fi
	local -a labels=("$@")
	awk -v op="$op" -v l="${labels[*]}" 'BEGIN { split(l, name, " ") }
		{ print op, $1, name[$2 + 1], ($4 == 0 ? $3 : "nan") }' "$WORK/il-$op.raw" >>"$PAIRS"
	for label in "$@"; do
		n=$(pfails "$op" "$label")
		((n)) || continue
		FAILURES+=("$label $op: $n of $(pcount "$op" "$label") runs failed")
		# once more by hand (prepare, command, conclude), to log what the runtime said
		local -a part=()
		mapfile -t part < <(op_spec "$op" "$label" | awk '{ n = split($0, p, / :: /); for (i = 1; i <= n; i++) print p[i] }')
		((${#part[@]} > 1)) && eval "${part[0]}" >/dev/null 2>&1 </dev/null
		eval "${part[${#part[@]} > 1 ? 1 : 0]}" >"$WORK/il.out" 2>&1 </dev/null ||
			FAILURES+=("  e.g.: $(head -c 400 "$WORK/il.out" | tr '\n' ' ')")
		((${#part[@]} > 2)) && eval "${part[2]}" >/dev/null 2>&1 </dev/null
		log "${FAILURES[-1]}"
	done
}

# The lifecycle rows: every row's runtimes take turns run by run, all with the v1 hugetlb
# hierarchy crun needs mounted (the others join it too). `run` back-to-back, and spaced out
# as callers run containers: the first cgroup v1 migration after a quiet period waits for
# an RCU grace period, back-to-back runs mostly do not. `run` and `create` also with 100
# and 1000 rules (issue 10: a 1000-rule policy must not cost the data path's setup).
lifecycle() {
	local label rt id op
	mount_hugetlb
	log "lifecycle: run, interleaved ($((RUNS * 2)) rounds)"
	interleave_op run $((RUNS * 2)) "$WARMUP" 0 sl slp slp1000 runc crun
	log "lifecycle: run, spaced ($RUNS_SPACED rounds)"
	interleave_op run_spaced "$RUNS_SPACED" 1 300 sl slp runc crun
	log "lifecycle: create ($RUNS rounds)"
	interleave_op create "$RUNS" "$WARMUP" 0 sl slp slp100 slp1000 runc crun
	for op in csd start kill delete; do
		log "lifecycle: $op ($RUNS rounds)"
		interleave_op $op "$RUNS" "$WARMUP" 0 sl slp runc crun
	done
	log "lifecycle: state ($RUNS rounds)"
	for label in sl slp runc crun; do
		rt=$(rt_cmd "$label") id=bench-l-$label
		$rt delete --force "$id" >/dev/null 2>&1
		$rt create --bundle "$(bundle_of "$label" sleep)" "$id" >/dev/null 2>&1 </dev/null && $rt start "$id" >/dev/null 2>&1
	done
	interleave_op state "$RUNS" "$WARMUP" 0 sl slp runc crun
	for label in sl slp runc crun; do $(rt_cmd "$label") delete --force bench-l-$label >/dev/null 2>&1; done
	restore_hugetlb
	for op in run run_spaced create csd start kill delete state; do
		for label in sl slp slp100 slp1000 runc crun; do R[$label.$op]=$(pmed "$op" "$label"); done
	done
	for label in sl slp runc crun; do
		# crun alone needs it; mounted only meanwhile (other tests on this machine see it)
		[ "$label" = crun ] && mount_hugetlb
		rt=$(rt_cmd "$label")
		peak_rss "$label" "$rt" "$(bundle_of "$label" true)" "$(bundle_of "$label" sleep)" bench-$label
		[ "$label" = crun ] && restore_hugetlb
	done
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "fail" }'; }

# peak_rss LABEL RT BUNDLE_TRUE BUNDLE_SLEEP ID: max RSS (KiB) of `run` and of `create`.
peak_rss() {
	local label=$1 rt=$2 b=$3 bs=$4 id=$5 i
	for ((i = 0; i < RSS_REPS; i++)); do
		/usr/bin/time -f %M -o "$WORK/rss" $rt run --bundle "$b" "$id" >/dev/null 2>&1 </dev/null && cat "$WORK/rss"
	done | median >"$WORK/rss.run"
	for ((i = 0; i < RSS_REPS; i++)); do
		/usr/bin/time -f %M -o "$WORK/rss" $rt create --bundle "$bs" "$id" >/dev/null 2>&1 </dev/null && cat "$WORK/rss"
		$rt delete --force "$id" >/dev/null 2>&1
	done | median >"$WORK/rss.create"
	R[$label.rss_run]=$(cat "$WORK/rss.run")
	R[$label.rss_create]=$(cat "$WORK/rss.create")
}

# shim_pid ROOT ID: the shim serving ROOT/ID (it runs as `sandlock-shim shim ROOT/ID`, or
# `sandlock-runc shim ROOT/ID` when there is no sandlock-shim next to the runtime).
shim_pid() {
	local p
	for p in /proc/[0-9]*; do
		[[ "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" == sandlock-@(shim|runc)" shim $1/$2 " ]] && {
			echo "${p#/proc/}"
			return
		}
	done
}

# shim_memory LABEL BUNDLE: the shim's Rss and Pss (KiB) once create returned.
shim_memory() {
	local label=$1 b=$2 rt pid id=bench-shim
	rt=$(rt_cmd "$label")
	$rt create --bundle "$b" $id >/dev/null 2>&1 </dev/null || {
		R[$label.shim_rss]=fail R[$label.shim_pss]=fail
		return
	}
	sleep 0.5
	pid=$(shim_pid "${ROOTS[$label]}" $id)
	if [ -n "$pid" ]; then
		R[$label.shim_rss]=$(awk '$1 == "Rss:" { print $2 }' "/proc/$pid/smaps_rollup")
		R[$label.shim_pss]=$(awk '$1 == "Pss:" { print $2 }' "/proc/$pid/smaps_rollup")
		R[$label.shim_threads]=$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status")
	else
		R[$label.shim_rss]="no shim" R[$label.shim_pss]="no shim"
	fi
	$rt delete --force $id >/dev/null 2>&1
}

# in_container LABEL NAME ARGS_JSON [ALLOW]: runs ARGS in a fresh container; its stdout.
in_container() {
	local label=$1 name=$2 args=$3 allow=${4:-} rt
	rt=$(rt_cmd "$label")
	make_bundle "$name" "$args" "$allow"
	timeout --kill-after=5 300 $rt run --bundle "$WORK/b-$name" "bench-$name" </dev/null 2>"$WORK/$name.err"
	local rc=$?
	[ $rc = 0 ] || log "$name: exit $rc: $(head -c 300 "$WORK/$name.err")"
	$rt delete --force "bench-$name" >/dev/null 2>&1
}

# field LINE KEY: KEY=value of a connect_bench result line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# egress_case KEY "FIELD[=RKEY]..." ARGS...: connect_bench ARGS in the three setups (none,
# shim, min), REPS times each; the median of each FIELD into R[setup.RKEY] (RKEY
# defaults to KEY).
egress_case() {
	local key=$1 fields=$2 setup i out args f rkey
	shift 2
	for setup in none shim min; do
		: >"$WORK/egress.lines"
		for ((i = 0; i < REPS; i++)); do
			case $setup in
			none) args=$(printf '%s\n' /connect_bench "$@" | jq -R . | jq -cs .)
				out=$(in_container sl "e-$key" "$args") ;;
			shim) args=$(printf '%s\n' /connect_bench "$@" | jq -R . | jq -cs .)
				out=$(in_container sl "e-$key" "$args" "$POLICY_EGRESS") ;;
			min) args=$(printf '%s\n' /min_supervisor "$LISTEN_IP" "$PORT" /connect_bench "$@" | jq -R . | jq -cs .)
				out=$(in_container sl "e-$key" "$args") ;;
			esac
			out=$(head -n1 <<<"$out")
			[ "$(field "$out" errors)" = 0 ] || log "$setup $key: $out"
			echo "$out" >>"$WORK/egress.lines"
		done
		for f in $fields; do
			rkey=${f#*=}
			f=${f%%=*}
			[ "$rkey" = "$f" ] && rkey=$key
			R[$setup.$rkey]=$(while read -r out; do field "$out" "$f"; done <"$WORK/egress.lines" | median)
		done
	done
}

egress() {
	log "egress: connect latency"
	egress_case connect "median_us=connect_med p99_us=connect_p99" connect "$LISTEN_IP" "$PORT" "$NCONN"
	log "egress: UDP"
	egress_case udp ops_per_s udp "$LISTEN_IP" "$PORT" "$NUDP"
	egress_case sendmmsg msgs_per_s sendmmsg "$LISTEN_IP" "$PORT" "$NUDP" 16
	log "egress: connect throughput"
	local t
	for t in 1 4 16; do
		egress_case "tput$t" ops_per_s connect_tput "$LISTEN_IP" "$PORT" "$NTPUT" "$t"
	done
	log "egress: head-of-line"
	head_of_line
}

head_of_line() {
	local setup out i args
	for setup in none shim; do
		for ((i = 0; i < REPS; i++)); do
			args=$(printf '%s\n' /connect_bench hol "$LISTEN_IP" "$PORT" "$NCONN" "$DROP_IP" "$PORT" | jq -R . | jq -cs .)
			if [ $setup = shim ]; then
				out=$(in_container sl e-hol "$args" "$POLICY_EGRESS")
			else
				out=$(in_container sl e-hol "$args")
			fi
			grep -q 'hung=1' <<<"$out" || log "hol $setup: the dropped connect did not hang: $out"
			field "$(head -n1 <<<"$out")" median_us
		done | median >"$WORK/egress.val"
		R[$setup.hol]=$(cat "$WORK/egress.val")
	done
}

# ---------------------------------------------------------------- data path (issue 10)
#
# bench/datapath.c serves inside three containers at once, all started before the first
# figure: no policy (none), a policy allowing the destinations used (policy), and no
# policy under min_supervisor --continue (min: the least a supervisor that answers
# CONTINUE to an allowed connect costs; connect figures only). `datapath drive` sends each
# measurement to the setups in turn, A B, B A, ..., so the two runs of a pair are next to
# each other in time; the ratios are taken pair by pair. Sends go to a sink on
# $LISTEN_IP:$SINK_PORT (TCP read to EOF, UDP drained), connects to the connect_bench
# listener on $LISTEN_IP:$PORT (accept and close).

SINK_PORT=81
SINK_PID=""
POLICY_DATAPATH="$LISTEN_IP:$PORT;$LISTEN_IP:$SINK_PORT;udp://$LISTEN_IP:$SINK_PORT"
DP_ERRORS=()

start_sink() {
	"$BIN/datapath" sink "$LISTEN_IP" "$SINK_PORT" 3600 >"$WORK/sink.out" 2>&1 &
	SINK_PID=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs ready "$WORK/sink.out" && return 0
		sleep 0.1
	done
	die "the datapath sink did not start: $(cat "$WORK/sink.out")"
}

stop_sink() {
	if [ -n "$SINK_PID" ] && tr '\0' ' ' <"/proc/$SINK_PID/cmdline" 2>/dev/null | grep -q 'datapath sink'; then
		kill "$SINK_PID" 2>/dev/null
		wait "$SINK_PID" 2>/dev/null
	fi
	SINK_PID=""
}

# The measurements: "NAME SETUPS METRICS REQUEST" (datapath.c); SETUPS 2 = none and
# policy, 3 = also min.
datapath_tests() {
	local ip=$LISTEN_IP sink=$SINK_PORT ms=$DP_MS
	cat <<-EOT
		tcp_write 2 MBps tcp_write $ip $sink 65536 $ms
		tcp_send 2 MBps tcp_send $ip $sink 65536 $ms
		tcp_sendmsg 2 MBps tcp_sendmsg $ip $sink 4096 $ms
		udp_sendto 2 msgs_per_s udp_sendto $ip $sink 64 $ms
		udp_send 2 msgs_per_s udp_send $ip $sink 64 $ms
		udp_sendmsg 2 msgs_per_s udp_sendmsg $ip $sink 64 $ms
		udp_sendmsg_conn 2 msgs_per_s udp_sendmsg_conn $ip $sink 64 $ms
		sendmmsg 2 msgs_per_s sendmmsg $ip $sink 64 16 $ms
		gso 2 msgs_per_s gso $ip $sink 1200 16 $ms
		connect 3 median_us,p99_us connect $ip $PORT $DP_NCONN
		tput1 3 ops_per_s connect_tput $ip $PORT $DP_NTPUT 1
		tput8 3 ops_per_s connect_tput $ip $PORT $DP_NTPUT 8
		enforced 2 sent,errno probe_udp $ip $PORT 1
	EOT
}

datapath() {
	local rt_none rt_pol setup
	log "datapath: $DP_ROUNDS pairs of each figure ($DP_MS ms a send figure, $DP_NCONN connects, $DP_NTPUT for throughput)"
	start_sink
	make_bundle dp-none '["/datapath","serve"]'
	make_bundle dp-policy '["/datapath","serve"]' "$POLICY_DATAPATH"
	make_bundle dp-min "$(jq -cn --arg ip "$LISTEN_IP" --arg port "$PORT" '["/min_supervisor","--continue",$ip,$port,"/datapath","serve"]')"
	datapath_tests >"$WORK/datapath.tests"
	rt_none=$(rt_cmd sl) rt_pol=$(rt_cmd slp)
	# shellcheck disable=SC2086 # $rt_*'s words are paths without spaces
	run_bg "$WORK/datapath.out" "$WORK/datapath.err" timeout --kill-after=10 1800 \
		"$BIN/datapath" drive "$DP_ROUNDS" "$DP_WARMUP" "$WORK/datapath.tests" -- \
		$rt_none run --bundle "$WORK/b-dp-none" bench-dp-none ';' \
		$rt_pol run --bundle "$WORK/b-dp-policy" bench-dp-policy ';' \
		$rt_none run --bundle "$WORK/b-dp-min" bench-dp-min ||
		DP_ERRORS+=("datapath drive exited with status $?: $(tail -n 3 "$WORK/datapath.err" | tr '\n' ' ')")
	awk '$1 == "raw" { split("none policy min", name, " "); print "dp." $2, $3, name[$4 + 1], $5 }' "$WORK/datapath.out" >>"$PAIRS"
	while read -r _ test setup rest; do
		case $setup in 0) setup=none ;; 1) setup=policy ;; 2) setup=min ;; esac
		DP_ERRORS+=("$test, $setup: $rest")
	done < <(grep '^err ' "$WORK/datapath.out")
	if ((${#DP_ERRORS[@]})); then
		# what the runtimes and containers said (min_supervisor's line about itself aside)
		local said
		said=$(grep -v '^min_supervisor: SYNC_WAKE_UP' "$WORK/datapath.err" | tail -n 3 | tr '\n' ' ' | head -c 400)
		[ -n "$said" ] && DP_ERRORS+=("stderr of the runtimes and containers, last lines: $said")
		log "datapath: ${#DP_ERRORS[@]} error line(s), e.g. ${DP_ERRORS[0]}"
	fi
	for setup in bench-dp-none bench-dp-policy bench-dp-min; do
		$rt_none delete --force $setup >/dev/null 2>&1
		$rt_pol delete --force $setup >/dev/null 2>&1
	done
	stop_sink
}

report_datapath() {
	echo "## Data path from inside a container (issue 10): policy vs no policy, in pairs"
	echo
	echo "- bench/datapath.c in three busybox containers started together: no policy; io.sandlock.network.allow=\"$POLICY_DATAPATH\"; no policy under \`min_supervisor --continue\` (notifies connect only and answers CONTINUE: the floor of a connect decided by a supervisor). Over the bench veth to a sink (TCP read to EOF, UDP drained) on $LISTEN_IP:$SINK_PORT and the accept-and-close listener on $LISTEN_IP:$PORT."
	echo "- $DP_ROUNDS pairs per figure after $DP_WARMUP warm-up, the setups taking turns (A B, B A, ...); each send figure is $DP_MS ms of sending, each connect latency $DP_NCONN connects, each throughput $DP_NTPUT connects. Figures: medians over the pairs; ratios: the median of the pair-by-pair ratios (not the ratio of the medians)."
	echo
	echo "| figure | no policy | policy | policy/no policy | pair ratios, lowest-highest | min_supervisor (CONTINUE) | policy/min | target | |"
	echo "|---|---|---|---|---|---|---|---|---|"
	local key name d
	while IFS='|' read -r key name d; do
		echo "| $name | $(num "$(pmed "dp.$key" none)" "$d") | $(num "$(pmed "dp.$key" policy)" "$d") | $(pratio "dp.$key" policy none) | $(pspread "dp.$key" policy none) | - | - | policy/no policy >= 0.95x | $(verdict "$(pratio "dp.$key" policy none)" 0.95 ge) |"
	done <<-EOT
		tcp_write.MBps|TCP write(), 64 KiB (MB/s)|0
		tcp_send.MBps|TCP send(), 64 KiB (MB/s)|0
		tcp_sendmsg.MBps|TCP sendmsg(), 4 KiB (MB/s)|0
		udp_sendto.msgs_per_s|UDP sendto(), 64 B, unconnected (msgs/s)|0
		udp_send.msgs_per_s|UDP send(), 64 B, connected (msgs/s)|0
		udp_sendmsg.msgs_per_s|UDP sendmsg() with an address, 64 B (msgs/s)|0
		udp_sendmsg_conn.msgs_per_s|UDP sendmsg() on a connected socket, no address, 64 B (msgs/s)|0
		sendmmsg.msgs_per_s|UDP sendmmsg() x16 with addresses, 64 B (msgs/s)|0
		gso.msgs_per_s|UDP_SEGMENT on a connected UDP socket, 16 x 1200 B a send (segments/s)|0
	EOT
	local k=dp.connect.median_us
	echo "| TCP connect latency, median (µs) | $(num "$(pmed $k none)") | $(num "$(pmed $k policy)") | $(pratio $k policy none) | $(pspread $k policy none) | $(num "$(pmed $k min)") | $(pratio $k policy min) | policy/min <= 1.1x | $(verdict "$(pratio $k policy min)" 1.1 le) |"
	k=dp.connect.p99_us
	echo "| TCP connect latency, p99 (µs) | $(num "$(pmed $k none)") | $(num "$(pmed $k policy)") | $(pratio $k policy none) | $(pspread $k policy none) | $(num "$(pmed $k min)") | $(pratio $k policy min) | - | |"
	for k in 1 8; do
		local kk=dp.tput$k.ops_per_s
		echo "| connect throughput, $k thread$( ((k > 1)) && echo s) (/s) | $(num "$(pmed $kk none)" 0) | $(num "$(pmed $kk policy)" 0) | $(pratio $kk policy none) | $(pspread $kk policy none) | $(num "$(pmed $kk min)" 0) | $(pratio $kk policy min) | policy/no policy >= 0.8x | $(verdict "$(pratio $kk policy none)" 0.8 ge) |"
	done
	echo
	# the policy is enforced in the policy container (else its figures mean nothing): a
	# datagram to $LISTEN_IP:$PORT, which its policy does not allow (udp:// only to
	# $SINK_PORT), is refused there and sent from the container without a policy
	local sent_none sent_pol errno_pol
	sent_none=$(pmed dp.enforced.sent none) sent_pol=$(pmed dp.enforced.sent policy) errno_pol=$(pmed dp.enforced.errno policy)
	case $errno_pol in 1) errno_pol="1 (EPERM)" ;; 13) errno_pol="13 (EACCES)" ;; 111) errno_pol="111 (ECONNREFUSED)" ;; esac
	if [ "$sent_none" = 1 ] && [ "$sent_pol" = 0 ]; then
		echo "Policy enforced: **yes** (a UDP datagram to $LISTEN_IP:$PORT, not allowed, was refused with errno $errno_pol under the policy and sent without one)."
	else
		echo "Policy enforced: **NO or unknown** (a UDP datagram to $LISTEN_IP:$PORT, not allowed: sent=$sent_pol under the policy, sent=$sent_none without one): the policy column does not measure a confined container."
	fi
	echo
	if ((${#DP_ERRORS[@]})); then
		echo "Errors (a figure counts successful calls only; a run whose setup failed is left out of the medians and pairs):"
		echo
		printf -- '- %s\n' "${DP_ERRORS[@]}"
		echo
	fi
}

# ---------------------------------------------------------------- scale (issue 5, item 5)
#
# SCALE_N containers, each with an io.sandlock.network.allow of its own (container I may
# reach $LISTEN_IP:$((SCALE_PORT0 + I)) only), all `create`d at once, then all started.
# Each runs two probes: its own port, then its neighbour's (I + 1 mod N: a port that is
# listened on and allowed to another container, so a policy that leaked across containers
# would show). The listeners (integration/helpers/egress_listener, one per port, all
# appending to one log) decide: exactly N allowed payloads, each at its own port, and no
# refused one. The same containers without a policy (sandlock-runc, crun) are the
# reference for the timings and the control for the check (there every connect arrives).

SCALE_PORT0=47300
SCALE_LISTENERS=() # egress_listener pids
SCALE_SHIMS=()     # "pid root/id" of every shim seen, to make sure none outlives the run
SCALE_LAT=()       # "label ms" of every create
SCALE_BROKEN=()    # index -> 1: this round's containers whose create or start failed

scale_id() { echo "$TAG-sc-$1-$2"; }

# scale_listen: one listener per port, every record into $WORK/scale/listener.log.
scale_listen() {
	local i pid listener=$BUILD/helpers/egress_listener
	[ -x "$listener" ] && [ -x "$BUILD/helpers/egress_probe" ] || die "$BUILD/helpers is missing egress_listener/egress_probe (make -C $REPO all)"
	mkdir -p "$WORK/scale"
	cp "$BUILD/helpers/egress_probe" "$WORK/rootfs/" || die "cannot copy egress_probe"
	: >"$WORK/scale/listener.log"
	for ((i = 0; i < SCALE_N; i++)); do
		pid=$("$listener" tcp "$LISTEN_IP" $((SCALE_PORT0 + i)) "$WORK/scale/listener.log" 3600) ||
			die "egress_listener on port $((SCALE_PORT0 + i))"
		SCALE_LISTENERS+=("$pid")
	done
}

# scale_bundles LABEL: bundles scale-LABEL-I; only slp gets a policy.
scale_bundles() {
	local label=$1 i allowed refused script allow
	for ((i = 0; i < SCALE_N; i++)); do
		allowed=$((SCALE_PORT0 + i))
		refused=$((SCALE_PORT0 + (i + 1) % SCALE_N))
		script="/egress_probe --label allowed connect tcp $LISTEN_IP $allowed $label-$i-allowed;"
		script+=" /egress_probe --label refused connect tcp $LISTEN_IP $refused $label-$i-refused;"
		script+=" echo scale-done; exec sleep 1000"
		allow=""
		[ "$label" = slp ] && allow="$LISTEN_IP:$allowed"
		make_bundle "scale-$label-$i" "$(jq -cn --arg s "$script" '["/bin/sh", "-c", $s]')" "$allow"
	done
}

# at_once WHAT LABEL: runs WHAT (create|start|delete) for all SCALE_N containers of LABEL
# at the same time; R[scale.LABEL.WHAT] gets the wall time (ms) from the first launch to
# the last exit, and each create's own time goes to SCALE_LAT. Failures are counted and
# the first one's message logged.
at_once() {
	local what=$1 label=$2 rt dir i id pids=() t0 t1 failed=0 first="" rc s e
	dir=$WORK/scale/$label
	rt=$(rt_cmd "$label")
	t0=$EPOCHREALTIME
	for ((i = 0; i < SCALE_N; i++)); do
		id=$(scale_id "$label" "$i")
		case $what in
		create)
			# the container inherits create's stdout/stderr: its probes' lines land in $i.out
			(
				s=$EPOCHREALTIME
				timeout 60 $rt create --bundle "$WORK/b-scale-$label-$i" "$id" >"$dir/$i.out" 2>"$dir/$i.create" </dev/null
				rc=$?
				echo "$rc $s $EPOCHREALTIME" >"$dir/$i.time"
				exit $rc
			) &
			;;
		start) timeout 60 $rt start "$id" >"$dir/$i.start" 2>&1 </dev/null & ;;
		delete) timeout 60 $rt delete --force "$id" >"$dir/$i.delete" 2>&1 </dev/null & ;;
		esac
		pids+=($!)
	done
	# by pid: the connect_bench listener is a child of this shell too
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" && continue
		failed=$((failed + 1))
		[ -n "$first" ] || first=$i
		SCALE_BROKEN[i]=1
	done
	t1=$EPOCHREALTIME
	R[scale.$label.$what]+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
	if [ "$what" = create ]; then
		for ((i = 0; i < SCALE_N; i++)); do
			read -r rc s e <"$dir/$i.time" 2>/dev/null && [ "$rc" = 0 ] || continue
			SCALE_LAT+=("$label $(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", (b - a) * 1000 }')")
		done
	fi
	((failed)) || return 0
	R[scale.$label.failed]=$((${R[scale.$label.failed]:-0} + failed))
	log "scale $label: $failed of $SCALE_N ${what}s failed, e.g. $(grep -v '^\(allowed\|refused\) ' "$dir/$first.$what" | head -c 300 | tr '\n' ' ')"
}

# scale_wait_probes LABEL: until every container of LABEL that was created and started
# printed scale-done (60 s at most); R[scale.LABEL.ran] counts those that did.
scale_wait_probes() {
	local label=$1 dir=$WORK/scale/$1 deadline=$((SECONDS + 60)) finished i
	local expected=$((SCALE_N - ${#SCALE_BROKEN[@]}))
	while :; do
		finished=0
		for ((i = 0; i < SCALE_N; i++)); do
			grep -qs '^scale-done' "$dir/$i.out" && finished=$((finished + 1))
		done
		((finished >= expected)) && break
		if ((SECONDS >= deadline)); then
			log "scale $label: only $finished of $expected started containers finished their probes"
			break
		fi
		sleep 0.1
	done
	R[scale.$label.ran]=$((${R[scale.$label.ran]:-0} + finished))
}

# scale_shim_memory: the sum of Rss and Pss (KiB) of every slp shim, from smaps_rollup.
scale_shim_memory() {
	local root=${ROOTS[slp]} i id pid rss=0 pss=0 n=0 kib
	for ((i = 0; i < SCALE_N; i++)); do
		id=$(scale_id slp "$i")
		pid=$(cat "$root/$id/shim.pid" 2>/dev/null) || continue
		# the pid file names our shim only if its command line says so
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q " shim $root/$id \$" || continue
		SCALE_SHIMS+=("$pid $root/$id")
		R[scale.shim_exe]=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1)
		kib=$(awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } END { print r + 0, p + 0 }' "/proc/$pid/smaps_rollup")
		rss=$((rss + ${kib% *}))
		pss=$((pss + ${kib#* }))
		n=$((n + 1))
	done
	R[scale.shims]="${R[scale.shims]:-} $n"
	R[scale.rss]="${R[scale.rss]:-} $rss"
	R[scale.pss]="${R[scale.pss]:-} $pss"
}

# scale_count LABEL: what the listeners recorded of LABEL's probes (the log holds one
# round of one label). allowed = containers whose own payload arrived exactly once, at
# their own port; refused = records of a refused payload; accepts = connections from
# the containers' address; econnrefused = refused probes that saw ECONNREFUSED.
scale_count() {
	local label=$1 log=$WORK/scale/listener.log counts
	counts=$(awk -v l="$label" -v p0="$SCALE_PORT0" -v src="$NET.2" '
		{ s = $5; sub(/:[0-9]+$/, "", s) }
		$4 == "accept" && s == src { accepts++ }
		$4 == "data" && $6 ~ ("^" l "-[0-9]+-allowed$") {
			i = $6; sub("^" l "-", "", i); sub(/-allowed$/, "", i)
			if ($3 == p0 + i) seen[i]++; else wrong++
		}
		$4 == "data" && $6 ~ ("^" l "-[0-9]+-refused$") { refused++ }
		END { for (i in seen) if (seen[i] == 1) allowed++
		      print allowed + 0, refused + 0, accepts + 0, wrong + 0 }' "$log")
	local a r c w e
	read -r a r c w <<<"$counts"
	e=$(cat "$WORK/scale/$label"/*.out 2>/dev/null | grep -c '^refused errno ECONNREFUSED')
	R[scale.$label.allowed]=$((${R[scale.$label.allowed]:-0} + a))
	R[scale.$label.refused]=$((${R[scale.$label.refused]:-0} + r))
	R[scale.$label.accepts]=$((${R[scale.$label.accepts]:-0} + c))
	R[scale.$label.wrong_port]=$((${R[scale.$label.wrong_port]:-0} + w))
	R[scale.$label.econnrefused]=$((${R[scale.$label.econnrefused]:-0} + e))
}

# scale_gone LABEL: after delete, no state dir, shim or cgroup of LABEL's containers is left.
scale_gone() {
	local label=$1 root=${ROOTS[$1]} left
	left=$(find "$root" -mindepth 1 -maxdepth 1 -name "$TAG-sc-$label-*" | wc -l)
	((left)) && log "scale $label: $left state dirs left after delete"
	left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -name "*$TAG-sc-$label-*" 2>/dev/null | wc -l)
	((left)) && log "scale $label: $left cgroups left after delete"
	R[scale.$label.left]=$((${R[scale.$label.left]:-0} + left))
	scale_kill_shims
}

# scale_kill_shims: a shim still running after delete is a bug: logged and killed (by pid,
# and only if its command line still names the container).
scale_kill_shims() {
	local entry pid dir
	for entry in "${SCALE_SHIMS[@]}"; do
		pid=${entry%% *} dir=${entry#* }
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q " shim $dir \$"; then
			log "scale: the shim of $dir (pid $pid) outlived delete; killing it"
			R[scale.shims_left]=$((${R[scale.shims_left]:-0} + 1))
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	SCALE_SHIMS=()
}

# scale_round LABEL: create all at once, start all, wait for the probes, (slp: shim
# memory), delete all at once, count what arrived, check that nothing is left.
scale_round() {
	local label=$1
	rm -rf "$WORK/scale/$label" && mkdir -p "$WORK/scale/$label"
	: >"$WORK/scale/listener.log"
	SCALE_BROKEN=()
	at_once create "$label"
	at_once start "$label"
	scale_wait_probes "$label"
	[ "$label" = slp ] && scale_shim_memory
	at_once delete "$label"
	scale_count "$label"
	scale_gone "$label"
}

scale() {
	local round label
	log "scale: $SCALE_N containers at once, $SCALE_ROUNDS round(s)$( ((QUICK)) && echo " (quick mode: 50 in a full run)")"
	scale_listen
	for label in slp sl crun; do scale_bundles "$label"; done
	for ((round = 1; round <= SCALE_ROUNDS; round++)); do
		for label in slp sl crun; do
			log "scale: round $round, $label"
			[ "$label" = crun ] && mount_hugetlb
			scale_round "$label"
			[ "$label" = crun ] && restore_hugetlb
		done
	done
	scale_stop_listeners
}

scale_stop_listeners() {
	local pid
	for pid in "${SCALE_LISTENERS[@]}"; do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q egress_listener && kill "$pid" 2>/dev/null
	done
	SCALE_LISTENERS=()
}

scale_cleanup() {
	scale_kill_shims
	scale_stop_listeners
}

# quantile Q: the Q-quantile (nearest rank) of the numbers on stdin.
quantile() { sort -n | awk -v q="$1" '{ v[NR] = $1 } END { if (!NR) { print "-"; exit } i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }
# med_of "A B C": the median of a list of numbers.
med_of() { tr ' ' '\n' <<<"$1" | grep . | median; }

scale_report() {
	local n=$SCALE_N total=$((SCALE_N * SCALE_ROUNDS)) l q k
	local -A v=()
	for l in slp sl crun; do
		for k in create start delete; do v[$l.$k]=$(med_of "${R[scale.$l.$k]:-}"); done
		for q in 0 0.5 0.9 1; do
			v[$l.q$q]=$(printf '%s\n' "${SCALE_LAT[@]}" | awk -v l="$l" '$1 == l { print $2 }' | quantile "$q")
		done
	done
	echo "<!-- scale: begin -->"
	echo "## Scale: $n containers created at once, then started"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), sandlock-runc build of $SL_BUILT; $n containers$( ((QUICK)) && echo " (quick mode; a full run uses 50)"), $SCALE_ROUNDS round(s) per runtime, the runtimes interleaved; walls are medians over the rounds, create latencies are pooled over them (each create timed on its own, ${#SCALE_LAT[@]} in all)."
	echo "- each container: busybox, its own io.sandlock.network.allow=\"$LISTEN_IP:<its port>\" (ports $SCALE_PORT0-$((SCALE_PORT0 + n - 1))) for the policy column; it connects to its own port, then to its neighbour's (allowed to the neighbour only), then sleeps. Without a policy the same bundles run unconfined (control)."
	echo
	echo "| | sandlock-runc, policy | sandlock-runc | crun | policy/crun | sandlock/crun | policy/no policy |"
	echo "|---|---|---|---|---|---|---|"
	srow() { echo "| $1 | $(num "${v[slp.$2]}") | $(num "${v[sl.$2]}") | $(num "${v[crun.$2]}") | $(ratio "${v[slp.$2]}" "${v[crun.$2]}") | $(ratio "${v[sl.$2]}" "${v[crun.$2]}") | $(ratio "${v[slp.$2]}" "${v[sl.$2]}") |"; }
	srow "$n \`create\`s at once, wall (ms)" create
	srow "one create's latency, min (ms)" q0
	srow "one create's latency, median (ms)" q0.5
	srow "one create's latency, p90 (ms)" q0.9
	srow "one create's latency, max (ms)" q1
	srow "$n \`start\`s at once, wall (ms)" start
	srow "$n \`delete -f\`s at once, wall (ms)" delete
	local shims rss pss
	shims=$(med_of "${R[scale.shims]:-}") rss=$(med_of "${R[scale.rss]:-}") pss=$(med_of "${R[scale.pss]:-}")
	echo "| shims running (of $n), as \`${R[scale.shim_exe]:-?}\` | $shims | - | - | | | |"
	echo "| all shims, sum of RSS (smaps_rollup) | $(mib "$rss") | - | - | | | |"
	echo "| all shims, sum of PSS | $(mib "$pss") | - | - | | | |"
	echo "| PSS per shim | $(awk -v p="$pss" -v n="$shims" 'BEGIN { if (n + 0 > 0) printf "%.2f MiB", p / n / 1024; else print "-" }') | - | - | | | |"
	echo "| failed runtime calls | ${R[scale.slp.failed]:-0} | ${R[scale.sl.failed]:-0} | ${R[scale.crun.failed]:-0} | | | |"
	echo
	echo "What the host-side listeners recorded, over all $SCALE_ROUNDS round(s) ($total containers per runtime):"
	echo
	echo "| | sandlock-runc, policy | sandlock-runc (control) | crun (control) |"
	echo "|---|---|---|---|"
	echo "| containers that ran both probes | ${R[scale.slp.ran]:-0} of $total | ${R[scale.sl.ran]:-0} of $total | ${R[scale.crun.ran]:-0} of $total |"
	echo "| own port: payload arrived once, at the right port | ${R[scale.slp.allowed]:-0} of $total | ${R[scale.sl.allowed]:-0} of $total | ${R[scale.crun.allowed]:-0} of $total |"
	echo "| neighbour's port: payloads arrived | ${R[scale.slp.refused]:-0} | ${R[scale.sl.refused]:-0} | ${R[scale.crun.refused]:-0} |"
	echo "| connections accepted from the containers | ${R[scale.slp.accepts]:-0} | ${R[scale.sl.accepts]:-0} | ${R[scale.crun.accepts]:-0} |"
	echo "| neighbour's port: ECONNREFUSED in the container | ${R[scale.slp.econnrefused]:-0} | ${R[scale.sl.econnrefused]:-0} | ${R[scale.crun.econnrefused]:-0} |"
	echo "| left after delete (state dirs, cgroups, shims) | $((${R[scale.slp.left]:-0} + ${R[scale.shims_left]:-0})) | ${R[scale.sl.left]:-0} | ${R[scale.crun.left]:-0} |"
	echo
	echo "Every container confined: $(scale_verdict)"
	echo "<!-- scale: end -->"
	echo
}

# scale_verdict: "yes" when every container ran and the policy column shows exactly what
# confinement means (the controls show that the refused connects would have arrived
# without it); "confined, but ..." when some did not run but all that ran were confined.
scale_verdict() {
	local total=$((SCALE_N * SCALE_ROUNDS)) ran=${R[scale.slp.ran]:-0}
	local got="${R[scale.slp.allowed]:-0} of $ran allowed connects arrived, each at its container's own port, ${R[scale.slp.refused]:-0} refused ones (${R[scale.slp.econnrefused]:-0} ECONNREFUSED); the control without a policy got ${R[scale.sl.refused]:-0} of $total of the same refused connects through"
	if ((ran == 0)) || [ "${R[scale.slp.allowed]:-0}" != "$ran" ] || [ "${R[scale.slp.refused]:-0}" != 0 ] ||
		[ "${R[scale.slp.accepts]:-0}" != "$ran" ] || [ "${R[scale.slp.econnrefused]:-0}" != "$ran" ]; then
		echo "**NO**: $got."
	elif ((ran == total)); then
		echo "**yes**: $got."
	else
		echo "**confined, but only $ran of $total containers ran** (${R[scale.slp.failed]:-0} failed runtime calls, see above): $got."
	fi
}

# ---------------------------------------------------------------- live changes (issue 12)
#
# "A live change takes effect within 10 ms (p99) of the command returning, and costs the
# running traffic nothing measurable." On a network of its own ($LIVE_NET.0/24: a second
# namespace and veth pair), with listeners on the host: an accept-and-close listener
# (connect_bench) on $LIVE_D:$PORT and the data path's sink on $LIVE_D:$SINK_PORT.
#
# Latency: a container whose policy allows only $LIVE_A:$PORT runs `live_probe probe`
# (bench/live_probe.c), which connects to $LIVE_D:$PORT every $LIVE_INTERVAL_US µs and
# writes to its stdout (a file here: create's stdout) the CLOCK_MONOTONIC time of the first
# connect of each new outcome (allowed/refused). `live_probe drive` on the host runs
# `egress ID --allow $LIVE_D:$PORT`, takes t_return when it exits, waits for the prober's
# "ok", then the same with --revoke and "refused"; delay = that first connect - t_return.
# Once in kernel mode (the default as root), once in supervisor mode (create with
# SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1 SANDLOCK_RUNC_SUPERVISOR_MODE=allow).
#
# Cost: one kernel-mode container allowed $LIVE_D:$SINK_PORT; `exec live_probe stream`
# writes to the sink for $LIVE_MS ms, alone (quiet), while `live_probe churn` on the host
# allows and revokes an unrelated rule ($LIVE_U) every 100 ms (churn), or while it runs the
# read-only `egress ID` at the same rate (list: the same processes started on this 2-core
# machine, no change; the control that tells a change's cost from the CPU its command
# takes). In rounds, the three taking turns (quiet list churn, list churn quiet, ...); the
# ratios churn/quiet and churn/list are taken round by round.

LIVE_NET=10.213.252
LIVE_A=$LIVE_NET.1 LIVE_D=$LIVE_NET.3 LIVE_U="$LIVE_NET.9:443"
LIVE_NS=slbench-live-$$
LIVE_HOST_IF=${TAG}lh
LIVE_PEER_IF=${TAG}lc
LIVE_INTERVAL_US=200 LIVE_CONNECT_TIMEOUT_MS=20 LIVE_WAIT_MS=5000 LIVE_CHURN_MS=100
LIVE_NET_UP=0
LIVE_LISTENER_PID=""
LIVE_SINK_PID=""
LIVE_CHURN_PID=""
LIVE_ERRORS=()

live_net_up() {
	[ -z "$(ip -o addr show to "$LIVE_NET.0/24")" ] || die "$LIVE_NET.0/24 is already in use (a leftover bench run?)"
	ip netns add "$LIVE_NS" || die "ip netns add $LIVE_NS"
	LIVE_NET_UP=1
	ip link add "$LIVE_HOST_IF" type veth peer name "$LIVE_PEER_IF" &&
		ip link set "$LIVE_PEER_IF" netns "$LIVE_NS" &&
		ip addr add "$LIVE_A/24" dev "$LIVE_HOST_IF" &&
		ip addr add "$LIVE_D/32" dev "$LIVE_HOST_IF" &&
		ip link set "$LIVE_HOST_IF" up &&
		ip -n "$LIVE_NS" link set "$LIVE_PEER_IF" name eth0 &&
		ip -n "$LIVE_NS" addr add "$LIVE_NET.2/24" dev eth0 &&
		ip -n "$LIVE_NS" link set eth0 up &&
		ip -n "$LIVE_NS" link set lo up || die "cannot set up the live section's veth pair"
}

# live_kill PID WHAT: stops our child PID if its command line still says WHAT.
live_kill() {
	[ -n "$1" ] || return 0
	if tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "$2"; then
		kill "$1" 2>/dev/null
		wait "$1" 2>/dev/null
	fi
}

live_cleanup() {
	live_kill "$LIVE_CHURN_PID" 'live_probe churn'
	LIVE_CHURN_PID=""
	live_kill "$LIVE_LISTENER_PID" 'connect_bench listen'
	LIVE_LISTENER_PID=""
	live_kill "$LIVE_SINK_PID" 'datapath sink'
	LIVE_SINK_PID=""
	((LIVE_NET_UP)) || return 0
	ip link delete "$LIVE_HOST_IF" 2>/dev/null
	ip netns delete "$LIVE_NS" 2>/dev/null
	LIVE_NET_UP=0
}

live_listeners() {
	local i
	"$BIN/connect_bench" listen "$LIVE_D" "$PORT" 3600 >"$WORK/live/listener.out" 2>&1 &
	LIVE_LISTENER_PID=$!
	"$BIN/datapath" sink "$LIVE_D" "$SINK_PORT" 3600 >"$WORK/live/sink.out" 2>&1 &
	LIVE_SINK_PID=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs ready "$WORK/live/listener.out" && grep -qs ready "$WORK/live/sink.out" && return 0
		sleep 0.1
	done
	die "the live section's listeners did not start: $(cat "$WORK/live/listener.out" "$WORK/live/sink.out")"
}

# live_create MODE ID BUNDLE OUT: creates and starts ID in MODE (kernel|supervisor), its
# stdout into OUT; checks that the mode is the one asked for.
live_create() {
	local mode=$1 id=$2 b=$3 out=$4 rt got
	rt=$(rt_cmd sllive)
	$rt delete --force "$id" >/dev/null 2>&1
	if [ "$mode" = supervisor ]; then
		SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1 SANDLOCK_RUNC_SUPERVISOR_MODE=allow \
			timeout 60 $rt create --bundle "$b" "$id" >"$out" 2>"$out.err" </dev/null
	else
		timeout 60 $rt create --bundle "$b" "$id" >"$out" 2>"$out.err" </dev/null
	fi || {
		LIVE_ERRORS+=("$mode: create $id failed: $(head -c 300 "$out.err" | tr '\n' ' ')")
		return 1
	}
	timeout 30 $rt start "$id" >/dev/null 2>>"$out.err" </dev/null || {
		LIVE_ERRORS+=("$mode: start $id failed: $(head -c 300 "$out.err" | tr '\n' ' ')")
		return 1
	}
	got=$($rt egress --format json "$id" 2>/dev/null | jq -r '.enforcement // "unknown"')
	R[live.$mode.enforcement]=$got
	[ "$got" = "$mode" ] || LIVE_ERRORS+=("$mode: the container's enforcement is \"$got\", not $mode")
}

# live_latency MODE: the prober's container in MODE, LIVE_WARMUP + LIVE_ROUNDS allow/revoke
# cycles; their lines into $WORK/live/MODE.out.
live_latency() {
	local mode=$1 id=$TAG-live-$1 rt args
	rt=$(rt_cmd sllive)
	args=$(jq -cn --arg d "$LIVE_D" --arg p "$PORT" --arg i "$LIVE_INTERVAL_US" --arg t "$LIVE_CONNECT_TIMEOUT_MS" \
		'["/live_probe", "probe", $d, $p, $i, $t]')
	make_bundle "live-probe" "$args" "$LIVE_A:$PORT" "$LIVE_NS"
	: >"$WORK/live/$mode.out"
	live_create "$mode" "$id" "$WORK/b-live-probe" "$WORK/live/$mode.timeline" || return
	# shellcheck disable=SC2086 # $rt's words are paths without spaces
	run_bg "$WORK/live/$mode.out" "$WORK/live/$mode.err" timeout --kill-after=10 1800 \
		"$BIN/live_probe" drive "$LIVE_ROUNDS" "$LIVE_WARMUP" "$WORK/live/$mode.timeline" "$LIVE_WAIT_MS" -- \
		$rt egress "$id" --allow "$LIVE_D:$PORT" ';' $rt egress "$id" --revoke "$LIVE_D:$PORT" ||
		LIVE_ERRORS+=("$mode: live_probe drive exited with status $?: $(grep '^fail' "$WORK/live/$mode.out" | tail -n 2 | tr '\n' ' ') $(head -c 200 "$WORK/live/$mode.err")")
	local f
	f=$(grep -c '^fail' "$WORK/live/$mode.out")
	((f)) && LIVE_ERRORS+=("$mode: $f failed change(s): $(grep '^fail' "$WORK/live/$mode.out" | head -n 3 | tr '\n' ' ')")
	R[live.$mode.stats]=$(grep '^stats' "$WORK/live/$mode.timeline" | tail -n 1)
	# the errno of the first refused connect of each refused period (create's policy, then
	# after every revoke)
	R[live.$mode.errnos]=$(awk '$1 == "refused" { n[$4]++ } END { for (e in n) printf "%s%s x%d", (s++ ? ", " : ""), e, n[e] }' "$WORK/live/$mode.timeline")
	$rt delete --force "$id" >/dev/null 2>&1
}

# live_stream ROUND LABEL ID: one $LIVE_MS ms stream from ID to the sink, quiet or while
# live_probe churn changes ID's policy; into $PAIRS as live.tput.
live_stream() {
	local round=$1 label=$2 id=$3 rt out v changes=""
	rt=$(rt_cmd sllive)
	# shellcheck disable=SC2086 # $rt's words are paths without spaces
	case $label in
	churn) "$BIN/live_probe" churn "$LIVE_CHURN_MS" -- $rt egress "$id" --allow "$LIVE_U" ';' \
		$rt egress "$id" --revoke "$LIVE_U" >"$WORK/live/churn.out" 2>&1 </dev/null & ;;
	list) "$BIN/live_probe" churn "$LIVE_CHURN_MS" -- $rt egress "$id" ';' \
		$rt egress "$id" >"$WORK/live/churn.out" 2>&1 </dev/null & ;;
	esac
	if [ "$label" != quiet ]; then
		LIVE_CHURN_PID=$!
		sleep 0.05
	fi
	# shellcheck disable=SC2086
	run_bg "$WORK/live/stream.out" "$WORK/live/stream.err" timeout 60 \
		$rt exec "$id" /live_probe stream "$LIVE_D" "$SINK_PORT" 65536 "$LIVE_MS"
	out=$(head -n 1 "$WORK/live/stream.out")
	v=$(field "$out" MBps)
	if [ "$label" != quiet ]; then
		live_kill "$LIVE_CHURN_PID" 'live_probe churn'
		LIVE_CHURN_PID=""
		changes=$(sed -n 's/^churn changes=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$WORK/live/churn.out")
		R[live.${label}_changes]+=" ${changes% *}"
		[ "${changes#* }" = 0 ] || LIVE_ERRORS+=("$label, round $round: ${changes#* } of ${changes% *} commands failed")
	fi
	[[ "$v" =~ ^[0-9.]+$ ]] || {
		LIVE_ERRORS+=("$label stream, pair $round: $out $(head -c 200 "$WORK/live/stream.err" | tr '\n' ' ')")
		v=nan
	}
	echo "live.tput $round $label $v" >>"$PAIRS"
}

live_cost() {
	local id=$TAG-live-tput rt r
	rt=$(rt_cmd sllive)
	make_bundle "live-tput" '["/bin/sleep","1000"]' "$LIVE_A:$PORT;$LIVE_D:$SINK_PORT" "$LIVE_NS"
	live_create kernel "$id" "$WORK/b-live-tput" "$WORK/live/tput.stdout" || return
	live_stream -1 quiet "$id" # warm-up, not counted
	sed -i '/^live.tput -1 /d' "$PAIRS"
	local order=(quiet list churn) k
	for ((r = 0; r < LIVE_COST_ROUNDS; r++)); do
		for ((k = 0; k < 3; k++)); do live_stream "$r" "${order[(r + k) % 3]}" "$id"; done
	done
	R[live.final_rules]=$($rt egress --format json "$id" 2>/dev/null | jq -r '.policy.allow_rules | join(";")')
	$rt delete --force "$id" >/dev/null 2>&1
}

live() {
	log "live: change latency, $LIVE_ROUNDS allow/revoke cycles after $LIVE_WARMUP warm-up, kernel then supervisor mode; cost: $LIVE_COST_ROUNDS rounds of three $LIVE_MS ms streams"
	mkdir -p "$WORK/live"
	live_net_up
	live_listeners
	live_latency kernel
	live_latency supervisor
	log "live: cost to a running stream"
	live_cost
	live_cleanup
	# the raw lines, for a look at every change (the work directory goes at exit)
	local mode
	for mode in kernel supervisor; do
		cp "$WORK/live/$mode.out" "$BIN/live-$mode.raw" 2>/dev/null
		cp "$WORK/live/$mode.timeline" "$BIN/live-$mode.timeline" 2>/dev/null
	done
	((${#LIVE_ERRORS[@]})) && log "live: ${#LIVE_ERRORS[@]} error line(s), e.g. ${LIVE_ERRORS[0]}"
	return 0
}

# live_q FILE DIR COL Q [CLAMP]: the Q-quantile of column COL of FILE's "change DIR" lines
# (negative values as 0 when CLAMP is 1), in ms with 2 decimals.
live_q() {
	awk -v d="$2" -v c="$3" -v z="${5:-0}" '$1 == "change" && $2 == d { v = $c; if (z && v < 0) v = 0; print v / 1000 }' "$1" 2>/dev/null |
		quantile "$4" | awk '{ if ($1 ~ /^[0-9.e+-]+$/) printf "%.2f", $1; else print $1 }'
}

# live_gap MODE: median / max of (first connect of the new outcome - last of the old), ms.
live_gap() {
	local f=$WORK/live/$1.out
	echo "$(awk '$1 == "change" { print ($5 - $6) / 1000 }' "$f" 2>/dev/null | quantile 0.5 | awk '{ if ($1 ~ /^[0-9.e+-]+$/) printf "%.2f", $1; else print $1 }') / $(awk '$1 == "change" { print ($5 - $6) / 1000 }' "$f" 2>/dev/null | quantile 1 | awk '{ if ($1 ~ /^[0-9.e+-]+$/) printf "%.2f", $1; else print $1 }')"
}

live_report() {
	local mode d f n neg late
	echo "<!-- live: begin -->"
	echo "## Live policy changes (issue 12): how soon a change holds, and what changes cost a running stream"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), sandlock-runc build of $SL_BUILT; \`bench/run.sh --only live\`$( ((QUICK)) && echo " (quick mode: few cycles and pairs)")."
	echo "- Latency: a busybox container allowed only $LIVE_A:$PORT runs bench/live_probe.c \`probe\`: a non-blocking connect to $LIVE_D:$PORT (host listener) every $LIVE_INTERVAL_US µs, recording (CLOCK_MONOTONIC, shared with the host) when the first connect of each new outcome was made. The host runs \`egress ID --allow $LIVE_D:$PORT\`, then \`--revoke\` once the prober saw the change, $LIVE_ROUNDS times after $LIVE_WARMUP warm-up cycle(s). Delay = that first connect - the moment the command returned; a negative delay (the change held before the command returned, as it should) counts as 0: the column \"before return\" says how many."
	echo
	echo "| mode | change | delay p50 (ms) | delay p99 (ms) | delay max (ms) | before return | signed delay p50 / min (ms) | old verdict after return | command p50 (ms) | command p99 (ms) | changes | target | |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for mode in kernel supervisor; do
		f=$WORK/live/$mode.out
		for d in allow revoke; do
			n=$(awk -v d="$d" '$1 == "change" && $2 == d { n++ } END { print n + 0 }' "$f" 2>/dev/null || echo 0)
			neg=$(awk -v d="$d" '$1 == "change" && $2 == d && $5 < 0 { n++ } END { print n + 0 }' "$f" 2>/dev/null || echo 0)
			# changes whose old verdict was still given to a connect made after the return
			late=$(awk -v d="$d" '$1 == "change" && $2 == d && $6 > 0 { n++; if ($6 > m) m = $6 } END { if (n) printf "%d (up to %.2f ms)", n, m / 1000; else print 0 }' "$f" 2>/dev/null || echo 0)
			local p99
			p99=$(live_q "$f" "$d" 5 0.99 1)
			echo "| $mode (${R[live.$mode.enforcement]:-?}) | --$d | $(live_q "$f" "$d" 5 0.5 1) | $p99 | $(live_q "$f" "$d" 5 1 1) | $neg of $n | $(live_q "$f" "$d" 5 0.5) / $(live_q "$f" "$d" 5 0) | $late | $(live_q "$f" "$d" 4 0.5) | $(live_q "$f" "$d" 4 0.99) | $n of $LIVE_ROUNDS | p99 <= 10 ms | $( ((n)) && verdict "$p99" 10 le || echo "?") |"
		done
	done
	echo
	echo "Signed delay: unclamped (negative: the first connect with the new outcome was made that long before the command returned; every change's line in \`$BIN/live-MODE.raw\`, the prober's timeline in \`live-MODE.timeline\`); the resolution is the prober's period, $LIVE_INTERVAL_US µs plus a connect, and whatever the scheduler adds: the gap between the last connect with the old verdict and the first with the new one was, median / max (ms): kernel $(live_gap kernel), supervisor $(live_gap supervisor). Old verdict after return: changes for which a connect made after the command returned still got the old outcome (the change did not hold at the return, contrary to the command's promise); a positive delay without one only says that the prober did not get to run (2 busy cores). The prober's last count (every 500 attempts): kernel: ${R[live.kernel.stats]:-none}; supervisor: ${R[live.supervisor.stats]:-none} (other = attempts neither allowed nor refused: timeouts, other errors). The errno of the first refused connect of each refused period (the first one under create's policy, then one after each revoke): kernel: ${R[live.kernel.errnos]:-none}; supervisor: ${R[live.supervisor.errnos]:-none}."
	echo
	local r
	r=$(pratio live.tput churn quiet)
	echo "- Cost: a kernel-mode container allowed $LIVE_D:$SINK_PORT; \`exec live_probe stream\` writes 64 KiB at a time to the host sink for $LIVE_MS ms, alone (quiet), while \`live_probe churn\` on the host allows and revokes $LIVE_U (never used) every $LIVE_CHURN_MS ms (churn), or while it runs the read-only \`egress ID\` at the same rate (list: the same number of runtime processes on this 2-core machine, no change, no shim call). $LIVE_COST_ROUNDS rounds after one warm-up stream, the three taking turns (quiet list churn, list churn quiet, ...); ratios taken round by round. Commands per run (the stream's $LIVE_MS ms plus exec's start), median: churn $(med_of "${R[live.churn_changes]:-}") changes, list $(med_of "${R[live.list_changes]:-}")."
	echo
	echo "| figure | quiet | list | churn | churn/quiet | round ratios, lowest-highest | churn/list | round ratios, lowest-highest | target | |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	echo "| TCP write(), 64 KiB (MB/s) | $(num "$(pmed live.tput quiet)" 0) | $(num "$(pmed live.tput list)" 0) | $(num "$(pmed live.tput churn)" 0) | $r | $(pspread live.tput churn quiet) | $(pratio live.tput churn list) | $(pspread live.tput churn list) | churn/quiet >= 0.95x (nothing measurable) | $(verdict "$r" 0.95 ge) |"
	echo
	if ((${#LIVE_ERRORS[@]})); then
		echo "Errors:"
		echo
		printf -- '- %s\n' "${LIVE_ERRORS[@]}"
		echo
	fi
	echo "<!-- live: end -->"
	echo
}

# ---------------------------------------------------------------- rootless (issue 14)
#
# The cost of the egress annotation rootless. As an unprivileged user the cgroup BPF
# programs cannot be attached, so a policy runs in supervisor mode: the seccomp filter
# hands every connect, every sendto with an address, every sendmsg and every sendmmsg to
# the shim (running as the user), which copies the address and data out of the caller and
# performs the call on its duplicate of the socket (runtime/egress/filter.cpp,
# runtime/shim/on_behalf.cpp); write(), and send()/sendto() without an address, stay the
# kernel's. A test user made for the run ($RL_USER: useradd, removed at the end with
# every process of it) runs `sandlock-runc spec --rootless` bundles, without a cgroup
# (none is delegated here) and without a network namespace of their own: the containers
# share the host's, where the sink, the connect listener and the refused destination's
# receivers listen on the bench veth's address $LISTEN_IP. slirp4netns would put a
# user-space TCP/IP stack on every byte and connect, in both setups, and hide the shim's
# cost under its own. bench/datapath.c runs in two such containers started together, no
# policy and a policy (checked to be in supervisor mode with `egress ID`), driven by the
# user, in pairs; then `run /bin/true` with and without a policy, in pairs
# (bench/interleave.c run by the user). The receiving end confirms the enforcement:
# egress_listener on $LISTEN_IP:$RL_REFUSED_PORT (TCP and UDP, not in the policy) must
# get every probe of the setup without a policy and none of the policy's.

RL_USER=slbench$$
RL_MADE_USER=0
RL_DIR=""
RL_REFUSED_PORT=82
RL_LISTENERS=() # egress_listener daemons' pids
RL_ERRORS=()
RL_EGRESS=""    # what `egress ID` said of the policy container

# as_rl CMD...: CMD as the test user, without capabilities or groups, in $RL_DIR, in a
# private mount namespace of its own where /dev/null is a 0666 node (this host's is 0755,
# which no unprivileged process can open for writing, the shim included; the same
# workaround as integration/rootless.bash's, never changing the host). The namespace and
# its tmpfs go with the last process in it (the containers' shims included).
as_rl() {
	(cd "$RL_DIR" && unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=0755,size=64k slbench-dev "$1" && mknod -m 0666 "$1/null" c 1 3 &&
			mount --bind "$1/null" /dev/null || exit 125
		shift
		exec "$@"' sh "$WORK/rl-dev" \
		setpriv --reuid="$RL_USER" --regid="$RL_USER" --clear-groups --inh-caps=-all \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$RL_DIR" XDG_RUNTIME_DIR="$RL_DIR/xdg" "$@" 3>&-)
}

rl_user_pids() { ps -u "$RL_USER" -o pid= 2>/dev/null; }

# rl_setup: the user and its directory; $WORK opened for it to read (the rootfs, the
# runtime and the bench programs are root's, readable).
rl_setup() {
	command -v setpriv >/dev/null && command -v useradd >/dev/null || die "rootless: setpriv and useradd are needed"
	id "$RL_USER" >/dev/null 2>&1 && die "rootless: user $RL_USER exists already"
	useradd --no-create-home --home-dir "$WORK/rl" --shell /usr/sbin/nologin --user-group "$RL_USER" ||
		die "rootless: useradd $RL_USER"
	RL_MADE_USER=1
	RL_DIR=$WORK/rl
	chmod 0755 "$WORK"
	mkdir -m 0700 "$RL_DIR" "$RL_DIR/xdg" && mkdir "$RL_DIR/state" "$WORK/rl-dev" || die "rootless: mkdir"
	chown -R "$RL_USER:" "$RL_DIR" || die "rootless: chown"
	cp "$BIN/interleave" "$WORK/interleave" && chmod 0755 "$WORK/interleave" || die "rootless: cp interleave"
}

# rl_bundle NAME ARGS_JSON [ALLOW]: $RL_DIR/b-NAME from `spec --rootless` written by the
# user, the host's network namespace (no "network" entry).
rl_bundle() {
	local dir=$RL_DIR/b-$1
	as_rl mkdir "$dir" && as_rl sh -c "cd $dir && exec $SL spec --rootless" || die "rootless: spec --rootless"
	jq --arg root "$WORK/rootfs" --argjson args "$2" --arg allow "${3:-}" '
		.root = {path: $root, readonly: true}
		| .process.terminal = false
		| .process.args = $args
		| .linux.namespaces |= map(select(.type != "network"))
		| if $allow != "" then .annotations["io.sandlock.network.allow"] = $allow else . end' \
		"$dir/config.json" >"$WORK/rl-config.json" && as_rl cp "$WORK/rl-config.json" "$dir/config.json" ||
		die "rootless: bundle $1"
}

# rl_listen PROTO: an egress_listener of PROTO on the refused destination.
rl_listen() {
	local pid
	pid=$("$BUILD/helpers/egress_listener" "$1" "$LISTEN_IP" "$RL_REFUSED_PORT" "$WORK/rl-refused.log" 3600) ||
		die "rootless: egress_listener $1 on $LISTEN_IP:$RL_REFUSED_PORT"
	RL_LISTENERS+=("$pid")
}

# The datapath list (one list: a row added there is measured here too), rootless: two
# setups everywhere (no minimal supervisor), 64 KiB sendmsg too, and where refused
# traffic goes instead of the policy-enforced probe.
rl_tests() {
	datapath_tests | sed \
		-e "/^tcp_sendmsg /a tcp_sendmsg64 2 MBps tcp_sendmsg $LISTEN_IP $SINK_PORT 65536 $DP_MS" \
		-e 's/^\(connect\|tput1\|tput8\) 3 /\1 2 /' \
		-e '/^enforced /d'
	echo "deliver 2 udp_sent,udp_errno,tcp_sent,tcp_errno probe_deliver $LISTEN_IP $RL_REFUSED_PORT 1"
}

rootless() {
	local rt setup i
	log "rootless: test user $RL_USER; $DP_ROUNDS pairs of each data-path figure, $RL_RUNS of \`run\`"
	rl_setup
	start_sink
	rl_listen tcp
	rl_listen udp
	rl_bundle dp-none '["/datapath","serve","rl-none"]'
	rl_bundle dp-policy '["/datapath","serve","rl-policy"]' "$POLICY_DATAPATH"
	rl_bundle true '["/bin/true"]'
	rl_bundle true-p '["/bin/true"]' "$POLICY_DATAPATH"
	rl_tests >"$WORK/rl.tests"
	rt="$SL --root $RL_DIR/state"
	# the drive runs as the user; `egress ID` on the policy container once it runs
	# shellcheck disable=SC2086 # $rt's words are paths without spaces
	as_rl timeout --kill-after=10 1800 "$WORK/rootfs/datapath" drive "$DP_ROUNDS" "$DP_WARMUP" "$WORK/rl.tests" -- \
		$rt run --bundle "$RL_DIR/b-dp-none" bench-rl-none ';' \
		$rt run --bundle "$RL_DIR/b-dp-policy" bench-rl-policy \
		>"$WORK/rl.out" 2>"$WORK/rl.err" </dev/null &
	BG_PID=$!
	for ((i = 0; i < 300; i++)); do
		RL_EGRESS=$(as_rl $rt egress bench-rl-policy 2>&1 </dev/null) && break
		RL_EGRESS=""
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$BG_PID" || RL_ERRORS+=("datapath drive exited with status $?: $(tail -n 3 "$WORK/rl.err" | tr '\n' ' ')")
	BG_PID=""
	awk '$1 == "raw" { split("none policy", name, " "); print "rl." $2, $3, name[$4 + 1], $5 }' "$WORK/rl.out" >>"$PAIRS"
	while read -r _ test setup rest; do
		case $setup in 0) setup=none ;; 1) setup=policy ;; esac
		RL_ERRORS+=("$test, $setup: $rest")
	done < <(grep '^err ' "$WORK/rl.out")
	((${#RL_ERRORS[@]})) && log "rootless: ${#RL_ERRORS[@]} error line(s), e.g. ${RL_ERRORS[0]}"
	# shellcheck disable=SC2086
	for setup in bench-rl-none bench-rl-policy; do as_rl $rt delete --force $setup >/dev/null 2>&1 </dev/null; done
	log "rootless: run /bin/true, $RL_RUNS pairs"
	# shellcheck disable=SC2086
	as_rl "$WORK/interleave" -o "$RL_DIR/run.raw" "$RL_RUNS" "$WARMUP" 0 -- \
		$rt run --bundle "$RL_DIR/b-true" bench-rl-true ';' \
		$rt run --bundle "$RL_DIR/b-true-p" bench-rl-true-p >"$WORK/rl-run.out" 2>&1 </dev/null ||
		RL_ERRORS+=("interleave (run) failed: $(head -c 300 "$WORK/rl-run.out")")
	awk '{ print "rl.run", $1, ($2 == 0 ? "none" : "policy"), ($4 == 0 ? $3 : "nan") }' "$RL_DIR/run.raw" >>"$PAIRS"
	for setup in none policy; do
		i=$(pfails rl.run "$setup")
		((i)) && RL_ERRORS+=("run /bin/true, $setup: $i of $(pcount rl.run "$setup") runs failed")
	done
	if [ "$(pfails rl.run policy)" != 0 ]; then
		# once more by hand, to log what the runtime said
		RL_ERRORS+=("  e.g.: $(as_rl $rt run --bundle "$RL_DIR/b-true-p" bench-rl-true-p 2>&1 </dev/null | head -c 300 | tr '\n' ' ')")
		as_rl $rt delete --force bench-rl-true-p >/dev/null 2>&1 </dev/null
	fi
	sleep 0.3 # the listeners' last records
	stop_sink
	rl_cleanup
}

# rl_cleanup: the user's containers, processes, listeners, the user (its group and
# subordinate ids go with userdel) and its directory; whatever failed before.
rl_cleanup() {
	local pid i id
	if ((RL_MADE_USER)); then
		if [ -d "$RL_DIR/state" ]; then
			for id in "$RL_DIR"/state/*; do
				[ -e "$id" ] || continue
				as_rl timeout 30 "$SL" --root "$RL_DIR/state" delete --force "$(basename "$id")" >/dev/null 2>&1 </dev/null
			done
		fi
		for ((i = 0; i < 50; i++)); do
			pid=$(rl_user_pids)
			[ -z "$pid" ] && break
			# shellcheck disable=SC2086 # one pid a word
			kill -9 $pid 2>/dev/null
			sleep 0.1
		done
		userdel -f "$RL_USER" 2>/dev/null || log "rootless: userdel $RL_USER failed"
		getent group "$RL_USER" >/dev/null && groupdel "$RL_USER" 2>/dev/null
		RL_MADE_USER=0
	fi
	for pid in "${RL_LISTENERS[@]}"; do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^[^ ]*egress_listener ' && kill "$pid" 2>/dev/null
	done
	RL_LISTENERS=()
	[ -n "$RL_DIR" ] && rm -rf --one-file-system "$RL_DIR"
	RL_DIR=""
}

# rl_count PATTERN: the refused destination's records matching PATTERN (awk).
rl_count() { awk "$1 { n++ } END { print n + 0 }" "$WORK/rl-refused.log" 2>/dev/null || echo 0; }

report_rootless() {
	echo "## Rootless (issue 14): the egress annotation in supervisor mode, policy vs no policy, in pairs"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), sandlock-runc build of $SL_BUILT; \`bench/run.sh --only rootless\`$( ((QUICK)) && echo ' --quick'). A test user (no capabilities, no delegated cgroup: the containers run without one) runs \`sandlock-runc spec --rootless\` bundles (busybox, read-only root, a user namespace mapping the user to root) without a network namespace of their own: the host's, so that no user-space network stack (slirp4netns) sits in both columns and hides the shim's cost. bench/datapath.c serves in two containers started together: no policy; io.sandlock.network.allow=\"$POLICY_DATAPATH\"; sends go to a sink on $LISTEN_IP:$SINK_PORT (the bench veth's host address), connects to the accept-and-close listener on $LISTEN_IP:$PORT."
	echo "- enforcement of the policy container, from \`egress ID\` run by the user: $(grep -m1 '^enforced by' <<<"$RL_EGRESS" | sed 's/  */ /g' || true)$([ -z "$RL_EGRESS" ] && echo 'NOT READ')"
	echo "- $DP_ROUNDS pairs per figure after $DP_WARMUP warm-up, the setups taking turns (A B, B A, ...); a send figure is $DP_MS ms of sending, a connect latency $DP_NCONN connects, a throughput $DP_NTPUT connects; \`run\` $RL_RUNS pairs after $WARMUP warm-up (bench/interleave.c, run by the user). Figures: medians; ratios: the median of the pair-by-pair ratios."
	echo
	echo "| figure | through the shim | no policy | policy | policy/no policy | pair ratios, lowest-highest |"
	echo "|---|---|---|---|---|---|"
	local key name d via
	while IFS='|' read -r key via name d; do
		echo "| $name | $via | $(num "$(pmed "rl.$key" none)" "$d") | $(num "$(pmed "rl.$key" policy)" "$d") | $(pratio "rl.$key" policy none) | $(pspread "rl.$key" policy none) |"
	done <<-EOT
		tcp_write.MBps|no|TCP write(), 64 KiB (MB/s)|0
		tcp_send.MBps|no|TCP send(), 64 KiB (MB/s)|0
		tcp_sendmsg.MBps|yes|TCP sendmsg(), 4 KiB (MB/s)|0
		tcp_sendmsg64.MBps|yes|TCP sendmsg(), 64 KiB (MB/s)|0
		udp_sendto.msgs_per_s|yes|UDP sendto(), 64 B, unconnected (msgs/s)|0
		udp_send.msgs_per_s|no|UDP send(), 64 B, connected (msgs/s)|0
		udp_sendmsg.msgs_per_s|yes|UDP sendmsg() with an address, 64 B (msgs/s)|0
		udp_sendmsg_conn.msgs_per_s|yes|UDP sendmsg() on a connected socket, no address, 64 B (msgs/s)|0
		sendmmsg.msgs_per_s|yes|UDP sendmmsg() x16 with addresses, 64 B (msgs/s)|0
		gso.msgs_per_s|yes|UDP_SEGMENT on a connected UDP socket, 16 x 1200 B a send (segments/s)|0
		connect.median_us|yes|TCP connect latency, median (µs)|1
		connect.p99_us|yes|TCP connect latency, p99 (µs)|1
		tput1.ops_per_s|yes|connect throughput, 1 thread (/s)|0
		tput8.ops_per_s|yes|connect throughput, 8 threads (/s)|0
		run|-|\`run\` /bin/true (ms)|1
	EOT
	echo "| \`run\` /bin/true, policy - no policy (ms) | | | | $(pdiff rl.run policy none) | |"
	echo
	# the receiving end: every probe of the setup without a policy arrived, none of the
	# policy's (the payload names the setup; the sources are alike, the host's)
	local probes n_udp n_tcp p_any accepts e_udp e_tcp s_pol
	probes=$(pcount rl.deliver.udp_sent none)
	probes=$((probes + DP_WARMUP))
	n_udp=$(rl_count '$1 == "udp" && $4 == "data" && $6 == "rl-none-udp"')
	n_tcp=$(rl_count '$1 == "tcp" && $4 == "data" && $6 == "rl-none-tcp"')
	p_any=$(rl_count '$6 ~ /^rl-policy-/')
	accepts=$(rl_count '$1 == "tcp" && $4 == "accept"')
	s_pol=$(awk '$1 == "rl.deliver.udp_sent" && $3 == "policy" && $4 == 1 { n++ } $1 == "rl.deliver.tcp_sent" && $3 == "policy" && $4 == 1 { n++ } END { print n + 0 }' "$PAIRS")
	e_udp=$(pmed rl.deliver.udp_errno policy) e_tcp=$(pmed rl.deliver.tcp_errno policy)
	errname() { case $1 in 1) echo "EPERM" ;; 13) echo "EACCES" ;; 111) echo "ECONNREFUSED" ;; *) echo "errno $1" ;; esac; }
	echo "The receiving end, egress_listener on $LISTEN_IP:$RL_REFUSED_PORT (TCP and UDP; not in the policy), over $probes probes per setup (the warm-up's included): from the container without a policy $n_udp datagrams and $n_tcp connections' payloads arrived; from the policy's $p_any (the container saw $s_pol sends succeed; refused with $(errname "$e_udp") for the datagram, $(errname "$e_tcp") for the connect); connections accepted in all: $accepts."
	if [ "$n_udp" = "$probes" ] && [ "$n_tcp" = "$probes" ] && [ "$p_any" = 0 ] && [ "$s_pol" = 0 ] && [ "$accepts" = "$probes" ] &&
		grep -q '^enforced by: *supervisor mode' <<<"$RL_EGRESS"; then
		echo "Policy enforced, in supervisor mode: **yes**."
	else
		echo "Policy enforced, in supervisor mode: **NO or unknown**: the policy column does not measure a confined container."
	fi
	echo
	if ((${#RL_ERRORS[@]})); then
		echo "Errors (a figure counts successful calls only; a failed run is left out of the medians and pairs):"
		echo
		printf -- '- %s\n' "${RL_ERRORS[@]}"
		echo
	fi
}

# ---------------------------------------------------------------- report

ratio() { # ratio A B: A/B with two decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'
}
num() { awk -v a="$1" -v d="${2:-1}" 'BEGIN { if (a ~ /^[0-9.e+-]+$/) printf "%.*f", d, a; else print a }'; }
mib() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.1f MiB", a / 1024; else print a }'; }

machine() {
	echo "## Machine"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); mode: $( ((QUICK)) && echo quick || echo full) (lifecycle: $RUNS rounds of the runtimes in turn, $((RUNS * 2)) for \`run\`; egress: $NCONN connects per run, $REPS runs per figure; data path: $DP_ROUNDS pairs per figure)"
	echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "- kernel: $(uname -r); memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- runtimes: sandlock-runc $("$SL" --version 2>/dev/null | head -n1 | awk '{ print $NF }') (build of $SL_BUILT), $(runc --version | head -n1), $(crun --version | head -n1)"
	echo "- cgroups: hybrid; crun 1.8.1 refuses hybrid mode and \`--cgroup-manager=disabled\` does not help, so a v1 hugetlb hierarchy was mounted while the lifecycle rows were timed (the runtimes take turns run by run, so all of them joined it; only crun's peak RSS was measured with it, the others' without it) and given back to cgroup2 afterwards."
	echo "- every bundle: busybox rootfs (read-only), joins a pre-made network namespace; \"policy\" = annotation io.sandlock.network.allow=\"$POLICY1\" (the shim starts)."
	echo
}

# want SECTION: whether this run measures (and reports) SECTION.
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

report() {
	# with --only, the other sections' figures are unset: they print as "-"
	local -
	set +u
	machine
	want lifecycle && report_lifecycle
	want shim && report_shim
	want egress && report_egress
	want datapath && report_datapath
	want scale && scale_report
	want live && live_report
	want rootless && report_rootless
	if [ -z "$ONLY" ]; then report_targets; fi
}

report_lifecycle() {
	local op name
	echo '## Lifecycle (medians, ms; ratios vs crun / vs runc taken round by round, the runtimes taking turns run by run: bench/interleave.c)'
	echo
	echo "| operation | sandlock-runc | with policy | runc | crun | sandlock/crun | policy/crun | sandlock/runc | policy/runc |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for op in run run_spaced csd create start state kill delete; do
		case $op in
		run) name='`run` /bin/true' ;;
		run_spaced) name='`run` /bin/true, runs 0.3 s apart' ;;
		csd) name='create + start + delete -f' ;;
		create) name='create (alone)' ;;
		start) name='start (alone)' ;;
		kill) name='kill 9 (running)' ;;
		delete) name='delete -f (running)' ;;
		*) name=$op ;;
		esac
		echo "| $name | $(num "${R[sl.$op]}") | $(num "${R[slp.$op]}") | $(num "${R[runc.$op]}") | $(num "${R[crun.$op]}") | $(pratio $op sl crun) | $(pratio $op slp crun) | $(pratio $op sl runc) | $(pratio $op slp runc) |"
	done
	for op in rss_run rss_create; do
		echo "| peak RSS, \`${op#rss_}\` (/usr/bin/time %M) | $(mib "${R[sl.$op]}") | $(mib "${R[slp.$op]}") | $(mib "${R[runc.$op]}") | $(mib "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[crun.$op]}") | $(ratio "${R[slp.$op]}" "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[runc.$op]}") | $(ratio "${R[slp.$op]}" "${R[runc.$op]}") |"
	done
	echo
	echo "Peak RSS: medians of $RSS_REPS runs each, one runtime after the other (memory does not drift as time does)."
	echo
	echo '### A policy'"'"'s cost (issue 10): `run` and `create` with 1, 100 and 1000 rules vs none, round by round'
	echo
	echo "- 1 rule: \"$POLICY1\"; 1000 rules: 1000 distinct IP literals 10.100.X.Y:443 and that rule (1001 in all); 100 rules: that rule and 99 more on $NET.101-199."
	echo
	echo "| | no policy (ms) | policy (ms) | policy/no policy | pair ratios, lowest-highest | policy - no policy (ms) | target | |"
	echo "|---|---|---|---|---|---|---|---|"
	local r
	r=$(pratio run slp sl)
	echo "| \`run\` /bin/true, 1 rule | $(num "${R[sl.run]}") | $(num "${R[slp.run]}") | $r | $(pspread run slp sl) | $(pdiff run slp sl) | <= 1.15x | $(verdict "$r" 1.15 le) |"
	r=$(pratio run slp1000 sl)
	echo "| \`run\` /bin/true, 1000 rules | $(num "${R[sl.run]}") | $(num "${R[slp1000.run]}") | $r | $(pspread run slp1000 sl) | $(pdiff run slp1000 sl) | <= 1.15x | $(verdict "$r" 1.15 le) |"
	echo "| create, 1 rule | $(num "${R[sl.create]}") | $(num "${R[slp.create]}") | $(pratio create slp sl) | $(pspread create slp sl) | $(pdiff create slp sl) | | |"
	echo "| create, 100 rules | $(num "${R[sl.create]}") | $(num "${R[slp100.create]}") | $(pratio create slp100 sl) | $(pspread create slp100 sl) | $(pdiff create slp100 sl) | | |"
	echo "| create, 1000 rules | $(num "${R[sl.create]}") | $(num "${R[slp1000.create]}") | $(pratio create slp1000 sl) | $(pspread create slp1000 sl) | $(pdiff create slp1000 sl) | | |"
	r=$(pdiff create slp1000 slp)
	echo "| create, 1000 rules vs 1 rule | $(num "${R[slp.create]}") (1 rule) | $(num "${R[slp1000.create]}") | $(pratio create slp1000 slp) | $(pspread create slp1000 slp) | $r | <= +2 ms | $(verdict "$r" 2 le) |"
	echo
	if ((${#FAILURES[@]})); then
		echo "Failed runs (left out of the medians and of the round-by-round ratios):"
		echo
		printf -- '- %s\n' "${FAILURES[@]}"
	fi
	echo
}

report_shim() {
	echo "## The shim"
	echo
	echo "| | 1 rule | 100 rules | target |"
	echo "|---|---|---|---|"
	echo "| steady RSS (smaps_rollup) | $(mib "${R[slp.shim_rss]}") | $(mib "${R[slp100.shim_rss]}") | <= 2 MiB with 100 rules |"
	echo "| steady PSS | $(mib "${R[slp.shim_pss]}") | $(mib "${R[slp100.shim_pss]}") | |"
	echo "| threads | ${R[slp.shim_threads]:-?} | ${R[slp100.shim_threads]:-?} | |"
	echo "| create (ms) | $(num "${R[slp.create]}") | $(num "${R[slp100.create]}") | |"
	echo "| added to create vs no policy (ms, round by round) | $(pdiff create slp sl) | $(pdiff create slp100 sl) | |"
	echo
}

report_egress() {
	echo "## Egress, per call, from inside a container (veth to the host; ratio vs the minimal C supervisor)"
	echo
	echo "| | no policy | policy, shim | min_supervisor | shim/min | shim/none |"
	echo "|---|---|---|---|---|---|"
	row() { echo "| $1 | $(num "${R[none.$2]}" "$3") | $(num "${R[shim.$2]}" "$3") | $(num "${R[min.$2]}" "$3") | $(ratio "${R[shim.$2]}" "${R[min.$2]}") | $(ratio "${R[shim.$2]}" "${R[none.$2]}") |"; }
	row "TCP connect latency, median (µs)" connect_med 1
	row "TCP connect latency, p99 (µs)" connect_p99 1
	row "UDP sendto, 64 B (calls/s)" udp 0
	echo "| UDP sendmmsg, 16 x 64 B (msgs/s) | $(num "${R[none.sendmmsg]}" 0) | $(num "${R[shim.sendmmsg]}" 0) | n/a (not intercepted) | - | $(ratio "${R[shim.sendmmsg]}" "${R[none.sendmmsg]}") |"
	row "connect throughput, 1 thread (/s)" tput1 0
	row "connect throughput, 4 threads (/s)" tput4 0
	row "connect throughput, 16 threads (/s)" tput16 0
	echo
	echo "## Head-of-line (median µs of allowed connects while another process's connect hangs on a dropped SYN)"
	echo
	echo "| | no policy | policy, shim | shim hol / shim alone |"
	echo "|---|---|---|---|"
	echo "| median connect (µs) | $(num "${R[none.hol]}") | $(num "${R[shim.hol]}") | $(ratio "${R[shim.hol]}" "${R[shim.connect_med]}") |"
	echo
}

report_targets() {
	echo "## Targets (issue 5)"
	echo
	target() { echo "| $1 | $2 | $3 | $(awk -v v="$2" -v lim="$4" -v dir="$5" 'BEGIN { v += 0; if (v == 0) print "?"; else if ((dir == "le" && v <= lim) || (dir == "ge" && v >= lim)) print "met"; else print "MISSED" }') |"; }
	echo "| target | measured | limit | |"
	echo "|---|---|---|---|"
	target '`run` without policy vs crun' "$(pratio run sl crun)" '<= 1.0x' 1.0 le
	target '`run` with policy vs crun' "$(pratio run slp crun)" '<= 1.3x' 1.3 le
	target '`run` without policy vs crun, spaced' "$(pratio run_spaced sl crun)" '<= 1.0x' 1.0 le
	target '`run` with policy vs crun, spaced' "$(pratio run_spaced slp crun)" '<= 1.3x' 1.3 le
	target 'peak RSS (`run`) vs crun' "$(ratio "${R[sl.rss_run]}" "${R[crun.rss_run]}")" '<= 1.0x' 1.0 le
	target 'shim RSS, 100 rules (MiB)' "$(awk -v a="${R[slp100.shim_rss]}" 'BEGIN { printf "%.2f", a / 1024 }')" '<= 2' 2 le
	target 'connect latency shim/min' "$(ratio "${R[shim.connect_med]}" "${R[min.connect_med]}")" '<= 1.1x' 1.1 le
	target '16-thread connect throughput shim/min' "$(ratio "${R[shim.tput16]}" "${R[min.tput16]}")" '>= 0.9x' 0.9 ge
	target 'head-of-line: shim hol/alone' "$(ratio "${R[shim.hol]}" "${R[shim.connect_med]}")" '<= 1.2x' 1.2 le
	echo
	echo "## Targets (issue 10; ratios taken pair by pair)"
	echo
	echo "| target | measured | limit | |"
	echo "|---|---|---|---|"
	target '`run` with a 1-rule policy vs none' "$(pratio run slp sl)" '<= 1.15x' 1.15 le
	target '`run` with a 1000-rule policy vs none' "$(pratio run slp1000 sl)" '<= 1.15x' 1.15 le
	local d k worst="" worst_key=""
	d=$(pdiff create slp1000 slp)
	echo "| create, 1000 rules - 1 rule (ms) | $d | <= +2 | $(verdict "$d" 2 le) |"
	for k in tcp_write.MBps tcp_send.MBps tcp_sendmsg.MBps udp_sendto.msgs_per_s udp_send.msgs_per_s udp_sendmsg.msgs_per_s udp_sendmsg_conn.msgs_per_s sendmmsg.msgs_per_s gso.msgs_per_s; do
		d=$(pratio "dp.$k" policy none)
		if [ "$d" = - ]; then worst="-" worst_key=$k; break; fi
		if [ -z "$worst" ] || awk -v a="${d%x}" -v b="${worst%x}" 'BEGIN { exit !(a < b) }'; then worst=$d worst_key=$k; fi
	done
	target "every data-path figure, policy/no policy (lowest: ${worst_key%%.*})" "$worst" '>= 0.95x' 0.95 ge
	target 'connect median, policy/min_supervisor CONTINUE' "$(pratio dp.connect.median_us policy min)" '<= 1.1x' 1.1 le
	target 'connect throughput, 1 thread, policy/no policy' "$(pratio dp.tput1.ops_per_s policy none)" '>= 0.8x' 0.8 ge
	target 'connect throughput, 8 threads, policy/no policy' "$(pratio dp.tput8.ops_per_s policy none)" '>= 0.8x' 0.8 ge
	echo
}

# ---------------------------------------------------------------- main

# write_results: the whole report into $RESULTS, keeping the hand-written notes after the
# marker. A full `--only scale` replaces just the scale section of bench/RESULTS.md
# (inserted before the targets when the file has none yet).
write_results() {
	local out=$RESULTS
	if [ -n "$ONLY" ]; then
		if { [ "$ONLY" = scale ] || [ "$ONLY" = live ]; } && ((!QUICK)) && [ -e "$RESULTS" ]; then
			if [ "$ONLY" = live ]; then live_report; else scale_report; fi >"$WORK/$ONLY.md"
			awk -v f="$WORK/$ONLY.md" -v begin="<!-- $ONLY: begin -->" -v end="<!-- $ONLY: end -->" '
				function put() { while ((getline l < f) > 0) print l; done = 1 }
				$0 == begin { put(); skip = 1; next }
				skip && $0 == end { skip = 0; getline; if ($0 != "") print; next }
				skip { next }
				!done && (/^## Targets/ || /^<!-- notes: kept by run.sh -->$/) { put() }
				{ print }' "$RESULTS" >"$RESULTS.new" && mv "$RESULTS.new" "$RESULTS" || die "cannot write $RESULTS"
			log "$ONLY section written to $RESULTS"
			return
		fi
		out=$BIN/RESULTS-only-$ONLY.md
		((QUICK)) && out=$BIN/RESULTS-quick-only-$ONLY.md
	fi
	{
		echo "# sandlock-runc benchmarks"
		echo
		echo "Generated by \`make bench\` (bench/run.sh); the section after the marker at the end is kept across runs."
		echo
		cat "$WORK/report.md"
		echo "<!-- notes: kept by run.sh -->"
		if [ -e "$out" ]; then sed -n '/^<!-- notes: kept by run.sh -->$/,$p' "$out" | tail -n +2; fi
	} >"$out.new" && mv "$out.new" "$out" || die "cannot write $out"
	log "written to $out"
}

ensure_tools
build_programs
setup
net_up
start_listener

if want lifecycle; then
	lifecycle
	delete_all_containers
	restore_hugetlb
fi

if want shim; then
	log "shim memory"
	shim_memory slp "$WORK/b-sleep-p"
	shim_memory slp100 "$WORK/b-sleep-p100"
fi

want egress && egress
want datapath && datapath
want scale && scale
want live && live
want rootless && rootless

report >"$WORK/report.md"
cat "$WORK/report.md"
write_results
