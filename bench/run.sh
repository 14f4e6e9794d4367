#!/usr/bin/env bash
# The body of `make bench`: sandlock-runc against runc and crun (lifecycle, memory) and its
# egress path against a minimal C supervisor (bench/min_supervisor.c), all in one run on
# this machine. Prints a table and writes it to bench/RESULTS.md (--quick: few
# repetitions, written to $BUILD/bench/RESULTS-quick.md; never asserts on timings).
#
#   BUILD=/abs/build bench/run.sh [--quick] [--only lifecycle|shim|egress|scale]
#
# BUILD (default: the repo's build/) holds sandlock-runc and helpers/egress_{listener,probe}.
# --only runs one section: its table is printed and written to
# $BUILD/bench/RESULTS-only-SECTION.md, except a full (not --quick) `--only scale`, which
# replaces the scale section of bench/RESULTS.md and keeps the rest of the file.
#
# Needs root. Creates, and removes on any exit: a network namespace and a veth pair
# (10.213.251.0/24), an nftables table, listeners, containers under private --root
# directories (and their shims and cgroups), and (for crun 1.8.1 on hybrid cgroups) a v1
# hugetlb hierarchy mounted only while crun is measured.
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
		case $ONLY in lifecycle | shim | egress | scale) ;; *)
			echo "bench: --only lifecycle|shim|egress|scale" >&2
			exit 2
			;;
		esac
		;;
	*)
		echo "usage: bench/run.sh [--quick] [--only lifecycle|shim|egress|scale]" >&2
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
	RESULTS=$BIN/RESULTS-quick.md
else
	RUNS=30 RUNS_SPACED=30 WARMUP=3 NCONN=5000 NUDP=50000 NTPUT=8000 REPS=3 RSS_REPS=10
	SCALE_N=50 SCALE_ROUNDS=3
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
	for cmd in hyperfine:hyperfine runc:runc crun:crun /usr/bin/time:time jq:jq nft:nftables ip:iproute2 gcc:gcc; do
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
	for p in connect_bench min_supervisor interleave; do
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
	delete_all_containers
	scale_cleanup
	stop_listener
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

# make_bundle NAME ARGS_JSON [ALLOW]: $WORK/b-NAME sharing $WORK/rootfs, joined to $NS.
make_bundle() {
	local dir=$WORK/b-$1 args=$2 allow=${3:-}
	mkdir -p "$dir"
	jq --arg root "$WORK/rootfs" --arg ns "/run/netns/$NS" --argjson args "$args" --arg allow "$allow" '
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
	cp "$BIN/connect_bench" "$BIN/min_supervisor" "$WORK/rootfs/"
	(cd "$WORK" && "$SL" spec && mv config.json base.json) || die "sandlock-runc spec"
	local label
	for label in sl slp slp100 runc crun; do
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
}

# ---------------------------------------------------------------- measurement helpers

declare -A R=() # result key -> value
FAILURES=()     # lines for the report

# hf KEY PREPARE COMMAND: hyperfine median (ms) of COMMAND into R[KEY]. A run that fails
# is counted (R[KEY.fails]) and the runtime's message logged; the median is then over all
# runs, failed ones included.
hf() {
	local key=$1 prep=$2 cmd=$3 json=$WORK/hf-$1.json fails i
	local args=(-N -i --runs "$RUNS" --warmup "$WARMUP" --style none --export-json "$json")
	[ -n "$prep" ] && args+=(--prepare "$prep")
	if ! hyperfine "${args[@]}" "$cmd" >"$WORK/hf-$key.log" 2>&1; then
		R[$key]=fail
		log "$key failed: $(tail -n 3 "$WORK/hf-$key.log")"
		return
	fi
	R[$key]=$(jq '.results[0].median * 1000' "$json")
	fails=$(jq '[.results[0].exit_codes[] | select(. != 0)] | length' "$json")
	((fails)) || return 0
	R[$key.fails]=$fails
	FAILURES+=("$key: $fails of $RUNS runs failed ($cmd)")
	# once more by hand, to log what the runtime said
	for ((i = 0; i < 30; i++)); do
		[ -n "$prep" ] && eval "$prep" >/dev/null 2>&1
		eval "$cmd" >"$WORK/hf.out" 2>&1 </dev/null || {
			FAILURES+=("  e.g.: $(head -c 400 "$WORK/hf.out" | tr '\n' ' ')")
			break
		}
	done
	log "${FAILURES[-2]:-} ${FAILURES[-1]}"
}

# The label's runtime, root and bundle suffix (sl = no policy, slp = with a policy).
rt_cmd() { echo "$(runtime_bin "$1") --root ${ROOTS[$1]}"; }
bundle_of() {
	case $1 in
	slp) echo "$WORK/b-$2-p" ;;
	slp100) echo "$WORK/b-$2-p100" ;;
	*) echo "$WORK/b-$2" ;;
	esac
}

# run_interleaved: the `run` rows. The four runtimes take turns run by run (interleave.c),
# so that this shared machine's drift falls on all of them alike, all with the v1 hugetlb
# hierarchy crun needs mounted (the others join it too). Back-to-back, and spaced out as
# callers run containers: the first cgroup v1 migration after a quiet period waits for an
# RCU grace period, back-to-back runs mostly do not.
run_interleaved() {
	local label args=() out key pause runs warm i line
	mount_hugetlb
	for label in sl slp runc crun; do
		# shellcheck disable=SC2207 # rt_cmd's words are paths without spaces
		args+=($(rt_cmd "$label") run --bundle "$(bundle_of "$label" true)" "bench-i-$label" ";")
	done
	log "lifecycle: run, interleaved"
	for key in run run_spaced; do
		if [ $key = run ]; then pause=0 runs=$((RUNS * 2)) warm=$WARMUP; else pause=300 runs=$RUNS_SPACED warm=1; fi
		out=$("$BIN/interleave" "$runs" "$warm" "$pause" -- "${args[@]}") || die "interleave failed"
		i=0
		for label in sl slp runc crun; do
			line=$(sed -n "$((i + 1))p" <<<"$out")
			R[$label.$key]=$(awk '{ printf "%.3f", $1 }' <<<"$line")
			if [ "$(awk '{ print $3 }' <<<"$line")" != 0 ]; then
				FAILURES+=("$label.$key: $(awk '{ print $3 }' <<<"$line") of $runs runs failed")
			fi
			i=$((i + 1))
		done
	done
	restore_hugetlb
}

lifecycle() {
	local label rt id b bs
	run_interleaved
	for label in sl slp runc crun; do
		# crun alone needs it; mounted only meanwhile (other tests on this machine see it)
		[ "$label" = crun ] && mount_hugetlb
		rt=$(rt_cmd "$label")
		id=bench-$label
		b=$(bundle_of "$label" true)
		bs=$(bundle_of "$label" sleep)
		local del="sh -c '$rt delete --force $id >/dev/null 2>&1; true'"
		log "lifecycle: $label"
		hf "$label.csd" "$del" "sh -c '$rt create --bundle $b $id && $rt start $id && $rt delete --force $id'"
		hf "$label.create" "$del" "$rt create --bundle $bs $id"
		hf "$label.start" "sh -c '$rt delete --force $id >/dev/null 2>&1; $rt create --bundle $bs $id'" "$rt start $id"
		hf "$label.kill" "sh -c '$rt delete --force $id >/dev/null 2>&1; $rt create --bundle $bs $id && $rt start $id'" "$rt kill $id 9"
		hf "$label.delete" "sh -c '$rt delete --force $id >/dev/null 2>&1; $rt create --bundle $bs $id && $rt start $id'" "$rt delete --force $id"
		$rt delete --force $id >/dev/null 2>&1
		$rt create --bundle "$bs" $id >/dev/null 2>&1 && $rt start $id >/dev/null 2>&1
		hf "$label.state" "" "$rt state $id"
		$rt delete --force $id >/dev/null 2>&1
		peak_rss "$label" "$rt" "$b" "$bs" $id
		[ "$label" = crun ] && restore_hugetlb
	done
	# a policy of 100 rules: what create costs then
	rt=$(rt_cmd slp100)
	hf "slp100.create" "sh -c '$rt delete --force bench-p100 >/dev/null 2>&1; true'" \
		"$rt create --bundle $WORK/b-sleep-p100 bench-p100"
	$rt delete --force bench-p100 >/dev/null 2>&1
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

# ---------------------------------------------------------------- report

ratio() { # ratio A B: A/B with two decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'
}
num() { awk -v a="$1" -v d="${2:-1}" 'BEGIN { if (a ~ /^[0-9.e+-]+$/) printf "%.*f", d, a; else print a }'; }
mib() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.1f MiB", a / 1024; else print a }'; }

machine() {
	echo "## Machine"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); mode: $( ((QUICK)) && echo quick || echo full) ($RUNS hyperfine runs, $NCONN connects per run, $REPS runs per egress figure)"
	echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "- kernel: $(uname -r); memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- runtimes: sandlock-runc $("$SL" --version 2>/dev/null | head -n1 | awk '{ print $NF }') (build of $SL_BUILT), $(runc --version | head -n1), $(crun --version | head -n1)"
	echo "- cgroups: hybrid; crun 1.8.1 refuses hybrid mode and \`--cgroup-manager=disabled\` does not help, so a v1 hugetlb hierarchy was mounted while crun was measured (runc and sandlock-runc ran without it, i.e. with one v1 hierarchy fewer to join, except in the \`run\` rows, where the four runtimes take turns run by run with it mounted for all) and given back to cgroup2 afterwards."
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
	want scale && scale_report
	if [ -z "$ONLY" ]; then report_targets; fi
}

report_lifecycle() {
	local op
	echo '## Lifecycle (medians, ms; ratio vs crun / vs runc, same run; the `run` rows by bench/interleave.c, the runtimes taking turns, the others by hyperfine)'
	echo
	echo "| operation | sandlock-runc | with policy | runc | crun | sandlock/crun | policy/crun | sandlock/runc | policy/runc |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for op in run run_spaced csd create start state kill delete; do
		local name=$op
		case $op in
		run) name='`run` /bin/true' ;;
		run_spaced) name='`run` /bin/true, runs 0.3 s apart' ;;
		csd) name='create + start + delete -f' ;;
		create) name='create (alone)' ;;
		start) name='start (alone)' ;;
		kill) name='kill 9 (running)' ;;
		delete) name='delete -f (running)' ;;
		esac
		echo "| $name | $(num "${R[sl.$op]}") | $(num "${R[slp.$op]}") | $(num "${R[runc.$op]}") | $(num "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[crun.$op]}") | $(ratio "${R[slp.$op]}" "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[runc.$op]}") | $(ratio "${R[slp.$op]}" "${R[runc.$op]}") |"
	done
	for op in rss_run rss_create; do
		echo "| peak RSS, \`${op#rss_}\` (/usr/bin/time %M) | $(mib "${R[sl.$op]}") | $(mib "${R[slp.$op]}") | $(mib "${R[runc.$op]}") | $(mib "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[crun.$op]}") | $(ratio "${R[slp.$op]}" "${R[crun.$op]}") | $(ratio "${R[sl.$op]}" "${R[runc.$op]}") | $(ratio "${R[slp.$op]}" "${R[runc.$op]}") |"
	done
	echo
	if ((${#FAILURES[@]})); then
		echo
		echo "Failed runs (counted in the medians above):"
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
	echo "| added to create vs no policy (ms) | $(awk -v a="${R[slp.create]}" -v b="${R[sl.create]}" 'BEGIN { printf "%+.1f", a - b }') | $(awk -v a="${R[slp100.create]}" -v b="${R[sl.create]}" 'BEGIN { printf "%+.1f", a - b }') | |"
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
	target '`run` without policy vs crun' "$(ratio "${R[sl.run]}" "${R[crun.run]}")" '<= 1.0x' 1.0 le
	target '`run` with policy vs crun' "$(ratio "${R[slp.run]}" "${R[crun.run]}")" '<= 1.3x' 1.3 le
	target '`run` without policy vs crun, spaced' "$(ratio "${R[sl.run_spaced]}" "${R[crun.run_spaced]}")" '<= 1.0x' 1.0 le
	target '`run` with policy vs crun, spaced' "$(ratio "${R[slp.run_spaced]}" "${R[crun.run_spaced]}")" '<= 1.3x' 1.3 le
	target 'peak RSS (`run`) vs crun' "$(ratio "${R[sl.rss_run]}" "${R[crun.rss_run]}")" '<= 1.0x' 1.0 le
	target 'shim RSS, 100 rules (MiB)' "$(awk -v a="${R[slp100.shim_rss]}" 'BEGIN { printf "%.2f", a / 1024 }')" '<= 2' 2 le
	target 'connect latency shim/min' "$(ratio "${R[shim.connect_med]}" "${R[min.connect_med]}")" '<= 1.1x' 1.1 le
	target '16-thread connect throughput shim/min' "$(ratio "${R[shim.tput16]}" "${R[min.tput16]}")" '>= 0.9x' 0.9 ge
	target 'head-of-line: shim hol/alone' "$(ratio "${R[shim.hol]}" "${R[shim.connect_med]}")" '<= 1.2x' 1.2 le
	echo
}

# ---------------------------------------------------------------- main

# write_results: the whole report into $RESULTS, keeping the hand-written notes after the
# marker. A full `--only scale` replaces just the scale section of bench/RESULTS.md
# (inserted before the targets when the file has none yet).
write_results() {
	local out=$RESULTS
	if [ -n "$ONLY" ]; then
		if [ "$ONLY" = scale ] && ((!QUICK)) && [ -e "$RESULTS" ]; then
			scale_report >"$WORK/scale.md"
			awk -v f="$WORK/scale.md" '
				function put() { while ((getline l < f) > 0) print l; done = 1 }
				/^<!-- scale: begin -->$/ { put(); skip = 1; next }
				skip && /^<!-- scale: end -->$/ { skip = 0; getline; if ($0 != "") print; next }
				skip { next }
				!done && (/^## Targets/ || /^<!-- notes: kept by run.sh -->$/) { put() }
				{ print }' "$RESULTS" >"$RESULTS.new" && mv "$RESULTS.new" "$RESULTS" || die "cannot write $RESULTS"
			log "scale section written to $RESULTS"
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
want scale && scale

report >"$WORK/report.md"
cat "$WORK/report.md"
write_results
