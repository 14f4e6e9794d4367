#!/usr/bin/env bash
# `make demo`: builds a busybox bundle and walks one container through its life with
# sandlock-runc (or any runc-compatible RUNTIME), printing each command as it runs it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$(dirname "$HERE")/build}
RUNTIME=${RUNTIME:-$BUILD/sandlock-runc}
# shellcheck source=integration/rootfs.bash
source "$HERE/rootfs.bash"

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: containers need root here; run: sudo make demo" >&2
	exit 1
fi
[ -x "$RUNTIME" ] || { echo "demo: $RUNTIME not found (run make)" >&2; exit 1; }
command -v jq >/dev/null || { echo "demo: jq is needed (make deps)" >&2; exit 1; }

work=$(mktemp -d /tmp/sandlock-demo.XXXXXX)
root=$work/state
id=demo-$$
netns=sandlock-demo-$$
veth=sdemo$$
listener_pid=
cleanup() {
	"$RUNTIME" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	"$RUNTIME" --root "$root" delete --force "$id-egress" >/dev/null 2>&1 || true
	[ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
	ip link delete "$veth" 2>/dev/null
	ip netns delete "$netns" 2>/dev/null
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
rt() {
	say "$(basename "$RUNTIME") --root \$STATE $*"
	"$RUNTIME" --root "$root" "$@"
}

echo "bundle: $work/bundle   state (--root): \$STATE=$root"
mkdir -p "$work/bundle"
build_busybox_rootfs "$work/bundle/rootfs"
cd "$work/bundle"
say "$(basename "$RUNTIME") spec"
"$RUNTIME" spec
jq '.process.terminal = false
	| .hostname = "sandlock-demo"
	| .process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$, $(id)\"; sleep 2"]' \
	config.json >config.json.new
mv config.json.new config.json

rt --version
rt create --bundle "$work/bundle" --pid-file "$work/pid" "$id" </dev/null
echo "init pid on the host: $(cat "$work/pid")"
rt state "$id"
rt start "$id"
rt list
rt ps "$id"
sleep 2.5
rt state "$id"
rt delete "$id"

say "# and in one step, in the foreground, with the exit code of the process"
jq '.process.args = ["sh", "-c", "echo bye; exit 3"]' config.json >config.json.new
mv config.json.new config.json
set +e
rt run --bundle "$work/bundle" "$id" </dev/null
echo "exit status: $?"
set -e

say "# egress: a test network (10.213.250.0/24 on this machine only), a listener on"
say "# 10.213.250.1 and 10.213.250.3 port 8080, and a container allowed to reach only the first"
ip netns add "$netns"
ip link add "$veth" type veth peer name "${veth}c"
ip link set "${veth}c" netns "$netns"
ip addr add 10.213.250.1/24 dev "$veth"
ip addr add 10.213.250.3/24 dev "$veth"
ip link set "$veth" up
ip -n "$netns" addr add 10.213.250.2/24 dev "${veth}c"
ip -n "$netns" link set "${veth}c" up
ip -n "$netns" link set lo up
listener_pid=$("$BUILD/helpers/egress_listener" tcp 10.213.250.1,10.213.250.3 8080 "$work/received" 120)

jq --arg ns "/var/run/netns/$netns" '
	.annotations["io.sandlock.network.allow"] = "10.213.250.1:8080"
	| .annotations["io.sandlock.audit"] = "all"
	| .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
	| .process.args = ["sh", "-c", "for h in 10.213.250.1 10.213.250.3; do if echo hello-from-the-container | nc -w 2 $h 8080; then echo \"connect $h:8080: sent\"; else echo \"connect $h:8080: refused\"; fi; done"]' \
	config.json >config.json.new
mv config.json.new config.json
say "jq .annotations config.json"
jq .annotations config.json
rt run --keep --bundle "$work/bundle" "$id-egress" </dev/null
rt egress "$id-egress"
sleep 0.5
say "# what the listener received (only the allowed destination):"
cat "$work/received" || true
rt delete "$id-egress"
