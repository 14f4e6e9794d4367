#!/usr/bin/env bats
# What the container looks like from inside: namespaces, hostname, mounts and their
# propagation, masked and read-only paths, capabilities, rlimits, user, seccomp, devices.

load helpers

# run_in BUNDLE_FILTERS... -- WORDS...: runs WORDS in a fresh container made with the
# filters; $status and $output as from bats' run.
run_in() {
	local filters=() id
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		filters+=("$1")
		shift
	done
	shift
	new_id id
	make_bundle "b-$id" "${filters[@]}" "$(args "$@")"
	run_container "$id" "$BUNDLE"
	echo "status $status: $output"
}

@test "namespaces are separate from the host: pid net mnt uts ipc cgroup" {
	run_in '.linux.namespaces |= (map(select(.type != "cgroup")) + [{"type": "cgroup"}])' -- \
		sh -c 'for n in pid net mnt uts ipc cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done'
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
	for n in pid net mnt uts ipc cgroup; do
		inside=$(grep "^$n " <<<"$output" | cut -d' ' -f2)
		[ -n "$inside" ]
		[[ "$inside" == "$n:["* ]] || [[ "$n" == net && "$inside" == "net:["* ]]
		[ "$inside" != "$(host_ns "$n")" ]
	done
}

@test "a namespace left out of the config is shared with the host" {
	run_in '.linux.namespaces |= map(select(.type != "network" and .type != "ipc"))' -- \
		sh -c 'readlink /proc/self/ns/net; readlink /proc/self/ns/ipc'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(host_ns net)" ]
	[ "${lines[1]}" = "$(host_ns ipc)" ]
}

@test "the container is pid 1 of its pid namespace" {
	run_in -- sh -c 'echo $$; ps -o pid,args | wc -l'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 1 ]
}

@test "join a network namespace by path" {
	add_netns NS
	ip netns exec "$NS" ip link set lo up
	run_in ".linux.namespaces |= map(if .type == \"network\" then .path = \"/run/netns/$NS\" else . end)" -- \
		sh -c 'readlink /proc/self/ns/net; ip -o link show lo'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "net:[$(stat -L -c %i "/run/netns/$NS")]" ]
	grep -q 'UP' <<<"${lines[1]}"
}

@test "hostname" {
	run_in '.hostname = "slit-host"' -- hostname
	[ "$status" -eq 0 ]
	[ "$output" = slit-host ]
	[ "$(hostname)" != slit-host ]
}

@test "process env and cwd" {
	run_in '.process.env += ["SLIT_VAR=some value"]' '.process.cwd = "/tmp"' -- \
		sh -c 'echo "$SLIT_VAR"; pwd'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "some value" ]
	[ "${lines[1]}" = /tmp ]
}

@test "bind mounts (rw and ro) and tmpfs mounts" {
	src=$BATS_TEST_TMPDIR/src
	mkdir -p "$src"
	echo from-host >"$src/in"
	run_in ".mounts += [
		{destination: \"/rw\", type: \"bind\", source: \"$src\", options: [\"rbind\"]},
		{destination: \"/ro\", type: \"bind\", source: \"$src\", options: [\"rbind\", \"ro\"]},
		{destination: \"/scratch\", type: \"tmpfs\", source: \"tmpfs\", options: [\"size=1m\", \"mode=1777\"]}]" -- \
		sh -c 'cat /rw/in; echo from-container > /rw/out; echo x > /ro/x 2>/dev/null && echo RO-WRITABLE;
			grep -E " /scratch tmpfs " /proc/mounts; grep -E " /ro " /proc/mounts'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = from-host ]
	[ "$(cat "$src/out")" = from-container ]
	refute_line RO-WRITABLE
	grep -qE ' /scratch tmpfs rw,.*size=1024k' <<<"$output"
	grep -qE ' /ro [^ ]+ ro[, ]' <<<"$output"
}

@test "mount propagation: rslave sees later host mounts, rprivate does not" {
	src=$BATS_TEST_TMPDIR/shared
	mkdir -p "$src/sub"
	mount --bind "$src" "$src"
	TEST_MOUNTS+=("$src")
	mount --make-shared "$src"
	new_id ID
	make_bundle b "$(args sleep 1000)" ".mounts += [
		{destination: \"/slave\", type: \"bind\", source: \"$src\", options: [\"rbind\", \"rslave\"]},
		{destination: \"/private\", type: \"bind\", source: \"$src\", options: [\"rbind\", \"rprivate\"]}]"
	start_container "$ID" "$BUNDLE"
	wait_status "$ID" running
	mount -t tmpfs slit-tmpfs "$src/sub"
	TEST_MOUNTS+=("$src/sub")
	touch "$src/sub/marker"
	run rt exec "$ID" sh -c 'ls /slave/sub; echo ---; ls /private/sub'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = marker ]
	[ "${lines[1]}" = --- ]
	[ "${#lines[@]}" -eq 2 ]
	# and nothing the container mounted showed up on the host
	[ -z "$(findmnt -rn -o TARGET | grep -F "$BUNDLE")" ]
}

@test "masked paths read empty: /proc/kcore (where the kernel has it), /proc/keys, /proc/timer_list" {
	files=""
	for f in /proc/kcore /proc/keys /proc/timer_list; do
		# only files the host kernel has and the spec masks are meaningful
		[ -e "$f" ] && [ "$(head -c 16 "$f" | wc -c)" -gt 0 ] && files+=" $f"
	done
	[ -n "$files" ]
	run_in -- sh -c "for f in $files; do echo \"\$f \$(cat \$f | wc -c)\"; done; ls -A /sys/firmware | wc -l"
	[ "$status" -eq 0 ]
	for f in $files; do
		jq -e --arg f "$f" '.linux.maskedPaths | index($f) != null' "$BUNDLE/config.json"
		grep -qx "$f 0" <<<"$output"
	done
	[ "${lines[-1]}" = 0 ]
}

@test "read-only paths: writing /proc/sys fails even with CAP_SYS_ADMIN" {
	run_in '.process.capabilities |= with_entries(.value += ["CAP_SYS_ADMIN"])' -- \
		sh -c 'echo slit > /proc/sys/kernel/hostname; echo "rc=$?"; hostname'
	refute_line slit
	grep -q 'rc=1' <<<"$output"
	grep -qi 'read-only' <<<"$output"
}

@test "root.readonly makes / read-only" {
	run_in '.root.readonly = true' -- sh -c 'touch /newfile; echo "rc=$?"'
	grep -q 'rc=1' <<<"$output"
	grep -qi 'read-only' <<<"$output"
	[ ! -e "$BUNDLE/rootfs/newfile" ]
}

@test "a writable root lets the process write" {
	run_in -- sh -c 'touch /newfile; echo "rc=$?"'
	grep -q 'rc=0' <<<"$output"
	[ -e "$BUNDLE/rootfs/newfile" ]
}

@test "capabilities: CapEff, CapPrm and CapBnd match the spec" {
	new_id ID
	make_bundle b "$(args grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb):' /proc/self/status)" \
		'.process.capabilities = {bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
			effective: ["CAP_CHOWN", "CAP_KILL"], permitted: ["CAP_CHOWN", "CAP_KILL"]}'
	run_container "$ID" "$BUNDLE"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(awk '/^CapEff/ {print $2}' <<<"$output")" = "$(cap_mask CAP_CHOWN CAP_KILL)" ]
	[ "$(awk '/^CapPrm/ {print $2}' <<<"$output")" = "$(cap_mask CAP_CHOWN CAP_KILL)" ]
	[ "$(awk '/^CapBnd/ {print $2}' <<<"$output")" = "$(cap_mask CAP_CHOWN CAP_KILL CAP_NET_RAW CAP_SETUID)" ]
	[ "$(awk '/^CapAmb/ {print $2}' <<<"$output")" = 0000000000000000 ]
}

@test "capabilities: the default spec's effective set" {
	new_id ID
	make_bundle b "$(args grep '^CapEff:' /proc/self/status)"
	want=$(cap_mask $(jq -r '.process.capabilities.effective[]' "$BUNDLE/config.json"))
	run_container "$ID" "$BUNDLE"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(awk '{print $2}' <<<"$output")" = "$want" ]
}

@test "noNewPrivileges sets NoNewPrivs" {
	run_in '.process.noNewPrivileges = true' -- grep '^NoNewPrivs:' /proc/self/status
	[ "$(awk '{print $2}' <<<"$output")" = 1 ]
	run_in '.process.noNewPrivileges = false' -- grep '^NoNewPrivs:' /proc/self/status
	[ "$(awk '{print $2}' <<<"$output")" = 0 ]
}

@test "rlimits: RLIMIT_NOFILE soft and hard" {
	run_in '.process.rlimits = [{type: "RLIMIT_NOFILE", soft: 4242, hard: 4343}]' -- \
		sh -c 'ulimit -Sn; ulimit -Hn'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 4242 ]
	[ "${lines[1]}" = 4343 ]
}

@test "user: uid, gid and additional groups" {
	run_in '.process.user = {uid: 1000, gid: 1000, additionalGids: [10, 100]}' -- \
		sh -c 'id -u; id -g; grep "^Groups:" /proc/self/status; id -un'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 1000 ]
	[ "${lines[1]}" = 1000 ]
	[ "$(echo ${lines[2]#Groups:})" = "10 100" ]
	[ "${lines[3]}" = user ]
}

@test "user: a non-root user has no effective capabilities" {
	run_in '.process.user = {uid: 1000, gid: 1000}' -- grep '^CapEff:' /proc/self/status
	[ "$(awk '{print $2}' <<<"$output")" = 0000000000000000 ]
}

@test "seccomp: a denied syscall fails with its errnoRet" {
	run_in '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"],
		syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}' -- \
		sh -c 'mkdir /tmp/dir; echo "mkdir rc=$?"; touch /tmp/file; echo "touch rc=$?"'
	[ "$status" -eq 0 ]
	grep -q 'Operation not permitted' <<<"$output"
	grep -q 'mkdir rc=1' <<<"$output"
	grep -q 'touch rc=0' <<<"$output"
	[ ! -e "$BUNDLE/rootfs/tmp/dir" ]
}

@test "seccomp: a rule without errnoRet fails with EPERM, errnoRet 13 with EACCES" {
	run_in '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"],
		syscalls: [{names: ["chmod", "fchmod", "fchmodat", "fchmodat2"], action: "SCMP_ACT_ERRNO"},
			{names: ["unlink", "unlinkat"], action: "SCMP_ACT_ERRNO", errnoRet: 13}]}' -- \
		sh -c 'touch /tmp/f; chmod 600 /tmp/f; echo "chmod rc=$?"; rm /tmp/f; echo "rm rc=$?"; stat -c %a /tmp/f'
	[ "$status" -eq 0 ]
	grep -q 'chmod rc=1' <<<"$output"
	grep -q 'Operation not permitted' <<<"$output"
	grep -q 'Permission denied' <<<"$output"
	grep -q 'rm rc=1' <<<"$output"
	grep -qx 644 <<<"$output"
}

@test "default devices exist and /dev is a fresh tmpfs" {
	run_in -- sh -c 'for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo "$d ok"; done;
		echo x > /dev/null && echo write-null-ok; [ -e /dev/ptmx ] && echo ptmx-ok; ls /dev | grep ^sd | wc -l'
	[ "$status" -eq 0 ]
	for d in null zero full random urandom tty; do
		grep -qx "$d ok" <<<"$output"
	done
	grep -qx write-null-ok <<<"$output"
	grep -qx ptmx-ok <<<"$output"
	[ "${lines[-1]}" = 0 ]
}

@test "devices from linux.devices are created" {
	run_in '.linux.devices = [{path: "/dev/slitnull", type: "c", major: 1, minor: 3, fileMode: 438, uid: 0, gid: 0}]' \
		'.linux.resources.devices = [{allow: false, access: "rwm"}, {allow: true, type: "c", major: 1, minor: 3, access: "rwm"}]' -- \
		sh -c 'stat -c "%t:%T %a" /dev/slitnull; echo hi > /dev/slitnull && echo write-ok'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "1:3 666" ]
	[ "${lines[1]}" = write-ok ]
}

@test "sysctl is applied in the container's namespaces" {
	run_in '.linux.sysctl = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}' -- \
		sh -c 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = 1 ]
	[ "${lines[1]}" = 123456789 ]
	[ "$(cat /proc/sys/kernel/shmmax)" != 123456789 ]
}
