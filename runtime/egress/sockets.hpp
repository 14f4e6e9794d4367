// Which IP sockets a policy can judge, for C++: the table the BPF programs read
// (egress/bpf/egress_maps.h, sl_judgeable_sockets), so that the seccomp filter, the kernel
// programs and the shim can never disagree on it.
#pragma once

#include <optional>
#include <span>

#include "runtime/egress/bpf/egress_maps.h"
#include "runtime/egress/rules.hpp"

namespace sandlock::egress {

// Every judgeable (family, type, protocol), socket(2)'s protocol 0 included.
std::span<const sl_judgeable_socket> judgeable_sockets();

// The policy's protocol of a socket, nullopt when no rule can judge it.
std::optional<Protocol> judgeable_protocol(int family, int type, int protocol);

// The socket type of a judgeable socket known by its (non-zero) protocol alone, as
// SO_PROTOCOL reports it: SOCK_STREAM for TCP and MPTCP, SOCK_DGRAM for UDP and ping.
std::optional<int> judgeable_type_of(int family, int protocol);

}  // namespace sandlock::egress
