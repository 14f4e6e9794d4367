// Egress confinement as the container lifecycle sees it: what `create`
// prepares (policy, /etc/hosts), what init and exec'd processes install
// (Landlock, the notify filter), and what the parent takes from them.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "runtime/container/sync.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/linux/landlock.hpp"
#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

struct EgressPlan {
    egress::ResolvedPolicy policy;
    os::LandlockNetRules landlock;
    // Kernel: the cgroup programs judge sends, the notify filter takes connect only.
    // Until create knows (its EgressMode message), the filter that notifies every call.
    egress::Enforcement enforcement = egress::Enforcement::Supervisor;
};

// At create, in the runtime: nullopt when the bundle has no io.sandlock.network.*
// key. Resolves host names (an unresolvable one fails create), writes
// <state_dir>/hosts (the container's own /etc/hosts plus the resolved names)
// and bind-mounts it over /etc/hosts; the bundle and rootfs are not modified.
std::optional<EgressPlan> prepare_egress(spec::Config& cfg, const egress::Policy& policy,
                                         const std::string& bundle,
                                         const std::string& rootfs, const std::string& state_dir);

// Under a policy, no process may hold a capability that goes around every socket-level
// check: CAP_NET_ADMIN (routes, NAT, tunnels, tun devices), CAP_SYS_ADMIN (leaving the
// cgroup the kernel programs hang on, mounts, namespaces), CAP_SYS_MODULE (kernel code),
// CAP_BPF (BPF programs), in any set (the inheritable one included: a file's inheritable
// capability makes it permitted across execve). Throws one line naming the set, the capability and `source`
// (the annotation), e.g. `.process.capabilities.bounding: CAP_NET_ADMIN cannot be
// granted under io.sandlock.network.allow: it can re-route or NAT around the egress policy`.
void refuse_egress_bypassing_capabilities(const spec::Process& process, const std::string& source);
// Kernel mode: the cgroup programs judge sockets by the cgroup that made them, so an IP
// socket handed to the container's process (stdio when `stdio`, preserved and LISTEN_FDS
// fds) could connect or send unjudged once the shim let a call through. Throws one line
// naming the fd and `source`. (Supervisor mode performs every call on the shim's own
// duplicate: such sockets are judged there.)
void refuse_inherited_ip_sockets(int passed_fds, bool stdio, const std::string& source);
// The io.sandlock.network.* annotation(s) a policy comes from, for messages.
std::string policy_source(const std::map<std::string, std::string>& annotations);

// For exec: the running container's plan (from the shim's egress.json), enforced as the
// state record's egress_enforcement says.
std::optional<EgressPlan> load_egress_plan(const spec::Config& cfg, const std::string& state_dir,
                                            const std::string& enforcement);

// In init or an exec'd process, single-threaded: Landlock, then the notify
// filter, whose fd number goes to the parent (EgressListener).
void confine_egress(const EgressPlan& plan, SyncSocket& sock);

}  // namespace sandlock::container
