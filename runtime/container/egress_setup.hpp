// Egress confinement as the container lifecycle sees it: what `create`
// prepares (policy, /etc/hosts), what init and exec'd processes install
// (Landlock, the notify filter), and what the parent takes from them.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "runtime/cgroups/manager.hpp"
#include "runtime/container/shim_cgroup.hpp"
#include "runtime/container/state.hpp"
#include "runtime/container/sync.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/linux/landlock.hpp"
#include "runtime/shim/client.hpp"
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
std::optional<EgressPlan> prepare_egress(spec::Config& cfg, egress::Policy policy,
                                         const std::string& bundle,
                                         const std::string& rootfs, const std::string& state_dir);

// The /etc/hosts the container sees without our names: the bundle's mount of it (podman
// binds its own), else the rootfs's file, read inside the rootfs (a symlinked /etc/hosts
// cannot make us read a host file). "" when there is none.
std::string container_hosts(spec::Config& cfg, const std::string& bundle, const std::string& rootfs);

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

// The one owner of a container's egress enforcement while `create` builds it: the plan
// (the resolved policy, the Landlock rules, the container's /etc/hosts: prepare_egress),
// the kernel layer (on a thread meanwhile: its maps made and filled, attached to the
// container's cgroup2 directory once that exists, then registered in the shared tables),
// and the shim (launched once stage 1 is forked, held before it does anything until it
// is in its own cgroup, handed init's listener and the maps at the end). Every step is a
// no-op for a bundle without a policy. Until commit(), the destructor (or abandon(),
// which the container's cgroup removal calls first) stops the shim and removes its
// cgroup, whatever step failed.
//
// The steps, in create's order: the constructor (the plan), cgroup_made (the container's
// cgroup exists), start (stage 1 is forked: the thread that launches the shim and makes
// the maps), attach (after stage 1's cgroup step: the mode init is told), place_shim
// (while init sets the container up), hand_over (init is ready: the maps are registered
// by then, or create fails).
class EgressEnforcement {
public:
    // Makes the shim's cgroup next to the container's (shim_cgroup.hpp), with the limits;
    // nullptr when the container has none (rootless without a delegated cgroup).
    using ShimCgroupFactory = std::function<std::unique_ptr<cgroups::Manager>(const ShimLimits&)>;

    // The plan; nothing when the bundle has no policy.
    EgressEnforcement(spec::Config& cfg, egress::Policy policy, const std::string& bundle,
                      const std::string& rootfs, const std::string& state_dir);
    EgressEnforcement(const EgressEnforcement&) = delete;
    EgressEnforcement& operator=(const EgressEnforcement&) = delete;
    ~EgressEnforcement();

    bool active() const { return plan_.has_value(); }
    // Starts the thread that launches the shim (held until place_shim) and then makes,
    // attaches and registers the kernel layer's maps. Once.
    void start();
    // For init, which confines itself by it (Landlock, the notify filter) and records
    // the mode it is told in its own copy.
    EgressPlan* plan() { return plan_ ? &*plan_ : nullptr; }

    // The container's cgroup exists: the maps' thread attaches the programs and registers
    // the maps under its id. Once; attach() calls it if create has not (a cgroup that
    // systemd makes).
    void cgroup_made(const std::map<std::string, std::string>& cgroup_dirs);
    // The shim's own cgroup, made after the container's (so that the parents they share
    // are the container's to remove); the shim (waited for, if its launch is still under
    // way) is put there, then let go. Once; throws if the launch failed.
    void place_shim(const ShimCgroupFactory& make_cgroup, ContainerState& st);
    // The kernel layer's programs attached to the container's cgroup2 directory (waits
    // for the maps' thread to have done it, not for the registration), or the supervisor
    // alone when they cannot be and that is allowed (else throws why); recorded in st.
    egress::Enforcement attach(const std::map<std::string, std::string>& cgroup_dirs, bool supervisor_mode_allowed,
                               ContainerState& st);
    // The shim gets init's listener and (kernel mode) the maps, once they are registered
    // (until then every verdict of the programs is a denial; throws if they cannot be);
    // recorded in st.
    void hand_over(UniqueFd listener, ContainerState& st);
    // The container exists: the shim and its cgroup are its to keep.
    void commit() { committed_ = true; }
    // Stops the shim and removes its cgroup (idempotent); create's undo.
    void abandon();

    // A live change of a running container's policy (`egress ID --allow/--revoke`). Once
    // create has committed, the enforcement is the shim's to keep: it owns the kernel's
    // maps, its own verdicts and the container's /etc/hosts, and applies the change to
    // all three (shim/process.cpp, egress/live_change.hpp). init names the container's
    // init (its mount namespace gets the new /etc/hosts). Throws sandlock::Error with the
    // shim's one-line reason; a dead shim fails closed (the policy cannot change).
    static nlohmann::json update(const std::string& state_dir, const proc::Identity& init,
                                 const std::vector<std::string>& allow, const std::vector<std::string>& revoke);

private:
    struct PreparedMaps {
        std::optional<egress::KernelLayer> layer;
        std::string error;
    };
    // The maps' thread: the layer made and filled, its programs attached, the shim
    // launched and the maps registered (an error makes the layer unusable: hand_over()
    // then reports it).
    PreparedMaps prepare_kernel_layer(std::future<std::string>& cgroup2_dir, std::promise<std::string>& attached,
                                      std::promise<shim::PendingShim>& launched);
    // Once the cgroup exists: the programs attached ("" into `attached`, else why not).
    // The cgroup2 directory, or "" when nothing was attached.
    static std::string attach_once_cgroup_exists(PreparedMaps& prepared, std::future<std::string>& cgroup2_dir,
                                                 std::promise<std::string>& attached);
    void tell_cgroup2_dir(const egress::KernelLayerTarget& target);
    // Kernel mode: the registered layer from the maps' thread (throws why not).
    void take_registered_layer();
    // The shim from the thread's launch, once (throws if it failed); false before start().
    bool take_launched_shim();

    std::optional<EgressPlan> plan_;
    std::string state_dir_;
    ShimLimits shim_limits_;
    // The container's cgroup2 directory for the maps' thread ("" when the kernel layer has
    // none); abandoned (a broken promise) if create fails before it exists.
    std::promise<std::string> cgroup2_dir_;
    bool cgroup_told_ = false;
    std::future<shim::PendingShim> launched_;
    std::future<std::string> attached_;  // "" once the programs are attached, else why not
    std::future<PreparedMaps> maps_;     // once the maps are registered (or cannot be)
    std::thread maps_thread_;
    bool kernel_mode_ = false;
    std::optional<egress::KernelLayer> kernel_layer_;
    std::optional<shim::PendingShim> shim_;
    std::unique_ptr<cgroups::Manager> shim_cgroup_;
    bool committed_ = false;
};

}  // namespace sandlock::container
