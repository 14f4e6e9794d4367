#include "runtime/linux/landlock.hpp"

#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

// Debian 12's <linux/landlock.h> predates Landlock's network rules (ABI 4, Linux 6.7)
// and scoping (ABI 6, Linux 6.12). The values below are the kernel's UAPI; a newer
// header defines them itself (LANDLOCK_RULE_NET_PORT is an enumerator there, so the
// whole net block is keyed on the access-right macro that came with it).
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define LANDLOCK_RULE_NET_PORT 2
struct landlock_net_port_attr {
    __u64 allowed_access;
    __u64 port;
};
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif

namespace sandlock::os {
namespace {

constexpr int kNetAbi = 4;
constexpr int kScopeAbi = 6;

// The kernel's struct landlock_ruleset_attr as of ABI 6. Our own type because the
// installed header's struct has only handled_access_fs. Older kernels accept the
// larger size as long as the fields they do not know are zero, which the ABI
// checks in apply_landlock guarantee.
struct RulesetAttr {
    __u64 handled_access_fs = 0;
    __u64 handled_access_net = 0;
    __u64 scoped = 0;
};

long create_ruleset(const RulesetAttr* attr, size_t size, __u32 flags) {
    return ::syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

bool wants_ports(const LandlockNetRules& r) {
    return r.connect_tcp_ports.has_value() || r.bind_tcp_ports.has_value();
}

RulesetAttr ruleset_attr_for(const LandlockNetRules& r) {
    RulesetAttr attr;
    if (r.connect_tcp_ports) attr.handled_access_net |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
    if (r.bind_tcp_ports) attr.handled_access_net |= LANDLOCK_ACCESS_NET_BIND_TCP;
    if (r.scope_abstract_unix) attr.scoped |= LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
    return attr;
}

void add_port_rule(int ruleset, uint16_t port, __u64 access) {
    landlock_net_port_attr rule{};
    rule.allowed_access = access;
    rule.port = port;
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT, &rule, 0) != 0)
        throw_errno("landlock: allow TCP port " + std::to_string(port));
}

// One rule per distinct port, carrying every access that port is listed for.
void add_port_rules(int ruleset, const LandlockNetRules& r) {
    std::vector<uint16_t> ports;
    if (r.connect_tcp_ports) ports.insert(ports.end(), r.connect_tcp_ports->begin(), r.connect_tcp_ports->end());
    if (r.bind_tcp_ports) ports.insert(ports.end(), r.bind_tcp_ports->begin(), r.bind_tcp_ports->end());
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());

    auto listed = [](const std::optional<std::vector<uint16_t>>& list, uint16_t port) {
        return list && std::find(list->begin(), list->end(), port) != list->end();
    };
    for (uint16_t port : ports) {
        __u64 access = 0;
        if (listed(r.connect_tcp_ports, port)) access |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
        if (listed(r.bind_tcp_ports, port)) access |= LANDLOCK_ACCESS_NET_BIND_TCP;
        add_port_rule(ruleset, port, access);
    }
}

void restrict_self(int ruleset) {
    if (::syscall(SYS_landlock_restrict_self, ruleset, 0) == 0) return;
    if (errno == EPERM)
        throw SystemError("landlock: restrict self (needs no_new_privs or CAP_SYS_ADMIN)", errno);
    throw_errno("landlock: restrict self");
}

}  // namespace

int landlock_abi() {
    long abi = create_ruleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    // ENOSYS: not built in; EOPNOTSUPP: built in but disabled at boot.
    return abi < 0 ? 0 : static_cast<int>(abi);
}

bool apply_landlock(const LandlockNetRules& rules) {
    if (!wants_ports(rules) && !rules.scope_abstract_unix) return true;
    const int abi = landlock_abi();
    if (wants_ports(rules) && abi < kNetAbi) return false;
    if (rules.scope_abstract_unix && abi < kScopeAbi) return false;

    const RulesetAttr attr = ruleset_attr_for(rules);
    long fd = create_ruleset(&attr, sizeof(attr), 0);
    if (fd < 0) throw_errno("landlock: create ruleset");
    UniqueFd ruleset(static_cast<int>(fd));
    add_port_rules(ruleset.get(), rules);
    restrict_self(ruleset.get());
    return true;
}

}  // namespace sandlock::os
