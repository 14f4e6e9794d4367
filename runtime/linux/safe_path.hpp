// Path resolution inside a container's rootfs that never leaves it.
//
// Every lookup goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): the kernel
// treats root_fd as "/" for absolute symlinks and "..", so a destination such as
// "/etc/x -> ../../../host" resolves to <rootfs>/host. Missing components are created
// one at a time relative to an fd of their (already resolved) parent, and the caller
// mounts onto proc_fd_path(fd) of the O_PATH fd it gets back, so nothing between the
// check and the mount can be swapped for a symlink that points out.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/util/fd.hpp"

namespace sandlock::os {

// Splits "/a//b/./c/" into {"a", "b", "c"}; ".." is kept (the kernel resolves it in-root).
std::vector<std::string> split_path(const std::string& path);

// Lexically cleaned absolute form: "a/../b//c/" -> "/b/c"; never goes above "/".
std::string clean_path(const std::string& path);

// Opens `path` (relative to root_fd, absolute or not) with openat2 in-root resolution.
// `flags` are open(2) flags; O_CLOEXEC is always added. Throws SystemError naming `path`.
UniqueFd open_in_root(int root_fd, const std::string& path, int flags);

// Like open_in_root but returns an invalid fd with errno set instead of throwing.
UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags);

// Creates every missing directory of `path` inside the root (mode before umask),
// following existing symlinks in-root, including dangling ones (the link target is
// created, as runc does). Returns an O_PATH fd of the final directory.
UniqueFd mkdir_all_in_root(int root_fd, const std::string& path, mode_t mode = 0755);

// Makes sure `path` exists inside the root as a non-directory (creates an empty regular
// file, and missing parents, when absent). Returns an O_PATH fd of it.
UniqueFd create_file_in_root(int root_fd, const std::string& path, mode_t mode = 0644);

// "/proc/self/fd/N": a name for the object behind fd that mount(2) accepts.
std::string proc_fd_path(int fd);

}  // namespace sandlock::os
