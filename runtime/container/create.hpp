// `create`: build the container up to the point where init waits on exec.fifo.
#pragma once

#include <string>

#include "runtime/config/operator_config.hpp"
#include "runtime/container/state.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::os {
class Kernel;  // runtime/linux/kernel.hpp
Kernel& real_kernel();
}  // namespace sandlock::os

namespace sandlock::container {

struct CreateOptions {
    std::string id;
    std::string bundle;
    std::string pid_file;
    std::string console_socket;
    bool no_pivot = false;
    bool no_new_keyring = false;
    bool systemd_cgroup = false;
    // An egress policy may run without its kernel layer (GlobalOptions).
    bool supervisor_mode_allowed = false;
    // The operator's default policy, profiles and ceiling (sandlock-runc-config(5)).
    config::OperatorConfig operator_config;
    int preserve_fds = 0;
    // Foreground `run` without --console-socket proxies the pty itself.
    bool detached = true;
};

struct CreateResult {
    ContainerState state;
    UniqueFd console_master;  // set only for a foreground terminal
};

// Every process and kernel object is started and made through `kernel` (the seam that
// tests replace: tests/create_orchestration_tests.cpp).
CreateResult create_container(const StateStore& store, const CreateOptions& opts,
                              os::Kernel& kernel = os::real_kernel());

// Config checks that need no process: done before anything is created.
void validate_for_create(const spec::Config& cfg, const egress::Policy& policy);

// The OCI state JSON handed to hooks.
std::string hook_state_json(const ContainerState& st, Status status);

void write_pid_file(const std::string& path, pid_t pid);

}  // namespace sandlock::container
