// The container's filesystem view, built by init in its new mount namespace.
//
// Call order in init (root in its namespaces, possibly in a user namespace):
//   prepare_rootfs()  propagation of /, rootfs bind, config mounts, /dev, process.cwd
//   [createRuntime/prestart hooks by the parent; createContainer hooks here]
//   enter_rootfs()    pivot_root (or MS_MOVE + chroot), chdir("/")
//   [console: open /dev/ptmx (the container's devpts), mount_console(); hostname; sysctl]
//   finish_rootfs()   rootfsPropagation on "/", readonlyPaths, maskedPaths, /dev and root ro
#pragma once

#include <string>

#include "runtime/linux/mounts.hpp"
#include "spec/config.hpp"

namespace sandlock::os {

// Checks what can be checked before anything is forked; errors name the JSON path,
// e.g. `.mounts[3].options[1]: idmapped mounts are not supported`.
void validate_mounts(const spec::Config& cfg);

void prepare_rootfs(const spec::Config& cfg, const std::string& rootfs_abs, const RootfsOptions& opt);

// with no_pivot: MS_MOVE the rootfs onto / and chroot (for ramdisk roots).
void enter_rootfs(const std::string& rootfs_abs, bool no_pivot);
// Instead of the three steps, for a container in the runtime's own mount namespace:
// process.cwd is created and the rootfs entered with chroot, which changes no mount
// (create refused every field that would need one; /dev is the rootfs's own).
void chroot_into(const spec::Config& cfg, const std::string& rootfs_abs);

void finish_rootfs(const spec::Config& cfg);

// Pieces of finish_rootfs(), for callers that need to interleave work between them.
void make_path_readonly(const std::string& path);  // missing paths are ignored
void mask_path(const std::string& path);           // missing paths are ignored

}  // namespace sandlock::os
