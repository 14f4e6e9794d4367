# Builds a small busybox-static root filesystem for test and demo bundles.
# Sourced by helpers.bash (bats), tests/check.sh and demo.sh; plain bash, no bats needed.

# The busybox-static binary (Debian's busybox-static package installs /bin/busybox).
SANDLOCK_BUSYBOX=${SANDLOCK_BUSYBOX:-/bin/busybox}

# build_busybox_rootfs DIR: creates DIR (which must not exist yet) as a complete rootfs.
build_busybox_rootfs() {
	local dir=$1 applet
	if ! "$SANDLOCK_BUSYBOX" --list-full >/dev/null 2>&1; then
		echo "build_busybox_rootfs: $SANDLOCK_BUSYBOX is missing (apt-get install busybox-static)" >&2
		return 1
	fi
	if file -L "$SANDLOCK_BUSYBOX" 2>/dev/null | grep -q 'dynamically linked'; then
		echo "build_busybox_rootfs: $SANDLOCK_BUSYBOX is not static (install busybox-static)" >&2
		return 1
	fi
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,home/user,var/tmp,run}
	chmod 1777 "$dir/tmp" "$dir/var/tmp"
	cp "$SANDLOCK_BUSYBOX" "$dir/bin/busybox"
	# One symlink per applet at the path busybox itself would install it to.
	while read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		[ -e "$dir/$applet" ] || ln -s /bin/busybox "$dir/$applet"
	done < <("$SANDLOCK_BUSYBOX" --list-full)
	cat >"$dir/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		user:x:1000:1000:user:/home/user:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$dir/etc/group" <<-'EOF'
		root:x:0:
		wheel:x:10:root
		users:x:100:
		user:x:1000:
		nogroup:x:65534:
	EOF
	cat >"$dir/etc/hosts" <<-'EOF'
		127.0.0.1	localhost
		::1	localhost ip6-localhost ip6-loopback
	EOF
	echo sandlock-test >"$dir/etc/hostname"
	chown 1000:1000 "$dir/home/user"
}

# ensure_busybox_rootfs DIR: builds DIR once; concurrent or repeated callers reuse it.
ensure_busybox_rootfs() {
	local dir=$1 tmp
	[ -e "$dir/.sandlock-rootfs-complete" ] && return 0
	mkdir -p "$(dirname "$dir")"
	# A half-built leftover of an interrupted run is useless.
	[ -e "$dir" ] && rm -rf --one-file-system "$dir"
	tmp=$(mktemp -d "$dir.building.XXXXXX") || return 1
	rmdir "$tmp"
	build_busybox_rootfs "$tmp" || { rm -rf "$tmp"; return 1; }
	touch "$tmp/.sandlock-rootfs-complete"
	# Another builder may have won the race; then ours is dropped.
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		rm -rf "$tmp"
		[ -e "$dir/.sandlock-rootfs-complete" ] || return 1
	fi
}
