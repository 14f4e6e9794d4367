#!/usr/bin/env bats
# The manual matches the program: a page per subcommand listing every flag --help
# shows, and sandlock-runc(8) naming every subcommand. Pages come from man/generate.sh.

REPO=$(cd "$(dirname "$BATS_TEST_FILENAME")/.." && pwd)
BIN=${RUNTIME:-${BUILD:-$REPO/build}/sandlock-runc}

subcommands() {
	"$BIN" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {sub(/,.*/, "", $1); print $1}' |
		grep -vx help
}

@test "every subcommand has a man page that lists every flag of its --help" {
	[[ "$(basename "$BIN")" == sandlock-runc* ]] || skip "sandlock-runc's own manual"
	local cmd flag page missing=()
	for cmd in $(subcommands); do
		page=$REPO/man/sandlock-runc-$cmd.8
		[ -f "$page" ] || { missing+=("$cmd: no page"); continue; }
		for flag in $("$BIN" "$cmd" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
			grep -qF -- "$(sed 's/-/\\-/g' <<<"$flag")" "$page" || missing+=("$cmd: $flag")
		done
	done
	printf '%s\n' "${missing[@]}"
	[ ${#missing[@]} -eq 0 ]
}

@test "sandlock-runc(8) describes every subcommand" {
	[[ "$(basename "$BIN")" == sandlock-runc* ]] || skip "sandlock-runc's own manual"
	local cmd missing=()
	for cmd in $(subcommands); do
		grep -qE "^\.B $cmd( |$)|^\.B $cmd \\\\f|\\\\fB$cmd " "$REPO/man/sandlock-runc.8" || missing+=("$cmd")
	done
	printf 'not in sandlock-runc.8: %s\n' "${missing[@]}"
	[ ${#missing[@]} -eq 0 ]
}
