// The egress shim process (`sandlock-runc shim <state dir>`, or sandlock-shim): it owns
// the container's seccomp listeners and kernel maps, runs a Supervisor over them, serves
// shim.sock (control.hpp) and writes audit.log. client.hpp starts and stops it and says
// what it enforces; launch.hpp is the contract between the two.
#pragma once

#include <string>

#include "runtime/egress/policy.hpp"
#include "runtime/shim/supervisor.hpp"

namespace sandlock::shim {

// The hidden `shim` subcommand: fd 3 is the first listener. Returns the exit code.
int run_shim_main(const std::string& state_dir);

// One audit.log line (with the trailing newline) and whether a mode records a decision.
std::string audit_line(const Decision& d, const std::string& time);
bool audit_records(egress::Audit mode, bool allowed);

}  // namespace sandlock::shim
