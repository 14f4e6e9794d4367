// The kernel layer of egress enforcement: the cgroup programs of egress/bpf/egress.bpf.c
// on the container's cgroup2 directory, over maps that hold the resolved policy
// (egress/bpf/egress_maps.h). The programs are fixed code, loaded with libbpf from the
// object embedded in the binary (a `bpftool gen skeleton` header); only the maps depend on
// the policy, so load time does not grow with the number of rules.
//
// Where it runs: the programs are loaded once per machine (per build) and pinned under
// /sys/fs/bpf/sandlock-runc/<build>/ with their outer maps; the first create of a build
// loads them, the others open the pins. A container's policy is its own inner maps (LPM
// trie, ports, counters, ring buffer), made and filled by its shim, registered in the
// outer maps under the container cgroup's id; the programs find that id in a cgroup
// storage of the cgroup they are attached to. The shim keeps the inner maps' fds for as
// long as the container lives (counters, audit events, live changes) and removes its
// entries when it stops; `delete` removes them too (forget_kernel_policy) in case it died.
//
// The programs judge by the socket's cgroup, in the caller's thread, on the kernel's copy
// of the address: a sockaddr rewritten or an fd swapped after the shim's decision gains
// nothing. A denied call fails with EPERM. What each program does is in egress.bpf.c.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/egress/policy.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::egress {

// One line of the policy as `egress ID` lists it: the unit the kernel counts.
struct RuleRow {
    Protocol protocol;
    std::optional<Cidr> where;  // nullopt: any IP
    bool all_ports = false;
    std::vector<std::uint16_t> ports;
    bool operator==(const RuleRow&) const = default;
};
// The rows of a policy (in allow mode the allowed destinations, in deny mode the denied
// ones), in the order of the kernel's counter slots: per protocol (TCP, UDP, ICMP) the
// any-IP rules, the addresses, then the networks.
std::vector<RuleRow> rule_rows(const ResolvedPolicy& policy);

// How often the programs reached each verdict.
struct KernelCounters {
    struct Pair {
        std::uint64_t allowed = 0;
        std::uint64_t denied = 0;
    };
    Pair no_rule;     // no rule matched (allow mode: denied; deny mode: allowed)
    Pair loopback;    // loopback destinations
    Pair open;        // open mode
    Pair no_address;  // datagrams on a connected socket, without an address (allowed)
    std::uint64_t refused_sockets = 0;  // socket() of a protocol the policy cannot judge
    std::uint64_t routed_packets = 0;   // packets dropped for IPv4 options / an IPv6 routing header
    std::uint64_t lost_events = 0;      // audit events the ring buffer had no room for
    std::vector<Pair> rules;            // one per rule_rows() entry of the current policy
    Pair revoked_rules;                 // verdicts of rules a live change removed since

    std::uint64_t allowed() const;  // every allowed verdict
    std::uint64_t denied() const;   // every denied verdict, refused sockets and dropped packets
};

// One audited decision, from the ring buffer.
struct KernelEvent {
    enum class Hook : std::uint8_t { Connect, Sendmsg, Packet };
    Hook hook;
    pid_t pid;  // 0 for packets
    Protocol protocol;
    IpAddr destination;
    std::uint16_t port;
    bool allowed;
    std::optional<std::size_t> rule;  // index into rule_rows(), when a rule decided
    Reason reason;
};
const char* to_string(KernelEvent::Hook h);  // "connect", "sendmsg", "packet"

class KernelLayer {
public:
    // Loads the programs, makes the maps and fills them with the policy. Throws
    // sandlock::Error("egress: ...") with the verifier's last line when the kernel refuses
    // a program, or when the policy has more entries than the maps hold.
    explicit KernelLayer(const ResolvedPolicy& policy);
    ~KernelLayer();
    KernelLayer(KernelLayer&&) noexcept;
    KernelLayer& operator=(KernelLayer&&) noexcept;

    // register_for() (unless done) and attach_programs(): from here the policy holds.
    void attach(const std::string& cgroup_dir);
    // Registers the container's maps under the cgroup's id in the shared tables. The kernel
    // waits for an RCU grace period after every update of a map of maps (five here, 0.2-2
    // ms each on this machine), so create does this on its maps' thread, off its path.
    // Once; throws sandlock::Error, nothing registered.
    void register_for(const std::string& cgroup_dir);
    // Attaches the seven programs to the cgroup2 directory with flags 0 (no program may be
    // attached below it) and writes the cgroup's id into their storage. Before or after
    // register_for(), for the same cgroup: until both are done every verdict is a denial
    // (the programs find no maps, or no programs run), so create can tell init the mode
    // before the registration's kernel waits are over, and waits for them before the
    // container can start. All or nothing: on a failure the programs attached by this
    // call are detached again, the maps' entries removed, and sandlock::Error is thrown.
    void attach_programs(const std::string& cgroup_dir);

    // What create hands the shim with the container's first listener (once attached and
    // registered): the
    // container's id in the programs' tables, its five maps (addresses, prefixes, ports,
    // counters, events) and then the six tables every container shares (policy_ref and the
    // outer addresses, prefixes, ports, counters and events maps), which a live change
    // writes. The tables travel as fds rather than being opened from bpffs by the shim:
    // without bpffs they exist only as create's fds. Once the shim has them, create calls
    // handed_over() so that its copy no longer removes the container's entries when it goes.
    struct Handover {
        std::uint64_t id = 0;
        std::vector<int> fds;
    };
    static constexpr std::size_t kHandoverFds = 11;
    Handover handover() const;
    void handed_over();
    // The shim's side: a layer over maps create made and attached (checked to be maps of
    // the expected types). It removes the container's entries when it goes.
    static KernelLayer adopt(const ResolvedPolicy& policy, std::uint64_t id, std::vector<UniqueFd> maps);

    // The shim's side of a live change: the container's policy becomes `next`, for every
    // process of the container at its next call. New maps are filled and registered
    // under a new version of the container's id, then one update of the cgroup's storage
    // switches every program to them; the replaced version stays registered until the
    // next replace (a program that read the old id just before the switch still finds its
    // maps). Counters carry over rule by rule. Throws sandlock::Error, the old policy in
    // force.
    void replace(const ResolvedPolicy& next);

    // The current version of the policy (0: create's; each replace() adds one).
    std::uint64_t version() const;

    KernelCounters counters() const;  // throws sandlock::Error
    // Calls fn for every event waiting in the ring buffer; returns how many there were.
    std::size_t drain_events(const std::function<void(const KernelEvent&)>& fn);
    int events_fd() const;  // readable (epoll) when events wait

private:
    KernelLayer();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The attach types of the programs, in the order attach() attaches them.
const std::vector<bpf_attach_type>& kernel_layer_attach_types();
// Ids of the programs attached directly to dir for one of those hooks. Throws.
std::vector<std::uint32_t> attached_programs(const std::string& dir, bpf_attach_type type);
// Detaches every program of those hooks from dir (tests; `delete` removes the cgroup,
// which drops them). Throws sandlock::Error.
void detach_kernel_layer(const std::string& dir);

// Where a container's entries are: the pinned set of the build that attached its layer
// (create records it in the container's state), "" when bpffs is not mounted (then the
// tables are the processes' own and go with them).
std::string kernel_tables();

// The id of a cgroup2 directory: the kernel's cgroup id, as its file handle carries it.
// Throws sandlock::Error.
std::uint64_t cgroup_id_of(const std::string& dir);

// A container's key in the programs' tables: its cgroup id (low 40 bits) and the version of
// its policy (above): create registers version 0, each live change the next one.
std::uint64_t policy_key(std::uint64_t cgroup_id, std::uint64_t version);

// What `delete` knows of where a container's entries are.
struct KernelEntries {
    // kernel_tables() at create ("": nothing registered, as in supervisor mode); nullopt for
    // a container of an older build, which did not record it: every build's set is searched.
    std::optional<std::string> tables;
    // The newest version a live change may have registered (the shim records it before
    // registering it; versions older than the one before it are gone by then); nullopt:
    // unknown, the set's tables are walked for every version of the container.
    std::optional<std::uint64_t> last_version;
};

// Removes the container's maps from the programs' shared tables, for `delete` when the
// shim that registered them did not (it died, or was killed). Never throws.
void forget_kernel_policy(const std::string& cgroup_dir, const KernelEntries& where) noexcept;
// The same, knowing nothing of where they are (every build's set; this build's walked).
void forget_kernel_policy(const std::string& cgroup_dir) noexcept;

// Which layers enforce a container's policy.
enum class Enforcement {
    Kernel,      // the cgroup programs; the seccomp supervisor judges connect only
    Supervisor,  // the seccomp supervisor alone (the kernel programs could not be attached)
};
const char* to_string(Enforcement e);  // "kernel", "supervisor"
std::optional<Enforcement> enforcement_from_string(const std::string& s);

// Set in the runtime's environment (never from a bundle), it makes create behave as if
// the kernel refused the programs: how the tests reach supervisor mode on a host where
// the programs attach.
constexpr const char* kTestNoKernelLayerEnv = "SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER";

// create's decision once the layer was tried: `why` is empty when it is attached (Kernel).
// Otherwise fails closed with one line (why, and how to allow supervisor mode) unless
// supervisor_allowed, then logs a warning and returns Supervisor.
Enforcement choose_enforcement(const std::string& why, bool supervisor_allowed);

// The cgroup2 directory of a container (key "" of cgroups::Manager::dirs()), or the reason
// there is none for the kernel layer (also when kTestNoKernelLayerEnv is set).
struct KernelLayerTarget {
    std::string dir;
    std::string why_not;
};
KernelLayerTarget kernel_layer_target(const std::map<std::string, std::string>& cgroup_dirs);

}  // namespace sandlock::egress
