#!/usr/bin/env bats
# Rootless (issue 14). Without podman: `sandlock-runc spec --rootless` and `run` as an
# unprivileged user (nobody), the runtime itself writing the user namespace's maps and
# running without a cgroup where none is delegated, as crun does. The runtime is a
# private copy and every file the user needs is under a directory of the test's own;
# nothing outside it is written.
# With podman: a test user made for the file (useradd, subuid/subgid ranges; removed at
# the end, with every process of it) runs Debian's podman rootless (newuidmap, slirp4netns)
# on storage under a temp dir, each scenario with crun and with the runtime under test,
# whose exit codes must be crun's (rootless.bash); the egress annotation rootless
# (supervisor mode) is judged at host listeners. A delegated cgroup is made by hand in
# each hierarchy for one test and removed by its teardown.

bats_require_minimum_version 1.5.0

load helpers
load egress
load rootless

setup_file() {
	rlp_setup_file
}

teardown_file() {
	rlp_teardown_file
}

RL_USER=nobody

setup() {
	common_setup
	RLP_LISTENERS=()
	EG_LISTENERS=()
	# a directory the unprivileged user owns (BATS_TEST_TMPDIR's parents are root's, 0700)
	RL_DIR=$(mktemp -d /tmp/slit-rootless.XXXXXX)
	chmod 0755 "$RL_DIR"
	cp "$RUNTIME" "$RL_DIR/sandlock-runc"
	cp -a "$ROOTFS" "$RL_DIR/rootfs"
	mkdir -p "$RL_DIR/state" "$RL_DIR/bundle"
	chown -R "$RL_USER:" "$RL_DIR/state" "$RL_DIR/bundle"
}

teardown() {
	rlp_teardown
	rl_undelegate
	local pid
	for pid in "${RLP_LISTENERS[@]}"; do kill "$pid" 2>/dev/null; done
	# whatever the test left: the user's containers, then the directory
	as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" list -q 2>/dev/null | while read -r id; do
		as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" delete --force "$id" >/dev/null 2>&1
	done
	pkill -9 -u "$RL_USER" -f "$RL_DIR" 2>/dev/null
	rm -rf --one-file-system "$RL_DIR"
	common_teardown
	egress_teardown
}

# as_user CMD...: CMD as the unprivileged user, without capabilities, in the bundle dir.
as_user() {
	(cd "$RL_DIR/bundle" && timeout --kill-after=5 60 setpriv --reuid="$RL_USER" --regid=nogroup --clear-groups \
		--inh-caps=-all env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$RL_DIR" "$@" </dev/null 3>&-)
}

# rl_spec ARGS_JSON [JQ_FILTER]: the rootless default spec, written by the user, with
# process.args ARGS_JSON and the rootfs of the test.
rl_spec() {
	as_user "$RL_DIR/sandlock-runc" spec --rootless || return 1
	jq --arg root "$RL_DIR/rootfs" --argjson args "$1" ".root.path = \$root | .process.terminal = false
		| .process.args = \$args | ${2:-.}" "$RL_DIR/bundle/config.json" >"$RL_DIR/bundle/c" &&
		mv "$RL_DIR/bundle/c" "$RL_DIR/bundle/config.json" && chown "$RL_USER:" "$RL_DIR/bundle/config.json"
}

@test "rootless: spec --rootless maps the user to root in a user namespace; run works as that user without a cgroup" {
	rl_spec '["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups"]'
	[ "$(jq -c '.linux.uidMappings' "$RL_DIR/bundle/config.json")" = "[{\"containerID\":0,\"hostID\":$(id -u "$RL_USER"),\"size\":1}]" ]
	run as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" --debug run rl1
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx 0 <<<"$output" # root inside
	grep -Eq "^ +0 +$(id -u "$RL_USER") +1$" <<<"$output"
	# setgroups is denied in the namespace: the kernel's price for an unprivileged gid_map
	grep -qx deny <<<"$output"
	grep -q 'rootless: no cgroup (create cgroup .*: Permission denied): the container runs without one' <<<"$output"
	# nothing left: state, processes
	[ -z "$(ls -A "$RL_DIR/state")" ]
	! pgrep -u "$RL_USER" -f "$RL_DIR" >/dev/null
}

@test "rootless: a spec asking for a limit without a delegated cgroup fails create with one line; nothing left" {
	rl_spec '["true"]' '.linux.resources = {"pids": {"limit": 10}}'
	run as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" run rl2
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	grep -Eq '^create cgroup /sys/fs/cgroup/.*rl2: Permission denied$' <<<"$output"
	[ -z "$(ls -A "$RL_DIR/state")" ]
	! pgrep -u "$RL_USER" -f "$RL_DIR" >/dev/null
}

# rl_delegate: a cgroup RL_DELEG in every hierarchy, given to the user with its files (v1
# delegation, and cgroup2's: the user owns the directory, cgroup.procs and
# subtree_control), as systemd delegates a user's slice. Removed by rl_undelegate.
rl_delegate() {
	local h
	RL_DELEG=slit-deleg-$RUN_TOKEN-$BATS_SUITE_TEST_NUMBER
	for h in /sys/fs/cgroup/*/; do
		case "$(stat -f -c %T "$h")" in
		cgroupfs | cgroup2fs) mkdir "$h$RL_DELEG" && chown -R "$RL_USER:" "$h$RL_DELEG" || return 1 ;;
		esac
	done
}

# rl_undelegate: the delegated cgroups, whatever the test left in them: the processes
# still in them (a container a failed test left running: they are the test's own) are
# killed first, then the cgroups removed, deepest first.
rl_undelegate() {
	[ -n "${RL_DELEG:-}" ] || return 0
	local h pids i
	for ((i = 0; i < 50; i++)); do
		pids=$(cat /sys/fs/cgroup/*/"$RL_DELEG"/cgroup.procs /sys/fs/cgroup/*/"$RL_DELEG"/*/cgroup.procs 2>/dev/null | sort -u)
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086 # one pid a word
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
	for h in /sys/fs/cgroup/*/"$RL_DELEG"; do
		[ -d "$h" ] || continue
		find "$h" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
		rmdir "$h" 2>/dev/null || echo "rl_undelegate: $h is left" >&2
	done
	RL_DELEG=
}

@test "rootless: a delegated cgroup is used: the spec's limits are applied in it (the container cannot fork past pids.max), and removed with the container" {
	rl_delegate
	# inside: sh and a subshell, whose 9th sleep passes the limit of 10 tasks
	rl_spec '["sh", "-c", "cat /proc/self/cgroup; (i=0; while [ $i -lt 12 ]; do sleep 2 & i=$((i + 1)); done; echo forked-12) 2>&1; sleep 1"]' \
		".linux.cgroupsPath = \"/$RL_DELEG/rl3\" | .linux.resources = {\"pids\": {\"limit\": 10}, \"memory\": {\"limit\": 33554432}}"
	# cgroup2 moves a process only within a subtree the mover may write at the common
	# ancestor: the user's processes start inside the delegated cgroup, as under systemd
	local procs=/sys/fs/cgroup/unified/$RL_DELEG/cgroup.procs
	[ -e "$procs" ] || procs=/sys/fs/cgroup/$RL_DELEG/cgroup.procs
	(echo "$BASHPID" >"$procs" && as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" run rl3 >"$RL_DIR/out" 2>&1) &
	local pid=$! limit=""
	wait_limit() { limit=$(cat "/sys/fs/cgroup/pids/$RL_DELEG/rl3/pids.max" 2>/dev/null) && [ -n "$limit" ]; }
	eventually 10 wait_limit
	local mem
	mem=$(cat "/sys/fs/cgroup/memory/$RL_DELEG/rl3/memory.limit_in_bytes" 2>/dev/null || cat "/sys/fs/cgroup/$RL_DELEG/rl3/memory.max")
	local status=0
	wait "$pid" || status=$?
	cat "$RL_DIR/out"
	[ "$status" -eq 0 ]
	[ "$limit" = 10 ]
	[ "$mem" = 33554432 ]
	# the container met the limit: a fork failed (busybox: "can't fork"), 12 did not go
	grep -q "can't fork" "$RL_DIR/out"
	! grep -q forked-12 "$RL_DIR/out"
	grep -q "^[0-9]*:pids:/$RL_DELEG/rl3\$" "$RL_DIR/out" || grep -q "^0::/$RL_DELEG/rl3\$" "$RL_DIR/out"
	# removed by the runtime (the user's own directories)
	[ -z "$(find /sys/fs/cgroup/*/"$RL_DELEG" -mindepth 1 -type d 2>/dev/null)" ]
	[ -z "$(ls -A "$RL_DIR/state")" ]
}

@test "rootless podman: run --rm exits as with crun: true 0, false 1, exit 3, not executable 126, not found 127; state under XDG_RUNTIME_DIR" {
	rlp_setup
	local stamp=$RLP_DIR/tmp/stamp
	touch "$stamp"
	rlp_both "true" rlpq run --rm "$RLP_IMAGE" true
	[ "$OURS_RC" -eq 0 ]
	rlp_both "false" rlpq run --rm "$RLP_IMAGE" false
	[ "$OURS_RC" -eq 1 ]
	rlp_both "exit 3" rlpq run --rm "$RLP_IMAGE" sh -c 'echo out-line; exit 3'
	[ "$OURS_RC" -eq 3 ]
	grep -qx out-line <<<"$OURS_OUT"
	rlp_both "/etc/passwd" rlpq run --rm "$RLP_IMAGE" /etc/passwd
	[ "$OURS_RC" -eq 126 ]
	grep -qi 'permission denied' <<<"$OURS_OUT"
	rlp_both "/no/such" rlpq run --rm "$RLP_IMAGE" /no/such
	[ "$OURS_RC" -eq 127 ]
	grep -qiE 'no such file|not found' <<<"$OURS_OUT"
	# the default state root of a runtime that is root only in podman's user namespace
	[ -d "$RLP_DIR/xdg/sandlock-runc" ]
	[ -z "$(find /run/sandlock-runc -maxdepth 1 -newer "$stamp" 2>/dev/null)" ]
	rlp_assert_clean
}

@test "rootless podman: --runtime-flag root=DIR keeps the state in DIR (run -d, exec, rm), nothing under XDG_RUNTIME_DIR" {
	rlp_setup
	local st=$RLP_DIR/tmp/rt-state name=rl-rf-$RUN_TOKEN id
	mkdir -p "$st" && chown "$RLP_USER:" "$st"
	run rlpq ours --runtime-flag "root=$st" run -d --name "$name" "$RLP_IMAGE" sleep 100
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(rlp_podman inspect -f '{{.Id}}' "$name" </dev/null)
	[ -d "$st/$id" ]
	[ -z "$(ls -A "$RLP_DIR/xdg/sandlock-runc" 2>/dev/null)" ]
	run rlpq ours --runtime-flag "root=$st" exec "$name" sh -c 'exit 4'
	[ "$status" -eq 4 ]
	run rlpq ours --runtime-flag "root=$st" rm -f -t 0 "$name"
	echo "$output"
	[ "$status" -eq 0 ]
	# podman 4.3's exit command (conmon's `podman container cleanup`) does not pass
	# --runtime-flag: when it wins the race with rm, nobody deletes in DIR and the state
	# stays there, with crun (in its DIR) as with us; `delete --force` with that root
	# removes it
	[ -z "$(ls -A "$st" | grep -vx "$id")" ]
	as_user_rlp_delete() { as_rlp "$RLP_DIR/bin/sandlock-runc" --root "$st" delete --force "$id" </dev/null; }
	[ ! -e "$st/$id" ] || as_user_rlp_delete
	[ -z "$(ls -A "$st")" ]
	rlp_assert_clean
}

@test "rootless podman: run -d, exec (0, 5, 127), stop (the trap's exit code), kill (137), rm: as with crun; nothing left" {
	rlp_setup
	local rt name codes=()
	for rt in crun ours; do
		name=rl-$rt-$RUN_TOKEN
		run rlpq "$rt" run -d --name "$name" "$RLP_IMAGE" sh -c 'trap "exit 3" TERM; echo started; while :; do sleep 0.1; done'
		echo "$rt run -d: $status $output"
		[ "$status" -eq 0 ]
		run rlpq "$rt" exec "$name" true
		codes+=("$rt exec true $status")
		run rlpq "$rt" exec "$name" sh -c 'exit 5'
		codes+=("$rt exec exit-5 $status")
		run -127 rlpq "$rt" exec "$name" /no/such
		codes+=("$rt exec not-found $status")
		run rlpq "$rt" stop -t 10 "$name"
		codes+=("$rt stop $status")
		codes+=("$rt stopped-with $(rlp_pm "$rt" inspect -f '{{.State.ExitCode}}' "$name" </dev/null)")
		run rlpq "$rt" rm "$name"
		codes+=("$rt rm $status")
		run rlpq "$rt" run -d --name "$name-k" "$RLP_IMAGE" sleep 100
		[ "$status" -eq 0 ]
		run rlpq "$rt" kill "$name-k"
		codes+=("$rt kill $status")
		codes+=("$rt killed-with $(rlp_pm "$rt" wait "$name-k" </dev/null)")
		run rlpq "$rt" rm "$name-k"
		codes+=("$rt rm-killed $status")
		rlp_assert_clean
	done
	printf '%s\n' "${codes[@]}"
	# ours: the same codes as crun's, in the same order
	[ "$(printf '%s\n' "${codes[@]}" | grep '^crun ' | cut -d' ' -f2-)" = "$(printf '%s\n' "${codes[@]}" | grep '^ours ' | cut -d' ' -f2-)" ]
	printf '%s\n' "${codes[@]}" | grep -qx 'ours exec exit-5 5'
	printf '%s\n' "${codes[@]}" | grep -qx 'ours exec not-found 127'
	printf '%s\n' "${codes[@]}" | grep -qx 'ours stopped-with 3'
	printf '%s\n' "${codes[@]}" | grep -qx 'ours killed-with 137'
	[ -z "$(rlp_podman ps -aq </dev/null)" ]
}

@test "rootless podman: --userns=keep-id, --user 1000:1000, --read-only: as with crun" {
	rlp_setup
	local uid gid
	uid=$(id -u "$RLP_USER")
	gid=$(id -g "$RLP_USER")
	rlp_both "keep-id" rlpq run --rm --userns=keep-id "$RLP_IMAGE" sh -c 'id -u; id -g; cat /proc/self/uid_map'
	[ "$OURS_RC" -eq 0 ]
	[ "$(sed -n 1p <<<"$OURS_OUT")" = "$uid" ]
	[ "$(sed -n 2p <<<"$OURS_OUT")" = "$gid" ]
	rlp_both "user" rlpq run --rm --user 1000:1000 "$RLP_IMAGE" sh -c 'id -u; id -g; touch /tmp/x'
	[ "$OURS_RC" -eq 0 ]
	[ "$(tr '\n' ' ' <<<"$OURS_OUT")" = "1000 1000 " ]
	rlp_both "read-only /" rlpq run --rm --read-only "$RLP_IMAGE" touch /x
	[ "$OURS_RC" -eq 1 ]
	grep -qi 'read-only file system' <<<"$OURS_OUT"
	rlp_both "read-only /tmp" rlpq run --rm --read-only "$RLP_IMAGE" touch /tmp/x
	[ "$OURS_RC" -eq 0 ]
	rlp_assert_clean
}

@test "rootless podman: run -it and exec -it with a terminal: as with crun" {
	rlp_setup
	rlp_both "run -it" rlp_pty run --rm -it "$RLP_IMAGE" sh -c 'tty; exit 7'
	[ "$OURS_RC" -eq 7 ]
	grep -q '^/dev/pts/' <<<"$OURS_OUT"
	local rt codes=()
	for rt in crun ours; do
		run rlpq "$rt" run -d --name "rl-t-$rt-$RUN_TOKEN" "$RLP_IMAGE" sleep 100
		[ "$status" -eq 0 ]
		run rlp_pty "$rt" exec -it "rl-t-$rt-$RUN_TOKEN" sh -c 'tty; exit 4'
		echo "$rt exec -it: $status $output"
		codes+=("$status")
		grep -q '^/dev/pts/' <<<"$output"
		rlpq "$rt" rm -f -t 0 "rl-t-$rt-$RUN_TOKEN"
	done
	[ "${codes[*]}" = "4 4" ]
	rlp_assert_clean
}

@test "rootless podman: the network (slirp4netns) and a limit podman cannot apply rootless" {
	rlp_setup
	rlp_both "tap0" rlpq run --rm "$RLP_IMAGE" sh -c 'ip -o addr show tap0 | grep -c inet'
	[ "$OURS_RC" -eq 0 ]
	# cgroup v1 rootless: podman drops the limit with a warning, then runs the container
	rlp_both "pids-limit" rlpq run --rm --pids-limit 10 "$RLP_IMAGE" true
	[ "$OURS_RC" -eq 0 ]
	rlp_assert_clean
}

@test "rootless podman: nothing of the user outside its directories" {
	rlp_setup
	local uid gid
	uid=$(id -u "$RLP_USER")
	gid=$(id -g "$RLP_USER")
	run rlpq ours run --rm "$RLP_IMAGE" true
	[ "$status" -eq 0 ]
	run find /tmp /run /var /dev/shm /home /etc -xdev \( -uid "$uid" -o -gid "$gid" \) -not -path "$RLP_DIR/*" -print
	echo "$output"
	[ -z "$output" ]
}

# rlp_unshare_run ID JQ_FILTER: the runtime's default spec (runc's: device rules, no
# limit), edited by JQ_FILTER, run as root of the user's namespace (`podman unshare`,
# which is how podman runs the runtime) with no --root. (podman unshare with podman's
# own flags: another --root/--runroot would start a second pause process and namespace.)
rlp_unshare_run() {
	local b=$RLP_DIR/tmp/bundle-$1
	mkdir -p "$b" && cp -a "$ROOTFS" "$b/rootfs" && chown -R "$RLP_USER:" "$b" || return 1
	as_rlp sh -c "cd $b && $RLP_DIR/bin/sandlock-runc spec" </dev/null || return 1
	jq '.process.terminal = false | .process.args = ["sh", "-c", "id -u; echo in-container"] | '"$2" \
		"$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json" && chown "$RLP_USER:" "$b/config.json" || return 1
	rlp_podman unshare sh -c "cd $b && exec $RLP_DIR/bin/sandlock-runc run $1" </dev/null
}

@test "rootless podman: root of the user's namespace runs the default spec (its device rules need no cgroup); what needs root fails with one line, exit 1, nothing left" {
	rlp_setup
	run rlp_unshare_run un1 .
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '0\nin-container')" ]
	run rlp_unshare_run un2 '.linux.resources.pids = {"limit": 10}'
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	grep -Eq '^create cgroup /sys/fs/cgroup/.*un2: Permission denied$' <<<"$output"
	# raising the hard limit needs CAP_SYS_RESOURCE of the host
	local hard
	hard=$(($(ulimit -Hn) + 1))
	run rlp_unshare_run un3 ".process.rlimits = [{\"type\": \"RLIMIT_NOFILE\", \"hard\": $hard, \"soft\": $hard}]"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$output" = "setrlimit RLIMIT_NOFILE: Operation not permitted" ]
	rlp_assert_clean
}

# rlp_free_port FROM: the first TCP port from FROM on that nothing listens on.
rlp_free_port() {
	local p=$1
	while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
	echo "$p"
}

# rlp_listen PORT FILE: a TCP listener on the host's 127.0.0.1:PORT appending what it
# receives to FILE (the user's containers reach it as 10.0.2.2 through slirp4netns with
# allow_host_loopback).
rlp_listen() {
	: >"$2"
	timeout 120 socat -u "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" "OPEN:$2,append" </dev/null >/dev/null 2>&1 3>&- &
	RLP_LISTENERS+=("$!")
	local i
	for ((i = 0; i < 50; i++)); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	echo "listener on port $1 did not start" >&2
	return 1
}

@test "rootless podman: io.sandlock.network.allow in supervisor mode, the shim running as the user: the allowed host listener receives, the other does not" {
	rlp_setup
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "the annotation is sandlock-specific (RUNTIME=$RUNTIME)"
	local probe pa pb id
	probe=$(egress_probe_bin)
	cp "$probe" "$RLP_DIR/bin/egress_probe" && chmod 0755 "$RLP_DIR/bin/egress_probe"
	pa=$(rlp_free_port 27180)
	pb=$(rlp_free_port $((pa + 1)))
	rlp_listen "$pa" "$BATS_TEST_TMPDIR/a"
	rlp_listen "$pb" "$BATS_TEST_TMPDIR/b"
	# without a policy both are reached (the baseline of the path)
	run rlpq ours run --rm --network slirp4netns:allow_host_loopback=true \
		-v "$RLP_DIR/bin/egress_probe:/probe:ro" "$RLP_IMAGE" sh -c "
			/probe --label a connect tcp 10.0.2.2 $pa rl-base-a
			/probe --label b connect tcp 10.0.2.2 $pb rl-base-b"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ok a
	assert_ok b
	# with one: a running container, its shim and what `egress` says
	run rlpq ours run -d --name "rl-eg-$RUN_TOKEN" --network slirp4netns:allow_host_loopback=true \
		-v "$RLP_DIR/bin/egress_probe:/probe:ro" --annotation "io.sandlock.network.allow=10.0.2.2:$pa" \
		"$RLP_IMAGE" sleep 100
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(rlp_podman inspect -f '{{.Id}}' "rl-eg-$RUN_TOKEN" </dev/null)
	run rlpq ours exec "rl-eg-$RUN_TOKEN" sh -c "
			/probe --label allowed connect tcp 10.0.2.2 $pa rl-allowed
			/probe --label refused connect tcp 10.0.2.2 $pb rl-refused
			exit 0"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ok allowed
	assert_refused refused
	# the shim is the user's process, not root's
	pgrep -u "$RLP_USER" -f "^sandlock-shim shim $RLP_DIR/xdg/sandlock-runc/$id\$" >/dev/null
	run rlp_podman unshare "$RLP_DIR/bin/sandlock-runc" egress "$id" </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^enforced by: *supervisor mode' <<<"$output"
	run rlpq ours rm -f -t 0 "rl-eg-$RUN_TOKEN"
	[ "$status" -eq 0 ]
	sleep 0.3
	[ "$(cat "$BATS_TEST_TMPDIR/a")" = "rl-base-arl-allowed" ]
	[ "$(cat "$BATS_TEST_TMPDIR/b")" = "rl-base-b" ]
	rlp_assert_clean
}

@test "rootless podman: the supervisor's attacks (a thread flipping the sockaddr, an IP socket swapped onto a unix connect's fd) never reach a refused address" {
	rlp_setup
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "the annotation is sandlock-specific (RUNTIME=$RUNTIME)"
	# listeners on the host side of a test network: slirp4netns connects from the host's
	# own network namespace, so the container reaches them as any host address
	egress_setup_net
	local probe
	probe=$(egress_probe_bin)
	cp "$probe" "$RLP_DIR/bin/egress_probe" && chmod 0755 "$RLP_DIR/bin/egress_probe"
	run rlpq ours run --rm --network slirp4netns -v "$RLP_DIR/bin/egress_probe:/probe:ro" \
		--annotation "io.sandlock.network.allow=$EG_A:$EG_P" "$RLP_IMAGE" sh -c "
			/probe --label flip flip-connect $EG_A $EG_D $EG_P 2000 ok
			/probe --label swap fdswap-connect $EG_D $EG_P 2000
			/probe --label denied connect tcp $EG_D $EG_P rl-denied
			exit 0"
	echo "$output"
	[ "$status" -eq 0 ]
	settle
	show_listeners
	# slirp4netns connects from the host's own address, so the listeners' records are told
	# apart from settle's sentinels by what they carry: every connection the refused
	# address accepted must be a sentinel's; the allowed one got the flips' connects
	local log=$BATS_TEST_TMPDIR/tcp-$EG_P.log
	accepts() { awk -v a="$1" '$2 == a && $4 == "accept" { n++ } END { print n + 0 }' "$log"; }
	sentinels() { awk -v a="$1" '$2 == a && $4 == "data" && $6 ~ /^sentinel-/ { n++ } END { print n + 0 }' "$log"; }
	[ "$(accepts "$EG_D")" -eq "$(sentinels "$EG_D")" ]
	[ "$(accepts "$EG_A")" -gt "$(($(sentinels "$EG_A") + 100))" ]
	[ "$(field flip peer_denied)" = 0 ]
	[ "$(field swap ip_connected)" = 0 ]
	assert_refused denied
	expect_count 0 received_anywhere rl-denied
	rlp_assert_clean
}

@test "rootless podman: the runtime needs none of crun's workaround on a hybrid host (the cgroup2 controller list as it is)" {
	rlp_setup
	local ctl=/sys/fs/cgroup/unified/cgroup.controllers
	nsenter -t "$RLP_HOLDER" -m findmnt -n "$ctl" >/dev/null || skip "not a hybrid host: no workaround to drop"
	nsenter -t "$RLP_HOLDER" -m umount "$ctl"
	run rlpq ours run --rm "$RLP_IMAGE" sh -c 'exit 3'
	echo "$output"
	local rc_exit=$status
	run rlpq ours run --rm --userns=keep-id "$RLP_IMAGE" id -u
	echo "$output"
	local rc_keep=$status out_keep=$output
	# back as the other tests have it
	nsenter -t "$RLP_HOLDER" -m mount --bind "$RLP_DIR/dev/controllers" "$ctl"
	[ "$rc_exit" -eq 3 ]
	[ "$rc_keep" -eq 0 ]
	[ "$out_keep" = "$(id -u "$RLP_USER")" ]
	rlp_assert_clean
}
