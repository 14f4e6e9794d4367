#!/usr/bin/env bats
# OCI hooks: every kind, their order, where they run, what they get on stdin, timeouts
# and failures.

load helpers

# hook KIND: a hook object that appends "KIND <mnt ns> <env>" to $LOGDIR/log and saves its
# stdin (the state) to $LOGDIR/KIND.json. The log dir is also bind-mounted at /hooklog in
# the container, for hooks that run after pivot_root.
hook() {
	jq -cn --arg kind "$1" --arg dir "$LOGDIR" '{
		path: "/bin/sh",
		args: ["sh", "-c", "d=$1; [ -d \"$d\" ] || d=/hooklog; cat > \"$d/$0.json\"; echo \"$0 $(readlink /proc/self/ns/mnt) $SLIT_HOOK_ENV\" >> \"$d/log\"", $kind, $dir],
		env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SLIT_HOOK_ENV=env-ok"]
	}'
}

# hooks_bundle [JQ_FILTER...]: bundle $BUNDLE whose process waits for /hooklog/go, with
# one logging hook of every kind.
hooks_bundle() {
	LOGDIR=$BATS_TEST_TMPDIR/hooklog
	mkdir -p "$LOGDIR"
	local k hooks="{}"
	for k in prestart createRuntime createContainer startContainer poststart poststop; do
		hooks=$(jq -c --arg k "$k" --argjson h "$(hook "$k")" '.[$k] = [$h]' <<<"$hooks")
	done
	make_bundle b "$(args sh -c 'while [ ! -e /hooklog/go ]; do sleep 0.05; done')" \
		".hooks = $hooks" \
		".mounts += [{destination: \"/hooklog\", type: \"bind\", source: \"$LOGDIR\", options: [\"rbind\"]}]" \
		"$@"
}

@test "every hook kind runs, in order, with the state on stdin and its env" {
	new_id ID
	hooks_bundle
	create_container "$ID" "$BUNDLE"
	pid=$(cat "$BUNDLE/pid")
	cat "$LOGDIR/log"
	[ "$(cut -d' ' -f1 "$LOGDIR/log" | tr '\n' ' ')" = "prestart createRuntime createContainer " ]
	rt start "$ID"
	wait_status "$ID" running
	for _ in $(seq 100); do grep -q poststart "$LOGDIR/log" && break; sleep 0.05; done
	touch "$LOGDIR/go"
	wait_status "$ID" stopped
	rt delete "$ID"
	cat "$LOGDIR/log"
	[ "$(cut -d' ' -f1 "$LOGDIR/log" | tr '\n' ' ')" = \
		"prestart createRuntime createContainer startContainer poststart poststop " ]
	# every hook got its env and the state of this container
	[ "$(grep -c ' env-ok$' "$LOGDIR/log")" -eq 6 ]
	for k in prestart createRuntime createContainer startContainer poststart poststop; do
		cat "$LOGDIR/$k.json"
		[ "$(jq -r .id "$LOGDIR/$k.json")" = "$ID" ]
		[ "$(jq -r .bundle "$LOGDIR/$k.json")" = "$BUNDLE" ]
		jq -e '.ociVersion and .status' "$LOGDIR/$k.json"
	done
	for k in prestart createRuntime createContainer startContainer poststart; do
		[ "$(jq -r .pid "$LOGDIR/$k.json")" = "$pid" ]
	done
	# "created" from prestart on, as crun says and the OCI validation suite expects
	for k in prestart createRuntime createContainer startContainer; do
		[ "$(jq -r .status "$LOGDIR/$k.json")" = created ] || { echo "$k: not created"; false; }
	done
	[ "$(jq -r .status "$LOGDIR/poststart.json")" = running ]
	[ "$(jq -r .status "$LOGDIR/poststop.json")" = stopped ]
}

@test "the state on a prestart hook's stdin says created (createRuntime, createContainer too), as crun's" {
	new_id ID
	hooks_bundle
	create_container "$ID" "$BUNDLE"
	for k in prestart createRuntime createContainer; do
		cat "$LOGDIR/$k.json"
		[ "$(jq -r .status "$LOGDIR/$k.json")" = created ] || { echo "$k: not created"; false; }
		[ "$(jq -r .pid "$LOGDIR/$k.json")" = "$(cat "$BUNDLE/pid")" ]
	done
	# and the container's own state agrees once create returned
	[ "$(state_of "$ID" status)" = created ]
}

@test "poststart waits for slow startContainer hooks and runs after the process was executed" {
	new_id ID
	LOGDIR=$BATS_TEST_TMPDIR/hooklog
	mkdir -p "$LOGDIR"
	# a poststart hook that logs what init's pid (from the state on stdin) is executing
	cat >"$LOGDIR/exe-hook" <<-EOF
		#!/bin/sh
		pid=\$(jq -r .pid)
		echo "exe \$(readlink /proc/\$pid/exe)" >> "$LOGDIR/log"
	EOF
	chmod +x "$LOGDIR/exe-hook"
	# startContainer takes its time
	hooks_bundle \
		'.hooks.startContainer[0].args[2] = "sleep 0.5; " + .hooks.startContainer[0].args[2]' \
		".hooks.poststart += [{path: \"$LOGDIR/exe-hook\"}]"
	create_container "$ID" "$BUNDLE"
	rt start "$ID"
	cat "$LOGDIR/log"
	# start returned: both hooks ran, in the spec's order
	[ "$(cut -d' ' -f1 "$LOGDIR/log" | tr '\n' ' ')" = \
		"prestart createRuntime createContainer startContainer poststart exe " ]
	# and init was no longer the runtime: it had called execve
	exe=$(awk '$1 == "exe" {print $2}' "$LOGDIR/log")
	[ -n "$exe" ]
	[ "$exe" != "$(readlink -f "$RUNTIME")" ]
	touch "$LOGDIR/go"
	wait_status "$ID" stopped
	rt delete "$ID"
}

@test "createContainer and startContainer run in the container's mount namespace, the others in the runtime's" {
	new_id ID
	hooks_bundle
	create_container "$ID" "$BUNDLE"
	container_mnt=$(readlink "/proc/$(cat "$BUNDLE/pid")/ns/mnt")
	rt start "$ID"
	for _ in $(seq 100); do grep -q poststart "$LOGDIR/log" && break; sleep 0.05; done
	touch "$LOGDIR/go"
	wait_status "$ID" stopped
	rt delete "$ID"
	cat "$LOGDIR/log"
	[ "$container_mnt" != "$(host_ns mnt)" ]
	mnt_of() { awk -v k="$1" '$1 == k {print $2}' "$LOGDIR/log"; }
	[ "$(mnt_of createContainer)" = "$container_mnt" ]
	[ "$(mnt_of startContainer)" = "$container_mnt" ]
	for k in prestart createRuntime poststart poststop; do
		[ "$(mnt_of "$k")" = "$(host_ns mnt)" ]
	done
}

@test "a createRuntime hook that fails makes create fail with no leftovers" {
	new_id ID
	hooks_bundle '.hooks.createRuntime = [{path: "/bin/sh", args: ["sh", "-c", "exit 3"]}]'
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'hook|createRuntime|exit status 3'
	# the hooks after it never ran
	! grep -qE 'createContainer|startContainer|poststart' "$LOGDIR/log" || false
}

@test "a prestart hook that fails makes create fail with no leftovers" {
	new_id ID
	hooks_bundle '.hooks.prestart = [{path: "/bin/false"}]'
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'hook|prestart|exit status'
}

@test "a hook past its timeout is killed and create fails" {
	new_id ID
	hooks_bundle '.hooks.createRuntime = [{path: "/bin/sleep", args: ["sleep", "7.777"], timeout: 1}]'
	start=$SECONDS
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	elapsed=$((SECONDS - start))
	echo "took ${elapsed}s"
	[ "$elapsed" -lt 6 ]
	assert_fails_cleanly "$ID" "$BUNDLE" 'time|hook|killed'
	sleep 0.2
	[ -z "$(pgrep -f 'sleep 7\.777')" ]
}

@test "a hook that finishes within its timeout is fine" {
	new_id ID
	hooks_bundle '.hooks.createRuntime += [{path: "/bin/sh", args: ["sh", "-c", "sleep 0.2"], timeout: 5}]'
	create_container "$ID" "$BUNDLE"
	[ "$(state_of "$ID" status)" = created ]
}

@test "a hook whose path does not exist makes create fail" {
	new_id ID
	hooks_bundle '.hooks.createRuntime = [{path: "/no/such/hook"}]'
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'no/such/hook|no such file|not found'
}

@test "poststop runs on delete --force of a running container" {
	new_id ID
	hooks_bundle
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	rt delete --force "$ID"
	cat "$LOGDIR/log"
	grep -q '^poststop ' "$LOGDIR/log"
	[ "$(jq -r .id "$LOGDIR/poststop.json")" = "$ID" ]
}
