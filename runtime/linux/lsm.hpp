// Linux security modules: AppArmor profiles and SELinux labels a config asks for.
//
// A label the host cannot apply fails create (or exec) with one line naming the field:
// a container that silently runs unconfined is worse than one that does not run.
#pragma once

#include <string>

#include "spec/config.hpp"

namespace sandlock::os {

// As runc decides it: securityfs shows apparmor and the module is enabled.
bool apparmor_enabled();
// An SELinux filesystem is mounted (the kernel runs SELinux).
bool selinux_enabled();

// Refuses process.apparmorProfile / process.selinuxLabel that cannot be applied here.
// `path` is the JSON path of the process (".process", or "" for exec's process.json).
void check_process_labels(const spec::Process& process, const std::string& path);
// Refuses linux.mountLabel (SELinux mount contexts are not implemented).
void check_mount_label(const spec::Linux& linux_cfg);

// Confines the next execve with the profile (aa_change_onexec); nothing when empty.
void apply_apparmor_profile(const std::string& profile);

}  // namespace sandlock::os
