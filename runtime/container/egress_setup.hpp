// Egress confinement as the container lifecycle sees it: what `create`
// prepares (policy, /etc/hosts), what init and exec'd processes install
// (Landlock, the notify filter), and what the parent takes from them.
#pragma once

#include <optional>
#include <string>

#include "runtime/container/sync.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/linux/landlock.hpp"
#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

struct EgressPlan {
    egress::ResolvedPolicy policy;
    os::LandlockNetRules landlock;
};

// At create, in the runtime: nullopt when the bundle has no io.sandlock.network.*
// key. Resolves host names (an unresolvable one fails create), writes
// <state_dir>/hosts (the container's own /etc/hosts plus the resolved names)
// and bind-mounts it over /etc/hosts; the bundle and rootfs are not modified.
std::optional<EgressPlan> prepare_egress(spec::Config& cfg, const egress::Policy& policy,
                                         const std::string& bundle,
                                         const std::string& rootfs, const std::string& state_dir);

// For exec: the running container's plan (from the shim's egress.json).
std::optional<EgressPlan> load_egress_plan(const spec::Config& cfg, const std::string& state_dir);

// In init or an exec'd process, single-threaded: Landlock, then the notify
// filter, whose fd number goes to the parent (EgressListener).
void confine_egress(const EgressPlan& plan, SyncSocket& sock);

}  // namespace sandlock::container
