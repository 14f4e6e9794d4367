# Helpers of integration/containerd.bats (load after `load helpers`; egress.bash too for
# the egress test).
#
# A private containerd per test file: root, state, sockets, runc root and ctr's fifos all
# under $CD_DIR ($BATS_FILE_TMPDIR/containerd), its config importing
# config/containerd-sandlock.toml; started in setup_file, stopped by pid in
# teardown_file. containerd 1.6 still puts its shims' sockets in /run/containerd/s
# (fixed path); teardown_file removes /run/containerd when the suite created it.
# Containers live in the containerd namespace "slit", named slit-<run>-<test>-<n>; their
# cgroups are /slit/<id> in each hierarchy. The image, localhost/slit-busybox:latest, is
# an OCI archive of the busybox test rootfs built here by hand (cd_oci_archive).

CD_IMAGE=localhost/slit-busybox:latest
CD_NS=slit
CD_DIR=${BATS_FILE_TMPDIR:-/nonexistent}/containerd
CD_TIMEOUT=${CD_TIMEOUT:-60}

# cd_missing: the reason containerd cannot be tested on this machine, or nothing.
cd_missing() {
	local bin
	for bin in containerd ctr containerd-shim-runc-v2; do
		command -v "$bin" >/dev/null 2>&1 || {
			echo "$bin is not installed (apt-get install containerd)"
			return
		}
	done
}

# cd_setup_file: the private containerd and the imported image. Sets CD_SKIP (exported)
# when the machine lacks containerd; the tests then skip with it.
cd_setup_file() {
	export CD_SKIP="" CD_PID="" CD_HAD_RUN=0 CD_HAD_CGROUP=0
	CD_SKIP=$(cd_missing)
	[ -z "$CD_SKIP" ] || return 0
	[ "$(id -u)" -eq 0 ] || { CD_SKIP="the containerd tests need root"; return 0; }
	[ -x "$RUNTIME" ] || { echo "runtime under test not found: $RUNTIME" >&2; return 1; }
	[ -e /run/containerd ] && CD_HAD_RUN=1
	compgen -G "/sys/fs/cgroup/*/$CD_NS" >/dev/null && CD_HAD_CGROUP=1
	mkdir -p "$CD_DIR"/{root,state,opt,runc,fifo} || return 1
	cd_config_base "imports = [\"$INTEGRATION_DIR/config/containerd-sandlock.toml\"]" >"$CD_DIR/config.toml"
	containerd --config "$CD_DIR/config.toml" >"$CD_DIR/containerd.log" 2>&1 </dev/null 3>&- &
	CD_PID=$!
	local deadline=$((SECONDS + 20))
	until ctr_ version >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ] || ! kill -0 "$CD_PID" 2>/dev/null; then
			echo "cd_setup_file: containerd did not come up; its log:" >&2
			tail -n 20 "$CD_DIR/containerd.log" >&2
			return 1
		fi
		sleep 0.1
	done
	ensure_busybox_rootfs "$ROOTFS" || return 1
	cd_oci_archive "$ROOTFS" "$CD_DIR/busybox-oci.tar" "$CD_IMAGE" || return 1
	ctr_ image import "$CD_DIR/busybox-oci.tar" >/dev/null || {
		echo "cd_setup_file: ctr image import failed" >&2
		return 1
	}
}

# cd_config_base [TOP_LEVEL_LINE...]: the start of a private containerd's config (version
# 2): its root, state, sockets and opt dir under $CD_DIR, then the given top-level lines.
cd_config_base() {
	cat <<-EOF
		version = 2
		root = "$CD_DIR/root"
		state = "$CD_DIR/state"
	EOF
	printf '%s\n' "$@"
	cat <<-EOF
		[grpc]
		  address = "$CD_DIR/containerd.sock"
		[ttrpc]
		  address = "$CD_DIR/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$CD_DIR/opt"
	EOF
}

# cd_teardown_file: everything of the private containerd, containerd itself by pid.
cd_teardown_file() {
	[ -d "$CD_DIR" ] || return 0
	local id p
	# by pid: the one setup_file started (found again by its private config path, in
	# case setup_file failed before exporting it)
	local pid
	for pid in $(cd_daemon_pids); do
		for id in $(ctr_ containers ls -q 2>/dev/null); do
			cd_remove "$id"
		done
		ctr_ image rm "$CD_IMAGE" >/dev/null 2>&1
		kill "$pid"
		cd_wait_exit "$pid" 10 || kill -9 "$pid" 2>/dev/null
	done
	# shims outlive containerd; they are ours when they name our socket
	local socket
	for p in $(cd_shim_pids); do
		socket=$(cd_shim_socket "$p")
		kill -9 "$p" 2>/dev/null && cd_wait_exit "$p" 5
		rm -f "$socket"
	done
	for p in $(findmnt -rn -o TARGET | grep -F "$CD_DIR" | sort -r); do
		umount -l "$p" 2>/dev/null
	done
	rm -rf --one-file-system "$CD_DIR" 2>/dev/null
	[ "${CD_HAD_RUN:-1}" = 0 ] && find /run/containerd -depth -type d -exec rmdir {} + 2>/dev/null
	[ "${CD_HAD_CGROUP:-1}" = 0 ] && find /sys/fs/cgroup/*/"$CD_NS" -depth -type d -exec rmdir {} + 2>/dev/null
	return 0
}

# cd_wait_exit PID SECONDS: waits until PID has exited (a zombie counts as exited: the
# shell that started containerd is gone, and init may not reap at once).
cd_wait_exit() {
	local deadline=$((SECONDS + $2))
	while [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# cd_daemon_pids: the private containerd's pid (live, not a zombie).
cd_daemon_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
		[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" = "containerd --config $CD_DIR/config.toml " ] &&
			echo "${p#/proc/}"
	done
	return 0
}

# cd_shim_socket PID: the socket containerd 1.6 made for that shim, which stays when the
# shim is killed: /run/containerd/s/ and the sha256 of ADDRESS/NAMESPACE/ID (its -address,
# -namespace and -id arguments).
cd_shim_socket() {
	local args=() i addr="" ns="" id=""
	mapfile -d '' args <"/proc/$1/cmdline" 2>/dev/null
	for ((i = 0; i + 1 < ${#args[@]}; i++)); do
		case ${args[i]} in
		-address) addr=${args[i + 1]} ;;
		-namespace) ns=${args[i + 1]} ;;
		-id) id=${args[i + 1]} ;;
		esac
	done
	[ -n "$id" ] || return 0
	echo "/run/containerd/s/$(printf '%s' "$addr/$ns/$id" | sha256sum | cut -d' ' -f1)"
}

# cd_shim_pids: pids of the shims of the private containerd.
cd_shim_pids() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qE "^([^ ]*/)?containerd-shim[^ ]* .*$CD_DIR/containerd.sock" &&
			echo "${p#/proc/}"
	done
	return 0
}

# cd_setup / cd_teardown: for setup() and teardown().
cd_setup() {
	[ -z "${CD_SKIP:-}" ] || skip "$CD_SKIP"
	common_setup
	CD_IDS=()
}

cd_teardown() {
	local id
	if [ -z "${CD_SKIP:-}" ]; then
		for id in "${CD_IDS[@]}"; do
			cd_remove "$id"
		done
	fi
	common_teardown
}

# cd_remove ID: the task killed and deleted, then the container.
cd_remove() {
	ctr_ task kill -s SIGKILL "$1" >/dev/null 2>&1
	local deadline=$((SECONDS + 10))
	while [ "$(cd_task_status "$1")" = RUNNING ] || [ "$(cd_task_status "$1")" = PAUSED ]; do
		[ "$(cd_task_status "$1")" = PAUSED ] && ctr_ task resume "$1" >/dev/null 2>&1
		[ $SECONDS -lt $deadline ] || break
		sleep 0.1
	done
	ctr_ task delete --force "$1" >/dev/null 2>&1
	ctr_ containers rm "$1" >/dev/null 2>&1
	return 0
}

# ctr_ ARGS...: ctr against the private containerd, namespace slit.
ctr_() {
	timeout --kill-after=5 "$CD_TIMEOUT" ctr --address "$CD_DIR/containerd.sock" --namespace "$CD_NS" "$@" 3>&-
}

# cd_run_args: the ctr run options every test uses: the runtime under test, its root
# and ctr's fifos under $CD_DIR.
cd_run_args() {
	echo --runc-binary "$RUNTIME" --runc-root "$CD_DIR/runc" --fifo-dir "$CD_DIR/fifo"
}

# cd_id VAR: a fresh container id in VAR, removed by teardown.
cd_id() {
	printf -v "$1" 'slit-%s-%s-%s' "$RUN_TOKEN" "$BATS_SUITE_TEST_NUMBER" "$((++ID_SEQ))"
	CD_IDS+=("${!1}")
}

# ctrq ARGS...: ctr_ with stdio on files, their content then printed (stdout first): for
# `run -d`, whose shim must not hold the test's pipes.
ctrq() {
	local out err status
	out=$(mktemp "$BATS_TEST_TMPDIR/ctrq.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/ctrq.XXXXXX")
	ctr_ "$@" >"$out" 2>"$err" </dev/null
	status=$?
	cat "$out" "$err"
	rm -f "$out" "$err"
	return $status
}

# ctr_pty ARGS...: ctr_ under a pseudo-terminal (script(1)).
ctr_pty() {
	local cmd w
	cmd=$(printf '%q ' timeout --foreground --kill-after=5 "$CD_TIMEOUT" ctr --address "$CD_DIR/containerd.sock" --namespace "$CD_NS")
	for w in "$@"; do cmd+=$(printf '%q ' "$w"); done
	in_pty "$cmd"
}

# cd_task_status ID: RUNNING, PAUSED, STOPPED ... ("" without a task).
cd_task_status() {
	ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}

# cd_wait_task ID STATUS [SECONDS]
cd_wait_task() {
	local deadline=$((SECONDS + ${3:-15})) now
	while :; do
		now=$(cd_task_status "$1")
		[ "$now" = "$2" ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			echo "task $1 is '$now', wanted '$2'" >&2
			return 1
		fi
		sleep 0.1
	done
}

# cd_cgroup_file ID CONTROLLER FILE: a file of the container's cgroup (v1 hierarchy).
cd_cgroup_file() {
	echo "/sys/fs/cgroup/$2/$CD_NS/$1/$3"
}

# cd_assert_gone ID: no task, container, runtime state, shim, cgroup or mount left.
cd_assert_gone() {
	local id=$1 left=""
	[ -n "$(cd_task_status "$id")" ] && left+="task; "
	ctr_ containers ls -q 2>/dev/null | grep -qxF "$id" && left+="container; "
	[ -e "$CD_DIR/runc/$CD_NS/$id" ] && left+="runtime state; "
	# the shim exits on its own after its Shutdown call: within 15 s (containerd starts it
	# by its full path, /usr/bin/containerd-shim-runc-v2)
	shim_of_id() { pids_with_cmdline " -id $id " | grep -oE '[0-9]+:([^ ;]*/)?containerd-shim[^;]*;' || true; }
	no_shim_of_id() { [ -z "$(shim_of_id)" ]; }
	eventually 15 no_shim_of_id || left+="shim $(shim_of_id); "
	[ -n "$(find /sys/fs/cgroup -maxdepth 4 -type d -path "*/$CD_NS/$id" 2>/dev/null)" ] && left+="cgroups; "
	findmnt -rn -o TARGET | grep -qF "/$id/" && left+="mounts; "
	[ -z "$left" ] || {
		echo "leftovers of $id: $left" >&2
		return 1
	}
}

# cd_oci_archive ROOTFS OUT NAME [CMD_JSON]: an OCI image archive (one gzip layer) of
# ROOTFS, named NAME for `ctr image import`, whose config's Cmd is CMD_JSON (default
# ["sh"]).
cd_oci_archive() {
	local rootfs=$1 out=$2 name=$3 cmd=${4:-'["sh"]'} dir diff_id layer cfg manifest
	dir=$(mktemp -d "$BATS_FILE_TMPDIR/oci.XXXXXX") || return 1
	mkdir -p "$dir/blobs/sha256"
	tar -C "$rootfs" -cf - . | gzip -1 >"$dir/layer" || return 1
	diff_id=$(gzip -dc "$dir/layer" | sha256sum | cut -d' ' -f1)
	layer=$(cd_blob "$dir" "$dir/layer") || return 1
	jq -nc --arg d "sha256:$diff_id" --argjson cmd "$cmd" '{architecture: "amd64", os: "linux",
		config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: $cmd},
		rootfs: {type: "layers", diff_ids: [$d]}}' >"$dir/config" || return 1
	cfg=$(cd_blob "$dir" "$dir/config") || return 1
	jq -nc --argjson c "$cfg" --argjson l "$layer" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: ($c + {mediaType: "application/vnd.oci.image.config.v1+json"}),
		layers: [$l + {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}]}' >"$dir/manifest" || return 1
	manifest=$(cd_blob "$dir" "$dir/manifest") || return 1
	jq -nc --argjson m "$manifest" --arg n "$name" '{schemaVersion: 2,
		manifests: [$m + {mediaType: "application/vnd.oci.image.manifest.v1+json",
			annotations: {"io.containerd.image.name": $n, "org.opencontainers.image.ref.name": ($n | sub(".*:"; ""))}}]}' \
		>"$dir/index.json" || return 1
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	tar -C "$dir" -cf "$out" oci-layout index.json blobs || return 1
	rm -rf "$dir"
}

# cd_blob DIR FILE: moves FILE into DIR's blob store; prints its descriptor's digest and
# size as JSON.
cd_blob() {
	local digest size
	digest=$(sha256sum "$2" | cut -d' ' -f1)
	size=$(stat -c %s "$2")
	mv "$2" "$1/blobs/sha256/$digest" || return 1
	jq -nc --arg d "sha256:$digest" --argjson s "$size" '{digest: $d, size: $s}'
}
