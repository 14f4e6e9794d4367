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
cleanup() {
	"$RUNTIME" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
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
