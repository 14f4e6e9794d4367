// The container's /dev: device nodes, the standard symlinks, /dev/ptmx, the console.
#pragma once

#include <string>
#include <vector>

#include "spec/config.hpp"

namespace sandlock::os {

// null, zero, full, random, urandom, tty: what every container gets (as runc).
std::vector<spec::Device> default_devices();

// False when a bind mount provides /dev: the container then uses it untouched.
bool needs_dev_setup(const spec::Config& cfg);

// Creates one node inside the root: mknod, or (in a user namespace, or when mknod is
// refused) a bind of the host's node at the same path onto an empty file.
void create_device(int root_fd, const spec::Device& dev, bool bind_from_host);

// Default nodes plus linux.devices (an entry with the same path replaces the
// default), /dev/fd, /dev/std{in,out,err}, /dev/core, and /dev/ptmx -> pts/ptmx.
void setup_dev(int root_fd, const spec::Config& cfg, bool user_ns);

// After pivot: binds the console pty slave (e.g. "/dev/pts/0") onto /dev/console.
void mount_console(const std::string& slave_path);

}  // namespace sandlock::os
