#include "runtime/egress/hosts.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::egress {

namespace {

// The content before a previous block of ours, if any.
std::string without_previous_block(const std::string& existing) {
    const std::string marker(kHostsMarker);
    std::size_t pos = 0;
    while ((pos = existing.find(marker, pos)) != std::string::npos) {
        const bool line_start = pos == 0 || existing[pos - 1] == '\n';
        const auto end = pos + marker.size();
        const bool line_end = end == existing.size() || existing[end] == '\n';
        if (line_start && line_end) return existing.substr(0, pos);
        pos = end;
    }
    return existing;
}

bool safe_hosts_name(const std::string& name) {
    return !name.empty() && std::none_of(name.begin(), name.end(), [](unsigned char c) {
        return c <= ' ' || c == '#' || c == 0x7f;
    });
}

}  // namespace

std::string hosts_with_policy(const std::string& existing, const ResolvedPolicy& policy) {
    std::string out = without_previous_block(existing);
    if (!out.empty() && out.back() != '\n') out += '\n';
    std::string block;
    for (const auto& host : policy.hosts) {
        if (!safe_hosts_name(host.name)) continue;
        // IPv4 first: resolvers that take the first line then work in containers
        // whose network has no IPv6 route.
        for (bool v4 : {true, false})
            for (const auto& addr : host.addresses)
                if (addr.is_v4() == v4) block += addr.to_string() + " " + host.name + "\n";
    }
    if (block.empty()) return out;
    return out + std::string(kHostsMarker) + "\n" + block;
}

std::string read_hosts_in_root(int root_fd) {
    constexpr off_t kMaxHostsSize = 1 << 20;
    UniqueFd f = os::try_open_in_root(root_fd, "/etc/hosts", O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (!f) {
        if (errno == ENOENT) return "";
        throw_errno("open the container's /etc/hosts");
    }
    struct stat st{};
    if (::fstat(f.get(), &st) != 0) throw_errno("stat the container's /etc/hosts");
    if (!S_ISREG(st.st_mode)) throw Error("the container's /etc/hosts is not a regular file");
    if (st.st_size > kMaxHostsSize) throw Error("the container's /etc/hosts is larger than 1 MiB");
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(f.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read the container's /etc/hosts");
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

}  // namespace sandlock::egress
