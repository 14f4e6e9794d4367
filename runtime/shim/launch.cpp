#include "runtime/shim/launch.hpp"

#include <unistd.h>

#include <cerrno>

#include "runtime/util/fs.hpp"

namespace sandlock::shim::startup {

void write_all_raw(int fd, const char* data, size_t len) {
    while (len > 0) {
        const ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        len -= static_cast<size_t>(n);
    }
}

std::optional<egress::Audit> parse_audit(const std::string& s) {
    for (auto a : {egress::Audit::Off, egress::Audit::Deny, egress::Audit::All})
        if (s == egress::to_string(a)) return a;
    return std::nullopt;
}

std::string canonical_dir(const std::string& dir) {
    std::string abs = fs::absolute(dir);
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    return abs;
}

}  // namespace sandlock::shim::startup
