#include "runtime/egress/sockets.hpp"

namespace sandlock::egress {

std::span<const sl_judgeable_socket> judgeable_sockets() { return sl_judgeable_sockets; }

std::optional<Protocol> judgeable_protocol(int family, int type, int protocol) {
    switch (sl_protocol_of(family, type, protocol)) {
        case SL_TCP: return Protocol::Tcp;
        case SL_UDP: return Protocol::Udp;
        case SL_ICMP: return Protocol::Icmp;
        default: return std::nullopt;
    }
}

std::optional<int> judgeable_type_of(int family, int protocol) {
    if (protocol == 0) return std::nullopt;  // the default of which type?
    for (const auto& j : judgeable_sockets())
        if (j.protocol == protocol && (j.family == 0 || j.family == family)) return j.type;
    return std::nullopt;
}

}  // namespace sandlock::egress
