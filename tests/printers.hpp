// How Boost.Test prints the runtime's values in a failed check's message: one definition
// for every test file (they are compiled together, Makefile: TEST_UNITS).
#pragma once

#include <ostream>

#include "runtime/egress/policy.hpp"

namespace sandlock::egress {
inline std::ostream& operator<<(std::ostream& os, const IpAddr& ip) { return os << ip.to_string(); }
inline std::ostream& operator<<(std::ostream& os, const Verdict& v) {
    return os << to_string(v.decision) << "/" << to_string(v.reason);
}
}  // namespace sandlock::egress
