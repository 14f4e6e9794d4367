# Helpers of integration/cri.bats (load after helpers, egress and containerd).
#
# The Kubernetes path without kubelet: a private containerd (containerd.bash's daemon
# handling, root/state/sockets under $CD_DIR) whose CRI plugin serves the "sandlock"
# handler of config/containerd-sandlock.toml, driven through the CRI v1 gRPC API by
# helpers/cri_client.py exactly as kubelet drives it (RunPodSandbox with the handler and
# the pod's annotations, CreateContainer with the sandbox config, StartContainer,
# ExecSync, ..., StopPodSandbox, RemovePodSandbox).
#
# The node this sets up (the README's "Use with Kubernetes" repeats it):
#   - the CRI config: containerd-sandlock.toml's tables (BinaryName = $RUNTIME), each
#     handler's runtime state under $CD_DIR, sandbox_image = the local pause image, CNI
#     from /usr/lib/cni with a conf dir of its own, no AppArmor, the streaming server on
#     127.0.0.1 and a free port
#   - CNI: a bridge $CRI_BRIDGE, gateway $CRI_GW, host-local IPAM in $CRI_SUBNET with its
#     allocations under $CD_DIR (containerd adds the loopback plugin itself)
#   - images, imported with `ctr -n k8s.io images import`: the sandbox image $CRI_PAUSE
#     (helpers/pause.c, static, alone in its layer) and the workload $CD_IMAGE (the
#     busybox test rootfs with the static egress probe at /probe)
#   - the listeners' addresses, on a link of the host, $CRI_LISTEN_IF (a bridge without
#     ports: the dummy module may be missing): $CRI_A (allowed by the tests' policies)
#     and $CRI_D (refused). A pod reaches them through its CNI
#     bridge and the host's routing (its default route is the bridge's gateway).
# Pods' cgroups are under /slit-<run>-cri (the pods' cgroup_parent) in each hierarchy.

# the CRI plugin's namespace in containerd: ctr_ imports the images there
CD_NS=k8s.io
CRI_NET=10.215
CRI_SUBNET=$CRI_NET.0.0/24
CRI_GW=$CRI_NET.0.1
CRI_A=$CRI_NET.1.1
CRI_D=$CRI_NET.1.3
CRI_PORT=27111
CRI_PAUSE=localhost/slit-pause:latest
CRI_PY=/usr/bin/python3
CRI_NETWORK=slit-cri
# libcni's cache of ADD results (containerd 1.6 has no setting for it)
CRI_CNI_CACHE=/var/lib/cni

# cri_missing: the reason the CRI path cannot be tested on this machine, or nothing.
cri_missing() {
	local why plugin
	why=$(cd_missing)
	[ -z "$why" ] || { echo "$why"; return; }
	for plugin in bridge host-local loopback; do
		[ -x "/usr/lib/cni/$plugin" ] || {
			echo "the CNI $plugin plugin is not installed (apt-get install containernetworking-plugins)"
			return
		}
	done
	command -v protoc >/dev/null 2>&1 || { echo "protoc is not installed (apt-get install protobuf-compiler)"; return; }
	"$CRI_PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
		echo "python3-grpcio or python3-protobuf is not installed (apt-get install python3-grpcio python3-protobuf)"
}

# cri_setup_file: the node (see the top), containerd started and its CRI server up.
# Sets CRI_SKIP (exported) when the machine lacks something; the tests then skip with it.
cri_setup_file() {
	export CRI_SKIP="" CD_PID="" CD_HAD_RUN=0 CD_HAD_CGROUP=1
	export CRI_BRIDGE=slit-cri-$RUN_TOKEN CRI_LISTEN_IF=slit-crd-$RUN_TOKEN CRI_CGROUP=slit-$RUN_TOKEN-cri
	export CRI_PB_DIR=$CD_DIR/pb CRI_NETNS_BEFORE
	CRI_SKIP=$(cri_missing)
	[ -z "$CRI_SKIP" ] || return 0
	[ "$(id -u)" -eq 0 ] || { CRI_SKIP="the CRI tests need root"; return 0; }
	[ -x "$RUNTIME" ] || { echo "runtime under test not found: $RUNTIME" >&2; return 1; }
	if [ -n "$(ip -o addr show to "$CRI_NET.0.0/16")" ] || ip route show | grep -q "^$CRI_NET\."; then
		echo "cri_setup_file: $CRI_NET.0.0/16 is in use on this machine: $(ip -o addr show to "$CRI_NET.0.0/16")" >&2
		return 1
	fi
	[ -e /run/containerd ] && CD_HAD_RUN=1
	CRI_HAD_CNI_CACHE=0
	[ -e "$CRI_CNI_CACHE" ] && CRI_HAD_CNI_CACHE=1
	export CRI_HAD_CNI_CACHE
	CRI_NETNS_BEFORE=$(cri_netns_list | tr '\n' ' ')
	mkdir -p "$CD_DIR"/{root,state,opt,runc-sandlock,runc-sandlock-conf,runc-runc,cni,ipam,logs,pb} || return 1
	protoc --proto_path="$INTEGRATION_DIR/helpers" --python_out="$CRI_PB_DIR" cri.proto || return 1
	cri_write_config || return 1
	ip link add "$CRI_LISTEN_IF" type bridge &&
		ip addr add "$CRI_A/32" dev "$CRI_LISTEN_IF" &&
		ip addr add "$CRI_D/32" dev "$CRI_LISTEN_IF" &&
		ip link set "$CRI_LISTEN_IF" up || return 1
	containerd --config "$CD_DIR/config.toml" >"$CD_DIR/containerd.log" 2>&1 </dev/null 3>&- &
	CD_PID=$!
	eventually 20 cri_server_up || {
		echo "cri_setup_file: containerd's CRI server did not come up; its log:" >&2
		tail -n 20 "$CD_DIR/containerd.log" >&2
		return 1
	}
	cri_import_images
}

# cri_write_config: containerd's config and the CNI network.
cri_write_config() {
	{
		cd_config_base
		# the sandlock handler as the operator installs it (the file is meant to be
		# imported, but an import would replace the CRI section written below)
		grep -v '^version' "$INTEGRATION_DIR/config/containerd-sandlock.toml" |
			sed -E "s|^( *)BinaryName = .*|\1BinaryName = \"$RUNTIME\"\n\1Root = \"$CD_DIR/runc-sandlock\"|"
		# A second sandlock handler with an operator configuration of its own (a RuntimeClass
		# per configuration): containerd's runc options cannot pass --config, so its
		# BinaryName is a wrapper that does (sandlock-runc-config(5), "KUBERNETES").
		cri_write_config_wrapper || return 1
		cat <<-EOF
			  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.sandlock-conf]
			    runtime_type = "io.containerd.runc.v2"
			    pod_annotations = ["io.sandlock.*"]
			    container_annotations = ["io.sandlock.*"]
			    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.sandlock-conf.options]
			      BinaryName = "$CD_DIR/sandlock-conf"
			      Root = "$CD_DIR/runc-sandlock-conf"
			  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
			    Root = "$CD_DIR/runc-runc"
			[plugins."io.containerd.grpc.v1.cri"]
			  sandbox_image = "$CRI_PAUSE"
			  disable_apparmor = true
			  # (a pod's oom_score_adj is never below containerd's own: lowering it needs
			  # CAP_SYS_RESOURCE, which a node that is itself a container may lack)
			  restrict_oom_score_adj = true
			  stream_server_address = "127.0.0.1"
			  stream_server_port = "0"
			  [plugins."io.containerd.grpc.v1.cri".cni]
			    bin_dir = "/usr/lib/cni"
			    conf_dir = "$CD_DIR/cni"
			    max_conf_num = 1
		EOF
	} >"$CD_DIR/config.toml" || return 1
	jq -n --arg br "$CRI_BRIDGE" --arg net "$CRI_SUBNET" --arg gw "$CRI_GW" --arg data "$CD_DIR/ipam" \
		--arg name "$CRI_NETWORK" '{cniVersion: "1.0.0", name: $name, plugins: [{type: "bridge",
			bridge: $br, isGateway: true, ipMasq: false, ipam: {type: "host-local",
			ranges: [[{subnet: $net, gateway: $gw}]], routes: [{dst: "0.0.0.0/0"}], dataDir: $data}}]}' \
		>"$CD_DIR/cni/10-slit-cri.conflist"
}

# cri_write_config_wrapper: the sandlock-conf handler's binary, and its configuration: a
# default (for pods without annotations) of $CRI_A:$CRI_PORT, and a ceiling of both
# listeners' port.
cri_write_config_wrapper() {
	printf '#!/bin/sh\nexec %q --config %q "$@"\n' "$RUNTIME" "$CD_DIR/operator.yaml" >"$CD_DIR/sandlock-conf" &&
		chmod 0755 "$CD_DIR/sandlock-conf" &&
		printf '%s\n' "default: {allow: ['$CRI_A:$CRI_PORT']}" "ceiling: {allow: ['*:$CRI_PORT']}" \
			>"$CD_DIR/operator.yaml"
}

# cri_server_up: containerd answers the CRI Version call (its CRI plugin loaded).
cri_server_up() {
	kill -0 "$CD_PID" 2>/dev/null || return 2
	cri Version >/dev/null 2>&1
}

# cri_import_images: the sandbox image and the workload image, into namespace k8s.io.
cri_import_images() {
	local dir=$CD_DIR/images probe
	probe=$(egress_probe_bin) && ensure_busybox_rootfs "$ROOTFS" || return 1
	mkdir -p "$dir/pause" || return 1
	cp "$(static_helper_bin pause)" "$dir/pause/pause" || return 1
	cp -a "$ROOTFS" "$dir/busybox" && cp "$probe" "$dir/busybox/probe" || return 1
	cd_oci_archive "$dir/pause" "$dir/pause.tar" "$CRI_PAUSE" '["/pause"]' &&
		cd_oci_archive "$dir/busybox" "$dir/busybox.tar" "$CD_IMAGE" || return 1
	ctr_ image import "$dir/pause.tar" >/dev/null && ctr_ image import "$dir/busybox.tar" >/dev/null || {
		echo "cri_import_images: ctr image import failed" >&2
		return 1
	}
	rm -rf "$dir"
}

# cri_teardown_file: every pod removed through the CRI, then containerd and everything
# of the node: shims, mounts, cgroups, the bridges, netns, IPAM.
cri_teardown_file() {
	[ -d "$CD_DIR" ] || return 0
	local pod ns cg pods
	# (read now: $CD_DIR goes with containerd)
	pods=$(cat "$CD_DIR/pods" 2>/dev/null)
	if [ -n "$(cd_daemon_pids)" ]; then
		for pod in $(cri ListPodSandbox 2>/dev/null | jq -r '.items[].id'); do
			cri_remove_pod "$pod" >/dev/null 2>&1
		done
	fi
	# what the CRI could not remove (containerd died, or a call failed), by each
	# handler's runtime
	cri_force_delete "$RUNTIME" "$CD_DIR/runc-sandlock/k8s.io"
	cri_force_delete "$RUNTIME" "$CD_DIR/runc-sandlock-conf/k8s.io"
	cri_force_delete runc "$CD_DIR/runc-runc/k8s.io"
	cd_teardown_file
	ip link delete "$CRI_BRIDGE" 2>/dev/null
	ip link delete "$CRI_LISTEN_IF" 2>/dev/null
	# the pods' netns that containerd could not remove (it died, or a test failed midway)
	for ns in $(cri_netns_list); do
		[[ " $CRI_NETNS_BEFORE " == *" $ns "* ]] && continue
		cri_netns_ours "$ns" && ip netns delete "$ns" 2>/dev/null
	done
	for cg in $(find /sys/fs/cgroup -maxdepth 3 -depth -type d -path "*/$CRI_CGROUP*" 2>/dev/null); do
		xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null
		eventually 5 cri_cgroup_empty "$cg"
		rmdir "$cg" 2>/dev/null
	done
	# libcni's cached results are per network and sandbox: our network's, and the
	# loopback network's of our sandboxes (those CRI created, whatever became of them)
	rm -f "$CRI_CNI_CACHE/results/$CRI_NETWORK-"*
	for pod in $pods; do
		rm -f "$CRI_CNI_CACHE/results/"*"-$pod-"*
	done
	[ "${CRI_HAD_CNI_CACHE:-1}" = 0 ] && find "$CRI_CNI_CACHE" -depth -type d -exec rmdir {} + 2>/dev/null
	return 0
}

# cri_force_delete RUNTIME ROOT: `RUNTIME --root ROOT delete --force` of every container
# whose state is still in ROOT.
cri_force_delete() {
	local dir
	for dir in "$2"/*/; do
		[ -d "$dir" ] || continue
		timeout 30 "$1" --root "$2" delete --force "$(basename "$dir")" >/dev/null 2>&1 </dev/null 3>&-
	done
}

# cri_cgroup_empty DIR: no process left in the cgroup DIR (they are killed, then gone).
cri_cgroup_empty() {
	[ ! -s "$1/cgroup.procs" ]
}

# cri_netns_list: containerd's pod network namespaces (cni-<uuid> in /run/netns).
cri_netns_list() {
	ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ { print $1 }'
}

# cri_netns_ours NS: NS has an address in our pod subnet (or none at all: then no other
# CRI server configured it).
cri_netns_ours() {
	! ip -n "$1" -o -4 addr show 2>/dev/null | grep -v ' lo ' | grep -qv " inet $CRI_NET\.0\."
}

cri_setup() {
	[ -z "${CRI_SKIP:-}" ] || skip "$CRI_SKIP"
	common_setup
	CRI_PODS=()
	EG_LISTENERS=()
}

cri_teardown() {
	local pod
	if [ -z "${CRI_SKIP:-}" ]; then
		for pod in "${CRI_PODS[@]}"; do
			cri_remove_pod "$pod" >/dev/null 2>&1
		done
	fi
	egress_teardown
	common_teardown
}

# cri METHOD [REQUEST_JSON]: one CRI call (helpers/cri_client.py); the response as JSON
# on stdout, an error as one line "METHOD: CODE: MESSAGE" on stderr.
cri() {
	CRI_PB_DIR=$CRI_PB_DIR timeout --kill-after=5 "$CD_TIMEOUT" \
		"$CRI_PY" "$INTEGRATION_DIR/helpers/cri_client.py" "$CD_DIR/containerd.sock" "$@" 3>&-
}

# cri_pod_config NAME ANNOTATIONS_JSON: a PodSandboxConfig as kubelet writes one (own
# pid namespace per container, the pod's cgroup under /$CRI_CGROUP).
cri_pod_config() {
	jq -nc --arg n "$1" --argjson a "$2" --arg logs "$CD_DIR/logs/$1" --arg cg "/$CRI_CGROUP" \
		'{metadata: {name: $n, uid: ("uid-" + $n), namespace: "slit", attempt: 0}, hostname: $n,
		log_directory: $logs, annotations: $a,
		linux: {cgroup_parent: $cg, security_context: {namespace_options: {pid: "CONTAINER"}}}}'
}

# cri_run_pod VAR NAME HANDLER ANNOTATIONS_JSON: RunPodSandbox; the pod's id in VAR (and
# removed by teardown), its config in CRI_CONFIG_<VAR>. Fails with the CRI error.
cri_run_pod() {
	local config out
	config=$(cri_pod_config "$2" "$4") || return 1
	mkdir -p "$CD_DIR/logs/$2"
	out=$(cri RunPodSandbox "$(jq -nc --argjson c "$config" --arg h "$3" '{config: $c, runtime_handler: $h}')") ||
		return 1
	printf -v "$1" '%s' "$(jq -r .pod_sandbox_id <<<"$out")"
	echo "${!1}" >>"$CD_DIR/pods"
	printf -v "CRI_CONFIG_$1" '%s' "$config"
	CRI_PODS+=("${!1}")
}

# cri_create VAR POD_VAR NAME SCRIPT [ANNOTATIONS_JSON]: CreateContainer of the workload
# image running `sh -c SCRIPT` in the pod; its id in VAR.
cri_create() {
	local pod=${!2} config_var=CRI_CONFIG_$2 annotations=${5:-'{}'} request out
	request=$(jq -nc --arg p "$pod" --argjson sc "${!config_var}" --arg n "$3" --arg s "$4" \
		--arg img "$CD_IMAGE" --argjson a "$annotations" '{pod_sandbox_id: $p, sandbox_config: $sc,
		config: {metadata: {name: $n, attempt: 0}, image: {image: $img}, command: ["sh", "-c", $s],
			annotations: $a, log_path: ($n + ".log"),
			linux: {security_context: {namespace_options: {pid: "CONTAINER"}}}}}') || return 1
	out=$(cri CreateContainer "$request") || return 1
	printf -v "$1" '%s' "$(jq -r .container_id <<<"$out")"
}

# cri_exec ID ARGS...: ExecSync (10 s); the process's stdout, then its stderr, printed;
# returns its exit code (255 when the call itself failed).
cri_exec() {
	local id=$1 cmd out
	shift
	# (not jq's --args: it would read an argument such as --label as its own option)
	cmd=$(printf '%s\n' "$@" | jq -Rnc '[inputs]') || return 255
	out=$(cri ExecSync "$(jq -nc --arg id "$id" --argjson cmd "$cmd" '{container_id: $id, cmd: $cmd, timeout: 10}')") ||
		return 255
	jq -r '.stdout | @base64d' <<<"$out"
	jq -r '.stderr | @base64d' <<<"$out" >&2
	return "$(jq -r .exit_code <<<"$out")"
}

# cri_remove_pod ID: StopPodSandbox then RemovePodSandbox (which remove its containers).
cri_remove_pod() {
	cri StopPodSandbox "{\"pod_sandbox_id\": \"$1\"}" >/dev/null &&
		cri RemovePodSandbox "{\"pod_sandbox_id\": \"$1\"}" >/dev/null
}

# cri_container_state ID: CONTAINER_RUNNING, CONTAINER_EXITED, ... from ContainerStatus.
cri_container_state() {
	cri ContainerStatus "{\"container_id\": \"$1\"}" | jq -r .status.state
}

# cri_pod_netns ID: the path of the pod's network namespace (PodSandboxStatus, verbose:
# containerd's info carries the sandbox's OCI spec).
cri_pod_netns() {
	cri PodSandboxStatus "{\"pod_sandbox_id\": \"$1\", \"verbose\": true}" |
		jq -r '.info.info | fromjson | .runtimeSpec.linux.namespaces[] | select(.type == "network") | .path'
}

# cri_pod_ip ID: the pod's address on the CNI network.
cri_pod_ip() {
	cri PodSandboxStatus "{\"pod_sandbox_id\": \"$1\"}" | jq -r .status.network.ip
}

# cri_policy_pod VAR NAME HANDLER: a listener (cri_listen), then a pod of HANDLER whose
# annotation allows $CRI_A:$CRI_PORT only; its id in VAR, its address in POD_IP, its
# netns in POD_NETNS.
cri_policy_pod() {
	cri_listen &&
		cri_run_pod "$1" "$2" "$3" "$(jq -nc --arg v "$CRI_A:$CRI_PORT" '{"io.sandlock.network.allow": $v}')" ||
		return 1
	POD_IP=$(cri_pod_ip "${!1}") && POD_NETNS=$(cri_pod_netns "${!1}") || return 1
	echo "pod ${!1}: ip $POD_IP, netns $POD_NETNS"
}

# cri_listen: a TCP listener on $CRI_A and $CRI_D, port $CRI_PORT (records in
# $BATS_TEST_TMPDIR/tcp-$CRI_PORT.log, read with egress.bash's received*).
cri_listen() {
	local pid
	: >"$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
	pid=$("$(helper egress_listener)" tcp "$CRI_A,$CRI_D" "$CRI_PORT" "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log" 600 3>&-) ||
		return 1
	EG_LISTENERS+=("$pid")
}

# cri_received_from ADDR SRC_IP PAYLOAD: how many times PAYLOAD from SRC_IP reached ADDR.
cri_received_from() {
	awk -v a="$1" -v s="$2" -v d="$3" '{ src = $5; sub(/:[0-9]+$/, "", src) }
		$2 == a && $3 == p && $4 == "data" && src == s && $6 == d { n++ } END { print n + 0 }' \
		p="$CRI_PORT" "$BATS_TEST_TMPDIR/tcp-$CRI_PORT.log"
}

# cri_probe_script LABEL: a container's script: connects to the allowed then the refused
# address (payloads LABEL-allowed / LABEL-refused), results in /tmp/results, then
# /tmp/done; then waits for SIGTERM (StopContainer).
cri_probe_script() {
	cat <<-EOF
		trap 'exit 0' TERM
		/probe --label $1-allowed connect tcp $CRI_A $CRI_PORT $1-allowed >/tmp/results 2>&1
		/probe --label $1-refused connect tcp $CRI_D $CRI_PORT $1-refused >>/tmp/results 2>&1
		touch /tmp/done
		while :; do sleep 0.2; done
	EOF
}

# cri_results ID: the probes' results of a container started with cri_probe_script, once
# they are all there (ExecSync of cat).
cri_results() {
	done_in() { cri_exec "$1" test -e /tmp/done >/dev/null 2>&1; }
	eventually 30 done_in "$1" || return 1
	cri_exec "$1" cat /tmp/results
}

# cri_assert_pod_refused HANDLER ANNOTATIONS_JSON PATTERN: RunPodSandbox fails, the CRI
# error carries the runtime's message matching the ERE PATTERN, and nothing is left (no
# sandbox, no new netns, nothing of cri_assert_pod_gone's list).
cri_assert_pod_refused() {
	local before pod
	before=$(cri_netns_list | tr '\n' ' ')
	run cri_run_pod pod refused "$1" "$2"
	echo "$output"
	[ "$status" -ne 0 ] || return 1
	grep -E "^RunPodSandbox: [A-Z_]+: .*$3" <<<"$output" || return 1
	run cri ListPodSandbox
	[ "$(jq '.items | length' <<<"$output")" -eq 0 ] || return 1
	[ "$(cri_netns_list | tr '\n' ' ')" = "$before" ] || return 1
	cri_assert_pod_gone "" ""
}

# cri_assert_pod_gone ID NETNS: nothing of the removed pod is left: no sandbox or
# container in containerd, no shim, no runtime state, no cgroup, no netns, no IPAM
# allocation.
cri_assert_pod_gone() {
	local pod=$1 netns=$2 left=""
	cri ListPodSandbox | jq -e --arg p "$pod" '.items[] | select(.id == $p)' >/dev/null && left+="sandbox; "
	cri ListContainers "{\"filter\": {\"pod_sandbox_id\": \"$pod\"}}" | jq -e '.containers[]' >/dev/null &&
		left+="containers; "
	no_shim_of_pod() { [ -z "$(pids_with_cmdline " -id $pod ")" ]; }
	eventually 15 no_shim_of_pod || left+="shim $(pids_with_cmdline " -id $pod "); "
	# (the runtime's own supervisors name their container's state dir)
	no_sandlock_shim() { [ -z "$(pids_with_cmdline "$CD_DIR/runc-sandlock")" ]; }
	eventually 5 no_sandlock_shim || left+="runtime processes $(pids_with_cmdline "$CD_DIR/runc-sandlock"); "
	[ -z "$(find "$CD_DIR"/runc-sandlock "$CD_DIR"/runc-sandlock-conf "$CD_DIR"/runc-runc -mindepth 2 -maxdepth 2 2>/dev/null)" ] ||
		left+="runtime state $(find "$CD_DIR"/runc-* -mindepth 2 -maxdepth 2); "
	[ -z "$(find /sys/fs/cgroup -maxdepth 3 -mindepth 2 -type d -path "*/$CRI_CGROUP/*" 2>/dev/null)" ] ||
		left+="cgroups; "
	[ -n "$netns" ] && [ -e "$netns" ] && left+="netns $netns; "
	[ -z "$(find "$CD_DIR/ipam" -type f -name "$CRI_NET.*" 2>/dev/null)" ] ||
		left+="IPAM allocations $(find "$CD_DIR/ipam" -type f -name "$CRI_NET.*"); "
	! compgen -G "$CRI_CNI_CACHE/results/*-$pod-*" >/dev/null ||
		left+="CNI results $(echo "$CRI_CNI_CACHE/results/"*"-$pod-"*); "
	[ -n "$pod" ] && findmnt -rn -o TARGET | grep -qF "$pod" && left+="mounts; "
	[ -z "$left" ] || {
		echo "leftovers of pod $pod: $left" >&2
		return 1
	}
}
