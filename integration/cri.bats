#!/usr/bin/env bats
# The Kubernetes path: containerd 1.6's CRI plugin with the "sandlock" runtime handler
# (config/containerd-sandlock.toml), driven through the CRI v1 API as kubelet drives it
# (helpers/cri_client.py, cri.bash). Pods on a CNI bridge; what their containers send is
# judged at listeners on the host. Skipped as a whole, with the reason, only when the
# machine lacks containerd, the CNI plugins, protoc or python3's grpc/protobuf.

bats_require_minimum_version 1.5.0

load helpers
load egress
load containerd
load cri

setup_file() {
	cri_setup_file
	egress_detect_enforcement
}

teardown_file() {
	cri_teardown_file
}

setup() {
	cri_setup
}

teardown() {
	cri_teardown
}

@test "CRI: Version answers runtime.v1 from containerd; both handlers' images are there" {
	run cri Version
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .runtime_name <<<"$output")" = containerd ]
	[ "$(jq -r .runtime_api_version <<<"$output")" = v1 ]
	run ctr_ image ls -q
	echo "$output"
	grep -qxF "$CD_IMAGE" <<<"$output"
	grep -qxF "$CRI_PAUSE" <<<"$output"
}

@test "CRI sandlock pod: two containers in the pod's network, ExecSync; the pod's allowlist holds for each process at the host's listeners; status, list, stop, remove; nothing left" {
	require_enforcement
	local pod c1 c2
	cri_policy_pod pod web sandlock
	[[ "$POD_IP" == "$CRI_NET".0.* ]]
	[ -e "$POD_NETNS" ]
	cri_create c1 pod one "$(cri_probe_script one)"
	cri_create c2 pod two "$(cri_probe_script two)"
	[ "$(cri_container_state "$c1")" = CONTAINER_CREATED ]
	cri StartContainer "{\"container_id\": \"$c1\"}" >/dev/null
	cri StartContainer "{\"container_id\": \"$c2\"}" >/dev/null
	[ "$(cri_container_state "$c1")" = CONTAINER_RUNNING ]
	[ "$(cri_container_state "$c2")" = CONTAINER_RUNNING ]
	# the runtime under test runs them: its state, under the sandlock handler's root
	[ -d "$CD_DIR/runc-sandlock/k8s.io/$c1" ]
	[ -d "$CD_DIR/runc-sandlock/k8s.io/$c2" ]
	[ -d "$CD_DIR/runc-sandlock/k8s.io/$pod" ]
	# with its supervisor for each confined container (cri_assert_pod_gone checks they go)
	[ -n "$(pids_with_cmdline "$CD_DIR/runc-sandlock/k8s.io/$c1")" ]
	[ -n "$(pids_with_cmdline "$CD_DIR/runc-sandlock/k8s.io/$c2")" ]

	# both containers are in the pod's network namespace
	local pod_net
	pod_net=net:[$(stat -L -c %i "$POD_NETNS")]
	run cri_exec "$c1" readlink /proc/self/ns/net
	[ "$status" -eq 0 ]
	[ "$output" = "$pod_net" ]
	run cri_exec "$c2" readlink /proc/self/ns/net
	[ "$output" = "$pod_net" ]

	# each container's own process: the allowed listener received, the refused did not
	run cri_results "$c1"
	echo "$output"
	assert_ok one-allowed
	assert_refused one-refused
	run cri_results "$c2"
	echo "$output"
	assert_ok two-allowed
	assert_refused two-refused
	# ExecSync's processes too
	run cri_exec "$c1" /probe --label exec-allowed connect tcp "$CRI_A" "$CRI_PORT" exec-allowed
	echo "$output"
	assert_ok exec-allowed
	run cri_exec "$c2" /probe --label exec-refused connect tcp "$CRI_D" "$CRI_PORT" exec-refused
	echo "$output"
	[ "$status" -eq 1 ]
	assert_refused exec-refused
	cat "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
	# delivered through the pod's CNI network (from the pod's address)
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" one-allowed
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" two-allowed
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" exec-allowed
	expect_count 0 received_anywhere one-refused
	expect_count 0 received_anywhere two-refused
	expect_count 0 received_anywhere exec-refused
	[ "$(awk -v d="$CRI_D" '$2 == d' "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log" | wc -l)" -eq 0 ]

	run cri ListContainers "{\"filter\": {\"pod_sandbox_id\": \"$pod\"}}"
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.containers[] | select(.state == "CONTAINER_RUNNING") | .id] | sort | join(" ")' <<<"$output")" = \
		"$(printf '%s\n' "$c1" "$c2" | sort | tr '\n' ' ' | sed 's/ $//')" ]
	# (StopContainer: SIGTERM, which the script traps: exit 0)
	run cri StopContainer "{\"container_id\": \"$c1\", \"timeout\": 10}"
	[ "$status" -eq 0 ]
	run cri ContainerStatus "{\"container_id\": \"$c1\"}"
	echo "$output"
	[ "$(jq -r .status.state <<<"$output")" = CONTAINER_EXITED ]
	[ "$(jq -r .status.exit_code <<<"$output")" = 0 ]
	run cri StopPodSandbox "{\"pod_sandbox_id\": \"$pod\"}"
	[ "$status" -eq 0 ]
	[ "$(cri_container_state "$c2")" = CONTAINER_EXITED ]
	run cri PodSandboxStatus "{\"pod_sandbox_id\": \"$pod\"}"
	[ "$(jq -r .status.state <<<"$output")" = SANDBOX_NOTREADY ]
	run cri RemovePodSandbox "{\"pod_sandbox_id\": \"$pod\"}"
	[ "$status" -eq 0 ]
	cri_assert_pod_gone "$pod" "$POD_NETNS"
}

@test "CRI control: a pod of the default handler (runc) with the same annotation is not confined" {
	local pod c
	cri_policy_pod pod control ""
	cri_create c pod one "$(cri_probe_script ctl)"
	cri StartContainer "{\"container_id\": \"$c\"}" >/dev/null
	[ ! -e "$CD_DIR/runc-sandlock/k8s.io/$c" ]
	[ -d "$CD_DIR/runc-runc/k8s.io/$c" ]
	run cri_results "$c"
	echo "$output"
	assert_ok ctl-allowed
	assert_ok ctl-refused
	cat "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" ctl-allowed
	expect_count 1 cri_received_from "$CRI_D" "$POD_IP" ctl-refused
	cri_remove_pod "$pod"
	cri_assert_pod_gone "$pod" "$POD_NETNS"
}

@test "CRI: a container's annotation replaces the pod's for that container (containerd applies it last); the pod's other containers keep the pod's" {
	require_enforcement
	local pod c1 c2
	cri_policy_pod pod mixed sandlock
	# c1 asks for the refused address only; c2 has no annotation of its own
	cri_create c1 pod own "$(cri_probe_script own)" \
		"$(jq -nc --arg v "$CRI_D:$CRI_PORT" '{"io.sandlock.network.allow": $v}')"
	cri_create c2 pod inherits "$(cri_probe_script inh)"
	run cri ContainerStatus "{\"container_id\": \"$c1\", \"verbose\": true}"
	jq -r '.info.info | fromjson | .runtimeSpec.annotations["io.sandlock.network.allow"]' <<<"$output"
	[ "$(jq -r '.info.info | fromjson | .runtimeSpec.annotations["io.sandlock.network.allow"]' <<<"$output")" = \
		"$CRI_D:$CRI_PORT" ]
	cri StartContainer "{\"container_id\": \"$c1\"}" >/dev/null
	cri StartContainer "{\"container_id\": \"$c2\"}" >/dev/null
	run cri_results "$c1"
	echo "$output"
	assert_refused own-allowed
	assert_ok own-refused
	run cri_results "$c2"
	echo "$output"
	assert_ok inh-allowed
	assert_refused inh-refused
	cat "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
	expect_count 0 received_anywhere own-allowed
	expect_count 1 cri_received_from "$CRI_D" "$POD_IP" own-refused
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" inh-allowed
	expect_count 0 received_anywhere inh-refused
	cri_remove_pod "$pod"
	cri_assert_pod_gone "$pod" "$POD_NETNS"
}

@test "CRI: a pod whose annotation the runtime rejects fails RunPodSandbox with the runtime's message; nothing left" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	cri_assert_pod_refused sandlock '{"io.sandlock.network.allow": "10.215.1.1/99:80"}' 'invalid prefix length "99"'
}

@test "CRI + operator configuration: a pod without annotations under the handler with a configured default is confined to it" {
	require_enforcement
	local pod c
	# the sandlock-conf handler: sandlock-runc --config (default $CRI_A:$CRI_PORT)
	cri_listen
	cri_run_pod pod defaulted sandlock-conf '{}'
	POD_IP=$(cri_pod_ip "$pod")
	POD_NETNS=$(cri_pod_netns "$pod")
	cri_create c pod one "$(cri_probe_script def)"
	cri StartContainer "{\"container_id\": \"$c\"}" >/dev/null
	[ -d "$CD_DIR/runc-sandlock-conf/k8s.io/$c" ]
	run cri_results "$c"
	echo "$output"
	assert_ok def-allowed
	assert_refused def-refused
	cat "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
	expect_count 1 cri_received_from "$CRI_A" "$POD_IP" def-allowed
	expect_count 0 received_anywhere def-refused
	# an ExecSync process too
	run cri_exec "$c" /probe --label def-exec connect tcp "$CRI_D" "$CRI_PORT" def-exec
	echo "$output"
	assert_refused def-exec
	expect_count 0 received_anywhere def-exec
	cri_remove_pod "$pod"
	cri_assert_pod_gone "$pod" "$POD_NETNS"
}

@test "CRI + operator configuration: a pod asking beyond the ceiling fails RunPodSandbox with the runtime's message; nothing left" {
	[ -z "${EGRESS_SKIP:-}" ] || skip "$EGRESS_SKIP"
	local pod
	cri_assert_pod_refused sandlock-conf '{"io.sandlock.network.allow": "*:*"}' \
		"io\.sandlock\.network\.allow: rule \"\*:\*\" is outside the operator's ceiling"
	# the same pod under the plain sandlock handler, side by side in this containerd, runs
	cri_run_pod pod unbounded sandlock '{"io.sandlock.network.allow": "*:*"}'
	cri_remove_pod "$pod"
	cri_assert_pod_gone "$pod" ""
}

@test "CRI: nothing of the suite's pods is left (sandboxes, shims, runtime state, cgroups, IPAM)" {
	run cri ListPodSandbox
	[ "$(jq '.items | length' <<<"$output")" -eq 0 ]
	run cri ListContainers
	[ "$(jq '.containers | length' <<<"$output")" -eq 0 ]
	no_shims() { [ -z "$(cd_shim_pids)" ]; }
	eventually 15 no_shims
	cri_assert_pod_gone "" ""
}
