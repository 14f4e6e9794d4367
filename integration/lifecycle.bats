#!/usr/bin/env bats
# The container lifecycle: create, start, state, kill, delete, run, list, ps, and the
# parentage contract callers (conmon, containerd-shim) depend on.

load helpers

@test "--version prints the version, the commit and the OCI spec version" {
	run "$RUNTIME" --version
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 3 ]
	[[ "${lines[0]}" =~ ^[a-z-]+\ version\ [0-9]+\.[0-9]+ ]]
	grep -qE '^spec: 1\.[0-9]+\.[0-9]+' <<<"$output"
}

@test "spec writes a valid config.json" {
	cd "$BATS_TEST_TMPDIR"
	run "$RUNTIME" spec
	[ "$status" -eq 0 ]
	jq -e '.ociVersion and .process.args and .root.path == "rootfs" and .linux.namespaces' config.json
	# a second spec refuses to overwrite it
	run "$RUNTIME" spec
	[ "$status" -ne 0 ]
}

@test "create: state is created, with the pid of --pid-file, and init is parked" {
	new_id ID
	make_bundle b "$(args sh -c 'echo started > /marker')"
	create_container "$ID" "$BUNDLE"
	run rt state "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = created ]
	[ "$(jq -r .id <<<"$output")" = "$ID" ]
	[ "$(jq -r .bundle <<<"$output")" = "$BUNDLE" ]
	pid=$(jq -r .pid <<<"$output")
	[ "$pid" = "$(cat "$BUNDLE/pid")" ]
	[ "$pid" -gt 0 ]
	kill -0 "$pid"
	# the user's process has not run yet
	sleep 0.2
	[ ! -e "$BUNDLE/rootfs/marker" ]
}

@test "start: the process runs, state is running, then stopped with pid 0" {
	new_id ID
	make_bundle b "$(args sh -c 'echo hello; read x < /fifo')"
	mkfifo "$BUNDLE/rootfs/fifo"
	create_container "$ID" "$BUNDLE"
	rt start "$ID"
	wait_status "$ID" running
	[ "$(state_of "$ID" pid)" = "$(cat "$BUNDLE/pid")" ]
	# non-terminal stdio passes to init
	wait_file "$BUNDLE/init.out"
	for _ in $(seq 50); do grep -q hello "$BUNDLE/init.out" && break; sleep 0.1; done
	grep -qx hello "$BUNDLE/init.out"
	echo done > "$BUNDLE/rootfs/fifo"
	wait_status "$ID" stopped
	[ "$(state_of "$ID" pid)" = 0 ]
}

@test "the process writes through a bind mount into the bundle" {
	new_id ID
	mkdir "$BATS_TEST_TMPDIR/out"
	make_bundle b "$(args sh -c 'echo hello > /out/file')" \
		".mounts += [{destination: \"/out\", type: \"bind\", source: \"$BATS_TEST_TMPDIR/out\", options: [\"rbind\"]}]"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" stopped
	[ "$(cat "$BATS_TEST_TMPDIR/out/file")" = hello ]
}

@test "start of a stopped container fails with exit 1" {
	new_id ID
	make_bundle b "$(args true)"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" stopped
	run rt start "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	[ -n "$output" ]
}

@test "kill with 15, KILL and SIGKILL stops a running container" {
	local sig
	for sig in 15 KILL SIGKILL; do
		new_id ID
		# the shell traps TERM so that signal 15 ends it (pid 1 ignores unhandled signals)
		make_bundle "b$sig" "$(args sh -c 'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done')"
		start_container "$ID" "$BUNDLE"
		wait_for_line "$BUNDLE/init.out" ready # (the trap is set)
		run rt kill "$ID" "$sig"
		echo "kill $sig: $output"
		[ "$status" -eq 0 ]
		wait_status "$ID" stopped
		[ "$(state_of "$ID" pid)" = 0 ]
	done
}

@test "kill without a signal sends SIGTERM" {
	new_id ID
	make_bundle b "$(args sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done')"
	start_container "$ID" "$BUNDLE"
	wait_for_line "$BUNDLE/init.out" ready # (the trap is set)
	rt kill "$ID"
	wait_status "$ID" stopped
	grep -q got-term "$BUNDLE/init.out"
}

@test "kill --all signals every process of the container" {
	new_id ID
	make_bundle b "$(args sh -c 'sleep 1000 & sleep 1000 & wait')"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	for _ in $(seq 50); do
		[ "$(rt ps --format json "$ID" | jq length)" -ge 3 ] && break
		sleep 0.1
	done
	pids=$(rt ps --format json "$ID" | jq -r '.[]')
	[ "$(wc -w <<<"$pids")" -ge 3 ]
	rt kill --all "$ID" KILL
	wait_status "$ID" stopped
	for p in $pids; do
		wait_gone "$p"
	done
}

@test "kill of a stopped container fails with exit 1" {
	new_id ID
	make_bundle b "$(args true)"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" stopped
	run rt kill "$ID" KILL
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qE 'not running|no such process|stopped' <<<"$output"
}

@test "delete removes a stopped container" {
	new_id ID
	make_bundle b "$(args true)"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" stopped
	run rt delete "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	run rt state "$ID"
	[ "$status" -ne 0 ]
	assert_no_leftovers "$ID" "$BUNDLE"
}

@test "delete without --force refuses a running container" {
	new_id ID
	make_bundle b "$(args sleep 1000)"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	run rt delete "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(state_of "$ID" status)" = running ]
}

@test "delete --force in created, running and stopped states leaves nothing" {
	local st
	for st in created running stopped; do
		new_id ID
		make_bundle "b-$st" "$(args sh -c 'sleep 1000 & sleep 1000')"
		create_container "$ID" "$BUNDLE"
		case $st in
		running) rt start "$ID" ;;
		stopped) rt start "$ID" && rt kill "$ID" KILL ;;
		esac
		wait_status "$ID" "$st"
		pid=$(cat "$BUNDLE/pid")
		run rt delete --force "$ID"
		echo "$st: $output"
		[ "$status" -eq 0 ]
		wait_gone "$pid"
		assert_no_leftovers "$ID" "$BUNDLE"
	done
}

@test "delete of a missing container: error without --force, success with it" {
	new_id ID
	run rt delete "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -q 'does not exist' <<<"$output"
	run rt delete --force "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "state of a missing container fails: does not exist" {
	new_id ID
	run rt state "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -q 'does not exist' <<<"$output"
}

@test "run in the foreground returns the exit code: 0, 1 and 137" {
	local cmd want
	for want in 0 1 137; do
		case $want in
		0) cmd='echo out-0' ;;
		1) cmd='echo out-1; exit 1' ;;
		137) cmd='echo out-137; kill -9 $$' ;;
		esac
		new_id ID
		# pid 1 of a pid namespace cannot SIGKILL itself: share the host's for 137
		make_bundle "b$want" "$(args sh -c "$cmd")" \
			"if $want == 137 then .linux.namespaces |= map(select(.type != \"pid\")) else . end"
		run_container "$ID" "$BUNDLE"
		echo "want $want, got $status: $output"
		[ "$status" -eq "$want" ]
		grep -q "out-$want" <<<"$output"
		# run deletes the container when it exits
		run rt state "$ID"
		[ "$status" -ne 0 ]
		assert_no_leftovers "$ID" "$BUNDLE"
	done
}

@test "run --detach leaves a running container" {
	new_id ID
	make_bundle b "$(args sleep 1000)"
	run rtq run --detach --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_status "$ID" running
	[ "$(state_of "$ID" pid)" = "$(cat "$BUNDLE/pid")" ]
	rt kill "$ID" KILL
	wait_status "$ID" stopped
}

@test "pid-file holds the host pid of init" {
	new_id ID
	make_bundle b "$(args sleep 1000)"
	create_container "$ID" "$BUNDLE"
	pid=$(cat "$BUNDLE/pid")
	[[ "$pid" =~ ^[0-9]+$ ]]
	# init's root is the bundle's rootfs
	[ "$(cat "/proc/$pid/root/.slit-bundle")" = "$BUNDLE" ]
	rt start "$ID"
	wait_status "$ID" running
	[ "$(readlink "/proc/$pid/exe")" = /bin/busybox ]
	[ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" = "sleep 1000 " ]
}

@test "list: table, json and -q" {
	new_id A
	new_id B
	make_bundle ba "$(args sleep 1000)"
	start_container "$A" "$BUNDLE"
	make_bundle bb "$(args sleep 1000)"
	create_container "$B" "$BUNDLE"
	wait_status "$A" running

	run rt list
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^ID\ +PID\ +STATUS\ +BUNDLE\ +CREATED\ +OWNER ]]
	grep -qE "^$A +[0-9]+ +running +$BATS_TEST_TMPDIR/ba " <<<"$output"
	grep -qE "^$B +[0-9]+ +created +$BATS_TEST_TMPDIR/bb " <<<"$output"

	run rt list --format json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r ".[] | select(.id == \"$A\") | .status" <<<"$output")" = running ]
	[ "$(jq -r ".[] | select(.id == \"$B\") | .status" <<<"$output")" = created ]
	[ "$(jq -r ".[] | select(.id == \"$A\") | .pid" <<<"$output")" = "$(state_of "$A" pid)" ]

	run rt list -q
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = "$(printf '%s\n' "$A" "$B" | sort)" ]
}

@test "list of an empty root prints only the header" {
	run rt list
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^ID\ +PID\ +STATUS ]]
	run rt list -q
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "ps: table and json list the container's processes" {
	new_id ID
	make_bundle b "$(args sh -c 'sleep 1000 & wait')"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	pid=$(state_of "$ID" pid)
	for _ in $(seq 50); do
		[ "$(rt ps --format json "$ID" | jq length)" -ge 2 ] && break
		sleep 0.1
	done
	run rt ps --format json "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	jq -e "index($pid) != null" <<<"$output"
	[ "$(jq length <<<"$output")" -eq 2 ]

	run rt ps "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ PID ]]
	grep -qE "^[^ ]+ +$pid " <<<"$output"
	grep -q 'sleep 1000' <<<"$output"
}

@test "subreaper harness: init is reparented to the caller, exit status 0, 1 and 137" {
	local want cmd subreaper
	subreaper=$(helper subreaper)
	for want in 0 1 137; do
		case $want in
		0) cmd='true' ;;
		1) cmd='exit 1' ;;
		137) cmd='kill -9 $$' ;;
		esac
		new_id ID
		make_bundle "b$want" "$(args sh -c "sleep 0.2; $cmd")" \
			"if $want == 137 then .linux.namespaces |= map(select(.type != \"pid\")) else . end"
		run "$subreaper" "$BUNDLE/pid" -- sh -c '
			"$1" --root "$2" create --bundle "$3" --pid-file "$3/pid" "$4" </dev/null &&
			"$1" --root "$2" start "$4"' sh "$RUNTIME" "$TEST_ROOT" "$BUNDLE" "$ID" 3>&-
		echo "want $want: status $status: $output"
		[ "$status" -eq "$want" ]
		grep -q "subreaper: pid $(cat "$BUNDLE/pid") " <<<"$output"
		wait_status "$ID" stopped
	done
}
