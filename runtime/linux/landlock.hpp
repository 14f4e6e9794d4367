// Landlock for the egress policy: TCP connect/bind port rules (ABI >= 4) and
// abstract unix socket scoping (ABI >= 6). The ruleset handles only the network
// accesses asked for (and the scope), never a filesystem right, so file access
// is unaffected. Rules are inherited across fork and survive execve.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace sandlock::os {

// The Landlock ABI version of this kernel; 0 when Landlock is missing or disabled.
int landlock_abi();

struct LandlockNetRules {
    // TCP connect() allowed only to these ports (any address, IPv4 and IPv6);
    // nullopt: connect is not restricted; an empty vector: no TCP connect at all.
    std::optional<std::vector<uint16_t>> connect_tcp_ports;
    // TCP bind() allowed only to these ports; nullopt: bind is not restricted.
    // Binding port 0 (the kernel picks) is itself a bind to port 0: list 0 to allow it.
    std::optional<std::vector<uint16_t>> bind_tcp_ports;
    // Refuse connecting/sending to abstract unix sockets created outside this
    // Landlock domain (EPERM); pathname sockets are unaffected.
    bool scope_abstract_unix = false;
};

// Applies the rules to the calling thread (call it single-threaded, before execve);
// later children and exec'd programs inherit them. Returns false, having changed
// nothing, when the kernel lacks what is asked (ABI < 4 for ports, < 6 for the
// scope), so the caller can warn. Asking for nothing is a no-op returning true.
// Needs no_new_privs or CAP_SYS_ADMIN in the current user namespace (the caller
// orders that; this never sets no_new_privs). Throws sandlock::Error on failure.
bool apply_landlock(const LandlockNetRules& rules);

}  // namespace sandlock::os
