#!/usr/bin/env bats
# Rootless without podman (issue 14, first part): `sandlock-runc spec --rootless` and
# `run` as an unprivileged user (nobody), the runtime itself writing the user namespace's
# maps and running without a cgroup where none is delegated, as crun does. The runtime is
# a private copy and every file the user needs is under a directory of the test's own
# that nobody may enter; nothing outside it is written. (podman as a user, the egress
# policy rootless and the test user with subuid ranges are not covered yet: see README.)

load helpers

RL_USER=nobody

setup() {
	common_setup
	# a directory the unprivileged user owns (BATS_TEST_TMPDIR's parents are root's, 0700)
	RL_DIR=$(mktemp -d /tmp/slit-rootless.XXXXXX)
	chmod 0755 "$RL_DIR"
	cp "$RUNTIME" "$RL_DIR/sandlock-runc"
	cp -a "$ROOTFS" "$RL_DIR/rootfs"
	mkdir -p "$RL_DIR/state" "$RL_DIR/bundle"
	chown -R "$RL_USER:" "$RL_DIR/state" "$RL_DIR/bundle"
}

teardown() {
	# whatever the test left: the user's containers, then the directory
	as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" list -q 2>/dev/null | while read -r id; do
		as_user "$RL_DIR/sandlock-runc" --root "$RL_DIR/state" delete --force "$id" >/dev/null 2>&1
	done
	pkill -9 -u "$RL_USER" -f "$RL_DIR" 2>/dev/null
	rm -rf --one-file-system "$RL_DIR"
	common_teardown
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
