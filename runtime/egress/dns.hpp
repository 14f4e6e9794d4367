// DNS lookups that say how long their answer holds: what the shim's name refresh needs
// and getaddrinfo does not give (issue 12). The system's resolver configuration
// (/etc/resolv.conf) through libresolv.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/egress/rules.hpp"

namespace sandlock::egress {

struct DnsAnswer {
    std::vector<IpAddr> addresses;  // A then AAAA records, in answer order, unique
    std::uint32_t ttl_s = 0;        // the smallest TTL among them (0: none)
};

// The A and AAAA records of `name` (the resolver follows CNAMEs). A name that does not
// exist, or has no address of either family, gives no addresses. Throws sandlock::Error
// when no server answered or the answer could not be read, for both families (or for
// one, the other having no address).
DnsAnswer query_addresses(const std::string& name);

// One answer message (the wire format), for query_addresses and its tests: the
// addresses of `type` (1 A, 28 AAAA) and their smallest TTL. Throws sandlock::Error.
DnsAnswer parse_answer(const unsigned char* message, int length, int type);

}  // namespace sandlock::egress
