# Helpers of integration/rootless.bats for podman as an unprivileged user (load after
# `load helpers`).
#
# The test user (slitrl<run token>) is made by rlp_setup_file with useradd, which gives it
# subordinate uid and gid ranges in /etc/subuid and /etc/subgid (login.defs' SUB_UID_*;
# one is added when it does not), and removed by rlp_teardown_file with userdel, which
# drops those ranges again. Everything the user writes is under $RLP_DIR
# (/tmp/slrl-<token>: HOME, XDG_RUNTIME_DIR, podman's storage root, run root and tmp dir,
# the copy of the runtime), removed at the end.
#
# The user's commands run in a private mount namespace held by one root process (the
# holder), never changing the host. It fixes three quirks of this kind of CI host for
# podman rootless, crun included: /dev/null (0755 here), /dev/net/tun (0600: slirp4netns)
# are replaced by 0666 nodes of the same devices, bind-mounted from a tmpfs of the
# namespace; /dev/shm is a tmpfs of its own (libpod_rootless_lock_UID stays in it); and
# on a hybrid host /sys/fs/cgroup/unified/cgroup.controllers reads as empty, since crun
# 1.8 refuses hybrid mode otherwise (podman itself then runs without cgroup limits, as on
# any cgroup v1 rootless host; our runtime, not root on the host, makes no cgroup there
# either way). / is made shared inside the namespace, as podman rootless wants. When the
# holder and the user's processes end, the namespace and all its mounts go with them.

RLP_IMAGE=localhost/slit-busybox:latest
# Short: podman refuses a runroot of more than 50 characters.
RLP_DIR=/tmp/slrl-${RUN_TOKEN:-x}
RLP_USER=slitrl${RUN_TOKEN:-x}
RLP_TIMEOUT=${RLP_TIMEOUT:-60}

# rlp_missing: the reason podman rootless cannot be tested here, or nothing.
rlp_missing() {
	local bin
	[ "$(id -u)" -eq 0 ] || { echo "the rootless podman tests need root (to make the test user)"; return; }
	for bin in podman conmon newuidmap newgidmap slirp4netns crun useradd userdel nsenter unshare setpriv; do
		command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/libexec/podman/$bin" ] || {
			echo "$bin is not installed (make deps)"
			return
		}
	done
	[ -e /proc/self/ns/user ] || echo "the kernel has no user namespaces"
}

# rlp_setup_file: the test user, its directories and podman configuration, the holder
# namespace, and the image imported by the user. Sets RLP_SKIP (exported) when the
# machine cannot run these tests.
rlp_setup_file() {
	export RLP_SKIP="" RLP_HOLDER="" RLP_MADE_USER=0
	RLP_SKIP=$(rlp_missing)
	[ -z "$RLP_SKIP" ] || return 0
	[ -x "$RUNTIME" ] || { echo "runtime under test not found: $RUNTIME" >&2; return 1; }
	if id "$RLP_USER" >/dev/null 2>&1; then
		echo "rlp_setup_file: user $RLP_USER exists already (a previous run's?)" >&2
		return 1
	fi
	rm -rf --one-file-system "$RLP_DIR"
	mkdir -m 0755 "$RLP_DIR" || return 1
	useradd --no-create-home --home-dir "$RLP_DIR/home" --shell /bin/sh --user-group "$RLP_USER" || return 1
	RLP_MADE_USER=1
	rlp_subids || return 1
	rlp_files || return 1
	rlp_start_holder || return 1
	rlp_wrapper || return 1
	ensure_busybox_rootfs "$ROOTFS" || return 1
	tar -C "$ROOTFS" -cf "$RLP_DIR/rootfs.tar" . && chmod 0644 "$RLP_DIR/rootfs.tar" || return 1
	rlp_podman import -q "$RLP_DIR/rootfs.tar" "$RLP_IMAGE" >/dev/null || {
		echo "rlp_setup_file: podman import as $RLP_USER failed" >&2
		return 1
	}
	rm -f "$RLP_DIR/rootfs.tar"
}

# rlp_subids: a subordinate uid and gid range for the user, unless useradd gave it one
# (the next free 65536 ids above the ranges already listed).
rlp_subids() {
	local f opt start
	for f in subuid subgid; do
		grep -q "^$RLP_USER:" "/etc/$f" 2>/dev/null && continue
		start=$(awk -F: 'BEGIN { m = 100000 } { if ($2 + $3 > m) m = $2 + $3 } END { print m }' "/etc/$f" 2>/dev/null)
		opt=--add-subuids
		[ "$f" = subgid ] && opt=--add-subgids
		usermod "$opt" "${start:-100000}-$((${start:-100000} + 65535))" "$RLP_USER" || return 1
	done
}

# rlp_files: the user's directories, podman's configuration, the wrappers and the copy of
# the runtime (bats' temp dirs are root's, 0700: the user could not reach the build's).
rlp_files() {
	mkdir -p "$RLP_DIR"/{home,xdg,graph,run,tmp,bin,dev} &&
		chmod 0700 "$RLP_DIR"/{home,xdg} &&
		cp "$RUNTIME" "$RLP_DIR/bin/sandlock-runc" || return 1
	[ -x "$(dirname "$RUNTIME")/sandlock-shim" ] && cp "$(dirname "$RUNTIME")/sandlock-shim" "$RLP_DIR/bin/"
	chmod 0755 "$RLP_DIR"/bin/*
	printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' \
		"$RLP_DIR/run" "$RLP_DIR/graph" >"$RLP_DIR/storage.conf"
	# runtime_supports_json: podman then shows the runtime's own error message
	printf '[engine]\nruntime_supports_json = ["crun", "runc", "sandlock-runc"]\n' >"$RLP_DIR/containers.conf"
	chown -R "$RLP_USER:" "$RLP_DIR"/{home,xdg,graph,run,tmp}
	chmod 0644 "$RLP_DIR"/*.conf
}

# rlp_start_holder: the private mount namespace the user's commands run in (see above).
rlp_start_holder() {
	local ctl=/sys/fs/cgroup/unified/cgroup.controllers
	cat >"$RLP_DIR/holder.sh" <<-EOF
		#!/bin/sh
		set -e
		mount -t tmpfs -o mode=0755,size=64k slrl-dev "$RLP_DIR/dev"
		mknod -m 0666 "$RLP_DIR/dev/null" c 1 3
		mount --bind "$RLP_DIR/dev/null" /dev/null
		if [ -e /dev/net/tun ]; then
			mknod -m 0666 "$RLP_DIR/dev/tun" c 10 200
			mount --bind "$RLP_DIR/dev/tun" /dev/net/tun
		fi
		mount -t tmpfs -o mode=1777,size=16m slrl-shm /dev/shm
		if [ -e $ctl ] && [ "\$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
			: >"$RLP_DIR/dev/controllers"
			mount --bind "$RLP_DIR/dev/controllers" $ctl
		fi
		mount --make-rshared /
		touch "$RLP_DIR/ready"
		exec sleep infinity
	EOF
	chmod 0755 "$RLP_DIR/holder.sh"
	unshare -m --propagation private "$RLP_DIR/holder.sh" </dev/null >"$RLP_DIR/holder.log" 2>&1 3>&- &
	RLP_HOLDER=$!
	local i
	for ((i = 0; i < 50; i++)); do
		[ -e "$RLP_DIR/ready" ] && [ "$(readlink "/proc/$RLP_HOLDER/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
			return 0
		kill -0 "$RLP_HOLDER" 2>/dev/null || break
		sleep 0.1
	done
	echo "rlp_start_holder: the namespace holder did not start: $(cat "$RLP_DIR/holder.log")" >&2
	return 1
}

# rlp_wrapper: $RLP_DIR/as-user, which runs its arguments as the test user (no
# capabilities, its own groups) in the holder's mount namespace, with its HOME and XDG
# dirs and podman's configuration; and $RLP_DIR/podman, the user's podman on the test's
# storage (a script, so that script(1) can run it under a pty).
rlp_wrapper() {
	cat >"$RLP_DIR/as-user" <<-EOF
		#!/bin/sh
		exec timeout --kill-after=5 $RLP_TIMEOUT nsenter -t $RLP_HOLDER -m -- \\
			setpriv --reuid=$RLP_USER --regid=$RLP_USER --init-groups --inh-caps=-all \\
			env -i -C $RLP_DIR/home PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$RLP_DIR/home \\
			USER=$RLP_USER LOGNAME=$RLP_USER TERM=xterm TMPDIR=$RLP_DIR/tmp \\
			XDG_RUNTIME_DIR=$RLP_DIR/xdg XDG_CONFIG_HOME=$RLP_DIR/home/.config \\
			XDG_DATA_HOME=$RLP_DIR/home/.local/share \\
			CONTAINERS_CONF=$RLP_DIR/containers.conf CONTAINERS_STORAGE_CONF=$RLP_DIR/storage.conf \\
			"\$@"
	EOF
	cat >"$RLP_DIR/podman" <<-EOF
		#!/bin/sh
		exec $RLP_DIR/as-user podman --root $RLP_DIR/graph --runroot $RLP_DIR/run --tmpdir $RLP_DIR/tmp \\
			--cgroup-manager cgroupfs --events-backend file "\$@"
	EOF
	chmod 0755 "$RLP_DIR/as-user" "$RLP_DIR/podman"
}

# as_rlp CMD...: CMD as the test user (see rlp_wrapper).
as_rlp() {
	"$RLP_DIR/as-user" "$@" 3>&-
}

# rlp_podman ARGS...: the user's podman (runtime chosen by ARGS).
rlp_podman() {
	"$RLP_DIR/podman" "$@" 3>&-
}

# rlp_rt RUNTIME: podman's --runtime value for crun, or for ours ("ours").
rlp_rt() {
	if [ "$1" = ours ]; then echo "$RLP_DIR/bin/sandlock-runc"; else echo "$1"; fi
}

# rlp_pm RUNTIME ARGS...: rlp_podman --runtime RUNTIME (crun, or "ours").
rlp_pm() {
	rlp_podman --runtime "$(rlp_rt "$1")" "${@:2}"
}

# rlpq RUNTIME ARGS...: rlp_pm with stdio on files, printed afterwards (stdout first): for
# commands that leave conmon or a container behind, so `run rlpq ...` cannot hang.
rlpq() {
	local out err status
	out=$(mktemp "$BATS_TEST_TMPDIR/rlpq.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/rlpq.XXXXXX")
	rlp_pm "$@" >"$out" 2>"$err" </dev/null
	status=$?
	cat "$out" "$err"
	rm -f "$out" "$err"
	return $status
}

# rlp_pty RUNTIME ARGS...: rlp_pm under a pseudo-terminal (script(1)).
rlp_pty() {
	local cmd w
	cmd=$(printf '%q ' "$RLP_DIR/podman" --runtime "$(rlp_rt "$1")")
	for w in "${@:2}"; do cmd+=$(printf '%q ' "$w"); done
	in_pty "$cmd"
}

# rlp_both NAME CMD...: runs `CMD crun ...` and `CMD ours ...` (CMD gets the runtime as its
# first argument, e.g. rlpq), prints both outputs and stores both exit codes in
# CRUN_RC and OURS_RC; succeeds when they are equal.
rlp_both() {
	local what=$1 out
	shift
	# (bats runs tests under errexit: a failing command must not end the function)
	CRUN_RC=0
	out=$("$1" crun "${@:2}" 2>&1) || CRUN_RC=$?
	echo "crun $what: $CRUN_RC: $out"
	OURS_RC=0
	out=$("$1" ours "${@:2}" 2>&1) || OURS_RC=$?
	echo "ours $what: $OURS_RC: $out"
	# shellcheck disable=SC2034 # read by the tests
	OURS_OUT=$out
	[ "$CRUN_RC" = "$OURS_RC" ]
}

# rlp_setup: for setup() of a podman test.
rlp_setup() {
	[ -z "${RLP_SKIP:-}" ] || skip "$RLP_SKIP"
	[ -n "${RLP_HOLDER:-}" ] || skip "rootless podman setup failed"
}

# rlp_teardown: every container of the user removed (with conmon and exec sessions).
rlp_teardown() {
	[ -n "${RLP_HOLDER:-}" ] || return 0
	rlp_podman rm -af -t 0 >/dev/null 2>&1 </dev/null
	return 0
}

# rlp_user_pids: the user's processes (zombies included).
rlp_user_pids() {
	ps -u "$RLP_USER" -o pid= 2>/dev/null
}

# rlp_assert_clean: nothing of the user's containers left: no runtime state, no conmon,
# no container process (podman's pause process, catatonit, may stay until teardown_file).
rlp_assert_clean() {
	local left=""
	[ -z "$(ls -A "$RLP_DIR/xdg/sandlock-runc" 2>/dev/null)" ] || left+="state $(ls "$RLP_DIR/xdg/sandlock-runc"); "
	only_pause() { [ -z "$(ps -u "$RLP_USER" -o stat=,comm= | grep -v '^Z' | grep -vw catatonit)" ]; }
	eventually 15 only_pause || left+="processes $(ps -u "$RLP_USER" -o pid=,comm= | tr '\n' ' '); "
	[ -z "$left" ] || {
		echo "leftovers: $left" >&2
		return 1
	}
}

# rlp_teardown_file: the user's containers, processes and storage, the holder, the user
# (with its subuid/subgid ranges) and $RLP_DIR. Runs whatever failed before.
rlp_teardown_file() {
	local pid i
	if [ -n "${RLP_HOLDER:-}" ]; then
		rlp_podman rm -af -t 0 >/dev/null 2>&1 </dev/null
		# storage of the user namespace's ids: only the user's podman may remove it
		rlp_podman system reset -f >/dev/null 2>&1 </dev/null
	fi
	if [ "${RLP_MADE_USER:-0}" = 1 ]; then
		for ((i = 0; i < 50; i++)); do
			pid=$(rlp_user_pids)
			[ -z "$pid" ] && break
			# shellcheck disable=SC2086 # one pid a word
			kill -9 $pid 2>/dev/null
			sleep 0.1
		done
	fi
	[ -n "${RLP_HOLDER:-}" ] && kill "$RLP_HOLDER" 2>/dev/null && wait "$RLP_HOLDER" 2>/dev/null
	[ "${RLP_MADE_USER:-0}" = 1 ] && userdel -f "$RLP_USER" 2>/dev/null
	getent group "$RLP_USER" >/dev/null && groupdel "$RLP_USER" 2>/dev/null
	# the mounts lived in the holder's namespace; never follow one if any is left here
	findmnt -rn -o TARGET | grep -qF "$RLP_DIR" && echo "rlp_teardown_file: mounts left under $RLP_DIR" >&2
	rm -rf --one-file-system "$RLP_DIR" 2>/dev/null
	return 0
}
