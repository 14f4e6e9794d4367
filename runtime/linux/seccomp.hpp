// The OCI `linux.seccomp` layer: validation, a libseccomp program built from
// the profile, and the loaders (libseccomp's, or our own seccomp(2) call with
// the BPF libseccomp generated, which the egress filter reuses).
//
// Semantics follow runc where callers can see the difference:
// - unknown syscall names are skipped (profiles list syscalls newer than the
//   kernel or libseccomp); unknown actions, operators, arches, flags are errors;
// - ERRNO and TRACE without errnoRet return EPERM;
// - a rule whose action equals the default action is dropped;
// - args of one syscall entry form one rule (AND), unless two args share an
//   index: then each arg becomes its own rule (OR);
// - unless the default action is permissive (ALLOW, LOG, TRACE), syscalls
//   numbered above the highest one the profile names return ENOSYS, so that
//   libc falls back from syscalls newer than the profile (runc's patchbpf);
// - SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored;
// - no_new_privs is never set here: the caller orders it.
#pragma once

#include <linux/filter.h>
#include <seccomp.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::os {

// Names this runtime accepts (for `features`), sorted.
std::vector<std::string> seccomp_known_actions();
std::vector<std::string> seccomp_known_operators();
std::vector<std::string> seccomp_known_architectures();
std::vector<std::string> seccomp_known_flags();
// The known flags that this kernel can apply.
std::vector<std::string> seccomp_supported_flags();

// runc treats a profile with neither defaultAction nor syscalls as "no seccomp".
bool seccomp_enabled(const spec::Seccomp& s);
// True when some syscall entry uses SCMP_ACT_NOTIFY: the load returns a listener
// fd that must go to listenerPath.
bool seccomp_uses_notify(const spec::Seccomp& s);

// Checks the profile at `create`, before any fork. Errors name the JSON path:
//   .linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"
// Unknown syscall names are not errors (see above). Also builds the program
// once, so libseccomp's own refusals surface here and not in the container.
void validate_seccomp(const spec::Seccomp& s);

// --- the raw loader, shared with the egress filter --------------------------

// libseccomp's BPF for ctx (seccomp_export_bpf through a memfd).
std::vector<sock_filter> export_bpf(scmp_filter_ctx ctx);
// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) on the calling thread. Returns the
// listener when flags has SECCOMP_FILTER_FLAG_NEW_LISTENER, else an invalid fd.
// Needs no_new_privs or CAP_SYS_ADMIN.
UniqueFd install_bpf(const std::vector<sock_filter>& prog, unsigned flags);
// Whether this kernel accepts a SECCOMP_FILTER_FLAG_* value (probed without
// installing anything). WAIT_KILLABLE_RECV is probed together with NEW_LISTENER.
bool kernel_supports_filter_flag(unsigned flag);

// --- the OCI program ---------------------------------------------------------

class SeccompProgram {
public:
    enum class Loader {
        Raw,         // export_bpf + ENOSYS stub + install_bpf (runc's way; the default)
        Libseccomp,  // seccomp_load: no ENOSYS stub, no WAIT_KILLABLE_RECV
    };

    // Throws sandlock::Error naming the JSON path for an invalid profile.
    explicit SeccompProgram(const spec::Seccomp& s);
    ~SeccompProgram();
    SeccompProgram(SeccompProgram&& other) noexcept;
    SeccompProgram& operator=(SeccompProgram&& other) noexcept;
    SeccompProgram(const SeccompProgram&) = delete;
    SeccompProgram& operator=(const SeccompProgram&) = delete;

    scmp_filter_ctx ctx() const noexcept { return ctx_; }
    bool uses_notify() const noexcept { return uses_notify_; }
    // Syscall names libseccomp does not know, skipped (log them at debug level).
    const std::vector<std::string>& ignored_syscalls() const noexcept { return ignored_; }
    // SECCOMP_FILTER_FLAG_* for the raw load; WAIT_KILLABLE_RECV only if the kernel has it.
    unsigned filter_flags() const;
    // The ENOSYS stub (empty when the default action is permissive or ENOSYS).
    const std::vector<sock_filter>& enosys_stub() const noexcept { return stub_; }
    // The full program the raw loader installs: stub + libseccomp's BPF.
    std::vector<sock_filter> bpf() const;
    // libseccomp's pseudo filter code, for tests and debugging.
    std::string pfc() const;

    // Installs the filter on the calling thread; returns the notify listener when
    // the profile uses SCMP_ACT_NOTIFY, else an invalid fd.
    UniqueFd load(Loader loader = Loader::Raw) const;

private:
    scmp_filter_ctx ctx_ = nullptr;
    bool uses_notify_ = false;
    bool wait_killable_ = false;
    bool log_ = false;
    bool spec_allow_ = false;
    std::vector<std::string> ignored_;
    std::vector<sock_filter> stub_;
};

// Builds the program and loads it (Loader::Raw).
UniqueFd install_seccomp(const spec::Seccomp& s);

// --- listenerPath: runc's seccomp agent protocol --------------------------

// specs-go ContainerProcessState: {"ociVersion","fds":["seccompFd"],"pid",
// "metadata" (omitted when empty),"state":{ociVersion,id,status,pid,bundle,annotations}}.
// Only the OCI state fields of `state` are copied.
nlohmann::json container_process_state(const nlohmann::json& state, int pid,
                                       const std::string& metadata);
// Connects a SOCK_STREAM unix socket to listener_path and sends the JSON with fd
// attached (SCM_RIGHTS) in one sendmsg. Errors, as runc words them:
//   failed to connect with seccomp agent specified in the seccomp profile: connect P: ...
//   cannot send seccomp fd to P: ...
void send_listener_fd(const std::string& listener_path, const std::string& state_json_with_fds,
                      int fd);

}  // namespace sandlock::os
