#!/usr/bin/env bash
# Writes man/sandlock-runc-<command>.8 for every subcommand from the binary's own
# --help, so the pages list exactly the flags the program accepts. Run after a change
# to the command line: `man/generate.sh build/sandlock-runc`; integration/docs.bats
# fails when a page and --help disagree.
set -euo pipefail
bin=${1:-build/sandlock-runc}
dir=$(cd "$(dirname "$0")" && pwd)

commands() {
	"$bin" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {sub(/,.*/, "", $1); print $1}' |
		grep -vx help
}

roff_escape() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/" -e 's/-/\\-/g'; }

for cmd in $(commands); do
	help=$("$bin" "$cmd" --help)
	summary=$(head -n 1 <<<"$help")
	usage=$(grep -m1 '^Usage:' <<<"$help" | sed 's/^Usage: //')
	# The subcommand's footer (text after its last section), if it has one.
	footer=$(awk '/^(Positionals|Options|Subcommands):$/ {sec = 1; next}
		sec && /^$/ {sec = 0; after = 1; next}
		!sec && after && NF {print}' <<<"$help")
	{
		echo ".TH SANDLOCK-RUNC-${cmd^^} 8 \"$(date +%B\ %Y)\" \"sandlock-runc\" \"System Administration\""
		echo ".SH NAME"
		echo "sandlock-runc-$cmd \\- $(roff_escape <<<"$summary")"
		echo ".SH SYNOPSIS"
		echo ".B $(roff_escape <<<"$usage")"
		if [ -n "$footer" ]; then
			echo ".SH DESCRIPTION"
			roff_escape <<<"$footer" | sed '1!s/^/.PP\n/'
		fi
		echo ".SH OPTIONS"
		echo ".nf"
		sed -n '/^Options:/,/^$/p' <<<"$help" | sed 1d | roff_escape
		if grep -q '^Positionals:' <<<"$help"; then
			echo ".fi"
			echo ".SH ARGUMENTS"
			echo ".nf"
			sed -n '/^Positionals:/,/^$/p' <<<"$help" | sed 1d | roff_escape
		fi
		echo ".fi"
		echo ".SH SEE ALSO"
		echo ".BR sandlock-runc (8)"
	} >"$dir/sandlock-runc-$cmd.8"
done
