#!/usr/bin/env bats
# exec into a running container, and terminals (--console-socket) for create and exec.

load helpers

# A running container $ID from bundle $BUNDLE, its init pid in $PID.
running_container() {
	new_id ID
	make_bundle b "$(args sleep 1000)" "$@"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	PID=$(state_of "$ID" pid)
}

@test "exec runs a command and returns its output" {
	running_container
	run rt exec "$ID" echo hi
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
}

@test "exec returns the process's exit code" {
	running_container
	run rt exec "$ID" sh -c 'exit 3'
	[ "$status" -eq 3 ]
}

@test "exec joins every namespace of the container" {
	running_container '.linux.namespaces |= (map(select(.type != "cgroup")) + [{"type": "cgroup"}])'
	run rt exec "$ID" sh -c 'for n in pid net mnt uts ipc cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done'
	echo "$output"
	[ "$status" -eq 0 ]
	for n in pid net mnt uts ipc cgroup; do
		[ "$(grep "^$n " <<<"$output" | cut -d' ' -f2)" = "$(readlink "/proc/$PID/ns/$n")" ]
	done
}

@test "exec --env" {
	running_container
	run rt exec --env SLIT_A=one --env 'SLIT_B=two words' "$ID" sh -c 'echo "$SLIT_A/$SLIT_B"'
	[ "$status" -eq 0 ]
	[ "$output" = "one/two words" ]
}

@test "exec --cwd" {
	running_container
	run rt exec --cwd /tmp "$ID" pwd
	[ "$status" -eq 0 ]
	[ "$output" = /tmp ]
}

@test "exec --user 1000:1000" {
	running_container
	run rt exec --user 1000:1000 "$ID" sh -c 'id -u; id -g; grep ^CapEff: /proc/self/status'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 1000 ]
	[ "${lines[1]}" = 1000 ]
	[ "$(awk '{print $2}' <<<"${lines[2]}")" = 0000000000000000 ]
}

@test "exec --process FILE" {
	running_container
	cat >"$BATS_TEST_TMPDIR/process.json" <<-'EOF'
		{
			"terminal": false,
			"user": {"uid": 1000, "gid": 100, "additionalGids": [10]},
			"args": ["sh", "-c", "echo \"from-process-json $SLIT_X\"; pwd; id -u; id -G"],
			"env": ["PATH=/usr/bin:/bin:/usr/sbin:/sbin", "SLIT_X=y"],
			"cwd": "/tmp"
		}
	EOF
	run rt exec --process "$BATS_TEST_TMPDIR/process.json" "$ID"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "from-process-json y" ]
	[ "${lines[1]}" = /tmp ]
	[ "${lines[2]}" = 1000 ]
	[ "${lines[3]}" = "100 10" ]
}

@test "exec --detach --pid-file: the process runs in the container" {
	running_container
	run rtq exec --detach --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$ID" sleep 999
	echo "$output"
	[ "$status" -eq 0 ]
	xpid=$(cat "$BATS_TEST_TMPDIR/exec.pid")
	[[ "$xpid" =~ ^[0-9]+$ ]]
	[ "$(tr '\0' ' ' <"/proc/$xpid/cmdline")" = "sleep 999 " ]
	[ "$(readlink "/proc/$xpid/ns/pid")" = "$(readlink "/proc/$PID/ns/pid")" ]
	[ "$(readlink "/proc/$xpid/ns/mnt")" = "$(readlink "/proc/$PID/ns/mnt")" ]
	# it shows in ps
	rt ps --format json "$ID" | jq -e "index($xpid) != null"
	# and dies with the container
	rt kill "$ID" KILL
	wait_status "$ID" stopped
	wait_gone "$xpid"
}

@test "exec into a stopped container fails cleanly" {
	new_id ID
	make_bundle b "$(args true)"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" stopped
	run rtq exec "$ID" echo hi
	echo "$output"
	# runc's exec reports its own failures with 255; ours with 1
	[ "$status" -eq 1 ] || [ "$status" -eq 255 ]
	grep -qE 'stopped|not running' <<<"$output"
	[ "$(state_of "$ID" status)" = stopped ]
}

@test "exec of a missing program fails: executable file not found" {
	running_container
	run rtq exec "$ID" no-such-program
	echo "$output"
	[ "$status" -ne 0 ]
	grep -q 'executable file not found in \$PATH' <<<"$output"
	[ "$(state_of "$ID" status)" = running ]
}

@test "exec of a program whose execve fails (missing interpreter) fails with the reason, nothing left" {
	running_container
	printf '#!/no/such/interpreter\n' >"$BUNDLE/rootfs/bad-script"
	chmod +x "$BUNDLE/rootfs/bad-script"
	for detach in "" --detach; do
		run rtq exec $detach --pid-file "$BATS_TEST_TMPDIR/x.pid" "$ID" /bad-script
		echo "$output"
		[ "$status" -eq 1 ]
		grep -qi 'bad-script.*no such file or directory' <<<"$output"
		# the pid file is written only for a process that runs its program
		[ ! -e "$BATS_TEST_TMPDIR/x.pid" ]
	done
	# only init is left in the container
	[ "$(rt ps --format json "$ID" | jq length)" -eq 1 ]
	[ "$(state_of "$ID" status)" = running ]
}

@test "exec -t --detach sends the pty master to --console-socket" {
	running_container
	receiver=$(helper console_receiver)
	sock=$BATS_TEST_TMPDIR/console.sock
	"$receiver" -o "$BATS_TEST_TMPDIR/console.out" "$sock" 3>&-
	run rtq exec -t --detach --console-socket "$sock" --pid-file "$BATS_TEST_TMPDIR/exec.pid" \
		"$ID" sh -c 'tty; echo tty-ok; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty'
	echo "$output"
	[ "$status" -eq 0 ]
	wait_file "$BATS_TEST_TMPDIR/console.out.done"
	cat "$BATS_TEST_TMPDIR/console.out"
	grep -q '^console: ' "$BATS_TEST_TMPDIR/console.out"
	grep -q '^/dev/pts/[0-9]' "$BATS_TEST_TMPDIR/console.out"
	grep -q 'tty-ok' "$BATS_TEST_TMPDIR/console.out"
	grep -q 'stdio-is-tty' "$BATS_TEST_TMPDIR/console.out"
}

@test "exec -t: input written to the console reaches the process" {
	running_container
	receiver=$(helper console_receiver)
	sock=$BATS_TEST_TMPDIR/console.sock
	"$receiver" -w $'ping-from-host\n' -o "$BATS_TEST_TMPDIR/console.out" "$sock" 3>&-
	run rtq exec -t --detach --console-socket "$sock" "$ID" sh -c 'read line; echo "got:$line"'
	[ "$status" -eq 0 ]
	wait_file "$BATS_TEST_TMPDIR/console.out.done"
	cat "$BATS_TEST_TMPDIR/console.out"
	grep -q 'got:ping-from-host' "$BATS_TEST_TMPDIR/console.out"
}

@test "create with process.terminal sends the pty master to --console-socket" {
	new_id ID
	make_bundle b "$(args sh -c 'tty; echo init-tty-ok')" '.process.terminal = true'
	receiver=$(helper console_receiver)
	sock=$BATS_TEST_TMPDIR/console.sock
	"$receiver" -o "$BATS_TEST_TMPDIR/console.out" "$sock" 3>&-
	create_container "$ID" "$BUNDLE" --console-socket "$sock"
	rt start "$ID"
	wait_file "$BATS_TEST_TMPDIR/console.out.done"
	cat "$BATS_TEST_TMPDIR/console.out"
	grep -q '^console: ' "$BATS_TEST_TMPDIR/console.out"
	grep -q '^/dev/pts/0' "$BATS_TEST_TMPDIR/console.out"
	grep -q 'init-tty-ok' "$BATS_TEST_TMPDIR/console.out"
	wait_status "$ID" stopped
}

@test "create with process.terminal and no --console-socket fails" {
	new_id ID
	make_bundle b "$(args true)" '.process.terminal = true'
	run rtq create --bundle "$BUNDLE" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'console'
}
