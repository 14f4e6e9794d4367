#!/usr/bin/env bats
# containerd (Debian 12: containerd 1.6 + containerd-shim-runc-v2) driving the runtime
# under test through `ctr run --runc-binary`. A private containerd (containerd.bash) with
# its own root, state and socket, whose config imports config/containerd-sandlock.toml
# (the Kubernetes runtime handler "sandlock"); the image is an OCI archive of the busybox
# test rootfs. Skipped as a whole, with the reason, only when containerd is not installed.

bats_require_minimum_version 1.5.0

load helpers
load egress
load containerd

setup_file() {
	cd_setup_file
	egress_detect_enforcement
}

teardown_file() {
	cd_teardown_file
}

setup() {
	cd_setup
	EG_LISTENERS=()
}

teardown() {
	cd_teardown
	egress_teardown
}

@test "containerd starts with containerd-sandlock.toml: the sandlock handler in config dump, the CRI plugin loaded" {
	run containerd --config "$CD_DIR/config.toml" config dump
	[ "$status" -eq 0 ]
	local section
	section=$(awk '/^ *\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.sandlock\]/ { on = 1 }
		on && /^ *\[/ && !/runtimes\.sandlock/ { on = 0 } on' <<<"$output")
	echo "$section"
	grep -qE '^ *runtime_type = "io\.containerd\.runc\.v2"$' <<<"$section"
	grep -qE '^ *pod_annotations = \["io\.sandlock\.\*"\]$' <<<"$section"
	grep -qE '^ *BinaryName = ".*sandlock-runc"$' <<<"$section"
	# the default handler is still there (an import replaces the whole CRI section)
	grep -qE '^ *default_runtime_name = "runc"$' <<<"$output"
	# the running daemon loaded the CRI plugin from that config without an error
	run ctr_ plugins ls
	grep -E 'io\.containerd\.grpc\.v1 +cri ' <<<"$output"
	grep -qE 'io\.containerd\.grpc\.v1 +cri +[^ ]+ +ok' <<<"$output"
	! grep -q 'failed to load plugin io.containerd.grpc.v1.cri' "$CD_DIR/containerd.log"
}

@test "ctr run --rm: output and exit codes, an error reaches ctr readably" {
	local id
	cd_id id
	run ctrq run $(cd_run_args) --rm "$CD_IMAGE" "$id" sh -c 'echo hello-ctr; exit 3'
	echo "$output"
	[ "$status" -eq 3 ]
	has_line hello-ctr
	cd_assert_gone "$id"
	cd_id id
	run ctrq run $(cd_run_args) --rm "$CD_IMAGE" "$id" true
	[ "$status" -eq 0 ]
	cd_id id
	run ctrq run $(cd_run_args) --rm "$CD_IMAGE" "$id" /no/such/binary
	echo "$output"
	[ "$status" -ne 0 ]
	# containerd shows the last error line of the runtime's JSON log
	grep -E '^ctr: .*/no/such/binary.*(no such file|not found)' <<<"$output"
	! grep -qE '\{"(level|msg)"' <<<"$output" || false
	ctr_ containers rm "$id" >/dev/null 2>&1 || true
	cd_assert_gone "$id"
}

@test "ctr run -d, task ls, task exec with and without -t, task ps, kill, delete" {
	local id pid
	cd_id id
	run ctrq run $(cd_run_args) -d "$CD_IMAGE" "$id" \
		sh -c 'trap "echo got-term; exit 9" TERM; while :; do sleep 0.1; done'
	echo "$output"
	[ "$status" -eq 0 ]
	cd_wait_task "$id" RUNNING
	pid=$(ctr_ task ls | awk -v id="$id" '$1 == id { print $2 }')
	echo "init pid $pid"
	[ -n "$pid" ] && [ -d "/proc/$pid" ]
	# containerd's runc root holds the runtime's state for the container
	[ -e "$CD_DIR/runc/$CD_NS/$id" ]

	# (the pauses: ctr can drop the output of a process that exits as it starts, with runc
	# as well; the runtime is not in that path. 2 s leave room on a busy machine)
	run ctr_ task exec --exec-id e1 "$id" sh -c 'echo exec-out; sleep 2; exit 4'
	echo "$output"
	[ "$status" -eq 4 ]
	has_line exec-out
	# -t: the exec'd process has a terminal (the "resize pty" error ctr may print when
	# the process is already gone is ctr's own race, seen with runc as well)
	run ctr_pty task exec -t --exec-id e2 "$id" sh -c 'sleep 2; tty; sleep 2; exit 6'
	echo "status $status: $output"
	[ "$status" -eq 6 ]
	grep -q '/dev/pts/[0-9]' <<<"$output"

	run ctr_ task ps "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	awk 'NR > 1 { print $1 }' <<<"$output" | grep -qxF "$pid"

	run ctr_ task kill "$id"
	[ "$status" -eq 0 ]
	cd_wait_task "$id" STOPPED
	run ctr_ task delete "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "exit code 9" <<<"$output"
	run ctr_ containers rm "$id"
	[ "$status" -eq 0 ]
	cd_assert_gone "$id"
}

@test "ctr task pause/resume freeze and thaw; task kill -s SIGKILL of a process ignoring SIGTERM" {
	local id
	cd_id id
	run ctrq run $(cd_run_args) -d "$CD_IMAGE" "$id" \
		sh -c 'trap "" TERM; i=0; while :; do i=$((i+1)); echo $i >/tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done'
	[ "$status" -eq 0 ]
	cd_wait_task "$id" RUNNING
	run ctr_ task pause "$id"
	[ "$status" -eq 0 ]
	cd_wait_task "$id" PAUSED
	[ "$(cat "$(cd_cgroup_file "$id" freezer freezer.state)")" = FROZEN ]
	run ctr_ task resume "$id"
	[ "$status" -eq 0 ]
	cd_wait_task "$id" RUNNING
	local a b n=1
	# it makes progress again (the counter is replaced by rename: a read never sees it
	# half written)
	a=$(ctr_ task exec --exec-id c1 "$id" cat /tmp/count)
	grew() { n=$((n + 1)); b=$(ctr_ task exec --exec-id "c$n" "$id" cat /tmp/count); [ "$b" -gt "$a" ]; }
	eventually 15 grew
	echo "count $a then $b"
	# SIGTERM is ignored: still running
	run ctr_ task kill "$id"
	sleep 0.3
	[ "$(cd_task_status "$id")" = RUNNING ]
	run ctr_ task kill -s SIGKILL "$id"
	[ "$status" -eq 0 ]
	cd_wait_task "$id" STOPPED
	run ctr_ task delete "$id"
	echo "$output"
	run ctr_ containers rm "$id"
	[ "$status" -eq 0 ]
	cd_assert_gone "$id"
}

@test "ctr run --annotation io.sandlock.network.allow: the allowed destination receives, the refused one does not" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	local id probe
	probe=$(egress_probe_bin)
	egress_net_up
	egress_listen tcp "$EG_P"
	cd_id id
	run ctrq run $(cd_run_args) --rm --with-ns "network:/run/netns/$EG_NS" \
		--mount "type=bind,src=$probe,dst=/probe,options=rbind:ro" \
		--annotation "io.sandlock.network.allow=$EG_A:$EG_P" "$CD_IMAGE" "$id" sh -c "
			/probe --label allowed connect tcp $EG_A $EG_P cd-allowed
			/probe --label refused connect tcp $EG_D $EG_P cd-refused
			exit 0"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ok allowed
	assert_refused refused
	show_listeners
	expect_count 1 received tcp "$EG_A" "$EG_P" cd-allowed
	expect_count 0 received_at tcp "$EG_D" "$EG_P"
	expect_count 0 received_anywhere cd-refused
	cd_assert_gone "$id"
}

@test "containerd: nothing of the suite's containers is left (tasks, shims, runtime state)" {
	run ctr_ task ls -q
	[ -z "$output" ]
	run ctr_ containers ls -q
	[ -z "$output" ]
	run find "$CD_DIR/runc/$CD_NS" -mindepth 1 -maxdepth 1
	[ -z "$output" ]
	# (a shim exits on its own, a moment after its last task is deleted)
	no_shims() { [ -z "$(cd_shim_pids)" ]; }
	eventually 15 no_shims
}
