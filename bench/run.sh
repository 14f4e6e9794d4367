#!/usr/bin/env bash
# The body of `make bench`: sandlock-runc against runc and crun (lifecycle, memory) and its
# egress path against a minimal C supervisor (bench/min_supervisor.c), all in one run on
# this machine. Prints a table and writes it to bench/RESULTS.md (--quick: few
# repetitions, written to $BUILD/bench/RESULTS-quick.md; never asserts on timings).
#
#   BUILD=/abs/build bench/run.sh [--quick]
#
# Needs root. Creates, and removes on any exit: a network namespace and a veth pair
# (10.213.251.0/24), an nftables table, a listener, containers under private --root
# directories, and (for crun 1.8.1 on hybrid cgroups) a v1 hugetlb hierarchy mounted for
# the lifecycle part only.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
BUILD=${BUILD:-$REPO/build}
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
SL=$BUILD/sandlock-runc
BIN=$BUILD/bench

if ((QUICK)); then
	RUNS=3 RUNS_SPACED=2 WARMUP=1 NCONN=300 NUDP=2000 NTPUT=400 REPS=1 RSS_REPS=2
	RESULTS=$BIN/RESULTS-quick.md
else
	RUNS=30 RUNS_SPACED=15 WARMUP=3 NCONN=5000 NUDP=50000 NTPUT=8000 REPS=3 RSS_REPS=10
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
	for p in connect_bench min_supervisor; do
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

lifecycle() {
	local label rt id b bs
	for label in sl slp runc crun; do
		# crun alone needs it; mounted only meanwhile (other tests on this machine see it)
		[ "$label" = crun ] && mount_hugetlb
		rt=$(rt_cmd "$label")
		id=bench-$label
		b=$(bundle_of "$label" true)
		bs=$(bundle_of "$label" sleep)
		local del="sh -c '$rt delete --force $id >/dev/null 2>&1; true'"
		log "lifecycle: $label"
		hf "$label.run" "" "$rt run --bundle $b $id"
		# spaced out, as callers run containers: the first cgroup v1 migration after a
		# quiet period waits for an RCU grace period, back-to-back runs mostly do not
		RUNS=$RUNS_SPACED hf "$label.run_spaced" "sleep 0.3" "$rt run --bundle $b $id"
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

# shim_pid ROOT ID: the shim serving ROOT/ID (it runs as `sandlock-runc shim ROOT/ID`).
shim_pid() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" = "sandlock-runc shim $1/$2 " ] && {
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
	echo "- cgroups: hybrid; crun 1.8.1 refuses hybrid mode and \`--cgroup-manager=disabled\` does not help, so a v1 hugetlb hierarchy was mounted while crun was measured only (runc and sandlock-runc ran without it, i.e. with one v1 hierarchy fewer to join) and given back to cgroup2 afterwards."
	echo "- every bundle: busybox rootfs (read-only), joins a pre-made network namespace; \"policy\" = annotation io.sandlock.network.allow=\"$POLICY1\" (the shim starts)."
	echo
}

report() {
	local op
	machine
	echo "## Lifecycle (hyperfine medians, ms; ratio vs crun / vs runc, same run)"
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

ensure_tools
build_programs
setup
net_up
start_listener

lifecycle
delete_all_containers
restore_hugetlb

log "shim memory"
shim_memory slp "$WORK/b-sleep-p"
shim_memory slp100 "$WORK/b-sleep-p100"

egress

report >"$WORK/report.md"
cat "$WORK/report.md"
{
	echo "# sandlock-runc benchmarks"
	echo
	echo "Generated by \`make bench\` (bench/run.sh); the section after the marker at the end is kept across runs."
	echo
	cat "$WORK/report.md"
	echo "<!-- notes: kept by run.sh -->"
	if [ -e "$RESULTS" ]; then sed -n '/^<!-- notes: kept by run.sh -->$/,$p' "$RESULTS" | tail -n +2; fi
} >"$RESULTS.new" && mv "$RESULTS.new" "$RESULTS" || die "cannot write $RESULTS"
log "written to $RESULTS"
