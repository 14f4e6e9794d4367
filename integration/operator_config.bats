#!/usr/bin/env bats
# The operator's configuration (sandlock-runc-config(5), issue 12) end to end: the policy a
# bundle without annotations gets, profiles, the ceiling, supervisor_mode, audit.max_size,
# and how a malformed or missing file fails. Verdicts are judged at the listeners of the
# egress test network (egress.bash), never by a return code alone. The configuration is a
# file of the test's own, given with --config or $SANDLOCK_RUNC_CONFIG; the machine's
# /etc/sandlock-runc is never read or written (SANDLOCK_RUNC_CONFIG always names a file).

load helpers
load egress

setup_file() {
	egress_mode_setup
	egress_detect_enforcement
}

setup() {
	common_setup
	EG_LISTENERS=()
	CONFIG=$BATS_TEST_TMPDIR/config.yaml
	# every test reads its own file; an empty one is the built-in defaults
	: >"$CONFIG"
	export SANDLOCK_RUNC_CONFIG=$CONFIG
}

teardown() {
	unset SANDLOCK_RUNC_CONFIG
	common_teardown
	egress_teardown
}

# config LINES...: the test's configuration file, one argument a line.
config() {
	printf '%s\n' "$@" >"$CONFIG"
}

@test "config: a bundle without annotations gets the configured default; without the file it is unconfined" {
	require_enforcement
	egress_setup_net
	config "default: {allow: ['$EG_A:$EG_P']}"
	egress_run "
		/probe --label d-ok connect tcp $EG_A $EG_P d-ok
		/probe --label d-no connect tcp $EG_D $EG_P d-no
	"
	settle
	show_listeners
	assert_ok d-ok
	expect_count 1 received tcp "$EG_A" "$EG_P" d-ok
	assert_refused d-no
	expect_count 0 received_anywhere d-no
	# control: the built-in defaults (an empty file) leave the same bundle unconfined
	: >"$CONFIG"
	egress_run "/probe --label c-no connect tcp $EG_D $EG_P c-no"
	settle
	assert_ok c-no
	expect_count 1 received tcp "$EG_D" "$EG_P" c-no
}

@test "config: io.sandlock.network.profile adds the operator's rule set to the bundle's own rules" {
	require_enforcement
	egress_setup_net
	config "profiles:" "  second: {allow: ['$EG_A:$EG_P2', 'udp://$EG_A:$EG_P']}"
	egress_run "
		/probe --label p-own connect tcp $EG_A $EG_P p-own
		/probe --label p-tcp connect tcp $EG_A $EG_P2 p-tcp
		/probe --label p-udp sendto udp $EG_A $EG_P p-udp
		/probe --label p-no connect tcp $EG_D $EG_P2 p-no
	" "$(allow "$EG_A:$EG_P")" "$(annotation io.sandlock.network.profile second)"
	settle
	show_listeners
	assert_ok p-own
	expect_count 1 received tcp "$EG_A" "$EG_P" p-own
	assert_ok p-tcp
	expect_count 1 received tcp "$EG_A" "$EG_P2" p-tcp
	assert_ok p-udp
	expect_count 1 received udp "$EG_A" "$EG_P" p-udp
	assert_refused p-no
	expect_count 0 received_anywhere p-no
}

@test "config: an unknown profile fails create with the names the file defines, nothing left" {
	config "profiles:" "  web: {allow: ['*:443']}"
	new_id id
	egress_bundle "b-$id" "true" "$(annotation io.sandlock.network.profile mirror)"
	run rtq create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^io\.sandlock\.network\.profile: unknown profile \"mirror\" \($CONFIG defines web\)$"
}

@test "config: a rule beyond the ceiling fails create naming it (one line, exit 1, nothing left)" {
	config "ceiling: {allow: ['*:$EG_P']}"
	new_id id
	egress_bundle "b-$id" "true" "$(allow "$EG_A:$EG_P;$EG_D:$EG_P2")"
	run rtq --config "$CONFIG" create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^io\.sandlock\.network\.allow: rule \"$EG_D:$EG_P2\" is outside the operator's ceiling \($CONFIG allows \*:$EG_P\)$"
	[ "${#lines[@]}" -eq 1 ]
	# a deny list allows everything it does not name: refused under a ceiling too
	new_id id2
	egress_bundle "b-$id2" "true" "$(deny private)"
	run rtq create --bundle "$BUNDLE" "$id2"
	assert_fails_cleanly "$id2" "$BUNDLE" "^io\.sandlock\.network\.deny: a deny list allows every destination it does not name"
}

@test "config: under a ceiling, a bundle without annotations is confined to the ceiling" {
	require_enforcement
	egress_setup_net
	config "ceiling: {allow: ['$EG_A:$EG_P']}"
	egress_run "
		/probe --label c-in connect tcp $EG_A $EG_P c-in
		/probe --label c-out connect tcp $EG_A $EG_P2 c-out
	"
	settle
	show_listeners
	assert_ok c-in
	expect_count 1 received tcp "$EG_A" "$EG_P" c-in
	assert_refused c-out
	expect_count 0 received_anywhere c-out
}

@test "config: a malformed or missing file fails every create with file, line and column; nothing left" {
	config "default: none" "ceilng: {allow: ['*:443']}"
	new_id id
	egress_bundle "b-$id" "true"
	run rtq create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^$CONFIG:2:1: unknown key \"ceilng\" \(expected one of default, profiles, ceiling, audit, resolve, supervisor_mode\)$"
	[ "${#lines[@]}" -eq 1 ]
	run rtq run --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^$CONFIG:2:1: unknown key"
	# a syntax error: yaml-cpp's place and reason
	config "default: {allow: [" ""
	run rtq create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^$CONFIG:[0-9]+:[0-9]+: "
	# an explicit file must exist
	run rtq --config "$BATS_TEST_TMPDIR/missing.yaml" create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^$BATS_TEST_TMPDIR/missing.yaml: No such file or directory$"
	# a refresh interval that would flood DNS
	config "resolve: {refresh: true, min_interval: 10ms}"
	run rtq create --bundle "$BUNDLE" "$id"
	assert_fails_cleanly "$id" "$BUNDLE" "^$CONFIG:1:[0-9]+: resolve\.min_interval: at least 1s"
}

@test "config: supervisor_mode decides whether a policy may run without the kernel layer; the flag wins" {
	require_enforcement
	new_id id
	egress_bundle "b-$id" "true" "$(allow "$EG_A:$EG_P")"
	# the test-only switch that withholds the kernel layer (egress_supervisor.bats uses it)
	export SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER=1
	unset SANDLOCK_RUNC_SUPERVISOR_MODE
	config "supervisor_mode: deny"
	run rtq create --bundle "$BUNDLE" "$id"
	echo "$output"
	[ "$status" -eq 1 ]
	assert_no_leftovers "$id" "$BUNDLE"
	config "supervisor_mode: allow"
	run rtq run --bundle "$BUNDLE" "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	# --supervisor-mode deny overrides the file
	run rtq --supervisor-mode deny run --bundle "$BUNDLE" "$id"
	[ "$status" -eq 1 ]
	assert_no_leftovers "$id" "$BUNDLE"
	unset SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER
	egress_mode_setup
}

@test "config: audit.max_size reaches the shim; the environment's value wins" {
	require_enforcement
	config "audit: {mode: all, max_size: 8KiB}"
	new_id id
	egress_bundle "b-$id" "sleep 1000" "$(allow "$EG_A:$EG_P")"
	run rtq run -d --bundle "$BUNDLE" "$id"
	[ "$status" -eq 0 ]
	local pid env
	pid=$(shim_pids_of "$id" | head -n 1)
	[ -n "$pid" ]
	env=$(tr '\0' '\n' <"/proc/$pid/environ")
	grep -qx 'SANDLOCK_RUNC_AUDIT_MAX_SIZE=8192' <<<"$env"
	grep -qx 'SANDLOCK_SHIM_AUDIT=all' <<<"$env"
	rt delete --force "$id"
	SANDLOCK_RUNC_AUDIT_MAX_SIZE=65536 rt run -d --bundle "$BUNDLE" "$id" >/dev/null 2>&1 </dev/null
	pid=$(shim_pids_of "$id" | head -n 1)
	tr '\0' '\n' <"/proc/$pid/environ" | grep -qx 'SANDLOCK_RUNC_AUDIT_MAX_SIZE=65536'
}
