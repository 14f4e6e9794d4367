#!/usr/bin/env bats
# Bad input: each case fails with exit 1, a message naming the problem, and leaves nothing
# behind (no state, process, cgroup or mount). Patterns are loose (grep -E) where runc's
# wording differs from ours.

load helpers

# create_fails ID: `create` of $BUNDLE as ID, result in $status/$output.
create_fails() {
	run rtq create --bundle "$BUNDLE" --pid-file "$BUNDLE/pid" "$1"
}

@test "missing bundle directory" {
	new_id ID
	BUNDLE=$BATS_TEST_TMPDIR/no-such-bundle
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'no such file|does not exist|not found'
}

@test "missing config.json" {
	new_id ID
	make_bundle b
	rm "$BUNDLE/config.json"
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'config\.json'
}

@test "missing rootfs" {
	new_id ID
	make_bundle b '.root.path = "no-such-rootfs"'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'no-such-rootfs|rootfs|no such file'
}

@test "malformed JSON" {
	new_id ID
	make_bundle b
	printf '{"ociVersion": "1.0.2", "process": {' >"$BUNDLE/config.json"
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'json|JSON|parse|unexpected'
}

@test "wrong types: process.args is a string" {
	new_id ID
	make_bundle b '.process.args = "sh"'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'args|type|unmarshal'
}

@test "wrong types: process.user.uid is a string" {
	new_id ID
	make_bundle b '.process.user.uid = "root"'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'uid|type|unmarshal'
}

@test "unknown namespace type" {
	new_id ID
	make_bundle b "$(args true)" '.linux.namespaces += [{"type": "bogus"}]'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'namespace|bogus'
}

@test "duplicate id fails and leaves the first container alone" {
	new_id ID
	make_bundle b1 "$(args sleep 1000)"
	create_container "$ID" "$BUNDLE"
	first_pid=$(cat "$BUNDLE/pid")
	make_bundle b2 "$(args sleep 1000)"
	create_fails "$ID"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qE 'exists' <<<"$output"
	[ "$(state_of "$ID" status)" = created ]
	[ "$(state_of "$ID" pid)" = "$first_pid" ]
	[ "$(state_of "$ID" bundle)" = "$BATS_TEST_TMPDIR/b1" ]
	[ -z "$(pids_in_bundle "$BATS_TEST_TMPDIR/b2")" ]
}

@test "id with a path: ../x" {
	make_bundle b "$(args true)"
	create_fails ../x
	assert_fails_cleanly ../x "$BUNDLE" 'id'
	[ ! -e "$(dirname "$TEST_ROOT")/x" ]
}

@test "id with a slash: a/b" {
	make_bundle b "$(args true)"
	create_fails a/b
	assert_fails_cleanly a/b "$BUNDLE" 'id'
}

@test "empty id" {
	make_bundle b "$(args true)"
	create_fails ""
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qiE 'id|argument' <<<"$output"
	[ -z "$(pids_in_bundle "$BUNDLE")" ]
	[ -z "$(ls -A "$TEST_ROOT")" ]
}

@test "missing process.args" {
	new_id ID
	make_bundle b 'del(.process.args)'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'args'
}

@test "empty process.args" {
	new_id ID
	make_bundle b '.process.args = []'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'args'
}

@test "args[0] not found in PATH" {
	new_id ID
	make_bundle b "$(args no-such-program)"
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'executable file not found in \$PATH'
}

@test "args[0] absolute path that does not exist" {
	new_id ID
	make_bundle b "$(args /no/such/program)"
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" '/no/such/program'
}

@test "unsupported ociVersion" {
	new_id ID
	make_bundle b "$(args true)" '.ociVersion = "0.1.0"'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'ociVersion|version'
}

@test "unknown command and unknown flag exit non-zero with usage" {
	run "$RUNTIME" no-such-command
	echo "$output"
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	run "$RUNTIME" --root "$TEST_ROOT" list --no-such-flag
	echo "$output"
	[ "$status" -ne 0 ]
	grep -qiE 'flag|option|no-such-flag' <<<"$output"
}

@test "start, kill and exec of a missing container fail: does not exist" {
	new_id ID
	for cmd in "start $ID" "kill $ID KILL" "exec $ID true" "ps $ID"; do
		# shellcheck disable=SC2086
		run rtq $cmd
		echo "$cmd: $status: $output"
		# runc's exec reports its own failures with 255
		[ "$status" -eq 1 ] || { [ "$status" -eq 255 ] && [[ $cmd == exec* ]]; }
		grep -q 'does not exist' <<<"$output"
	done
}

@test "errors go to --log as one logrus-style JSON line" {
	new_id ID
	run "$RUNTIME" --root "$TEST_ROOT" --log "$BATS_TEST_TMPDIR/log.json" --log-format json state "$ID"
	[ "$status" -eq 1 ]
	cat "$BATS_TEST_TMPDIR/log.json"
	last=$(tail -n 1 "$BATS_TEST_TMPDIR/log.json")
	[ "$(jq -r .level <<<"$last")" = error ]
	jq -r .msg <<<"$last" | grep -q 'does not exist'
	jq -e '.time' <<<"$last"
}

@test "a bad io.sandlock.network.allow rule names the rule and the reason" {
	[[ "$(basename "$RUNTIME")" == sandlock-runc* ]] || skip "sandlock-specific annotation"
	new_id ID
	make_bundle b '.annotations["io.sandlock.network.allow"] = "api.example.com:0"'
	create_fails "$ID"
	assert_fails_cleanly "$ID" "$BUNDLE" 'io\.sandlock\.network\.allow: rule "api\.example\.com:0": port 0 is not valid'
}
