#include "runtime/util/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "runtime/util/fs.hpp"

namespace sandlock::proc {

namespace {

// The fields after "(comm)" of /proc/PID/stat; comm may contain spaces and ')'.
std::optional<std::string> stat_fields(pid_t pid) {
    auto text = fs::try_read_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    const auto close = text->rfind(')');
    if (close == std::string::npos || close + 2 > text->size()) return std::nullopt;
    return text->substr(close + 2);
}

bool has_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

}  // namespace

std::optional<unsigned long long> start_time(pid_t pid) {
    const auto fields = stat_fields(pid);
    if (!fields) return std::nullopt;
    // After comm: state (field 3) ... starttime is field 22, the 20th here.
    size_t pos = 0;
    for (int i = 0; i < 19; ++i) {
        pos = fields->find(' ', pos);
        if (pos == std::string::npos) return std::nullopt;
        ++pos;
    }
    char* end = nullptr;
    const unsigned long long value = std::strtoull(fields->c_str() + pos, &end, 10);
    if (end == fields->c_str() + pos) return std::nullopt;
    return value;
}

bool running(pid_t pid) {
    const auto fields = stat_fields(pid);
    return fields && !fields->empty() && (*fields)[0] != 'Z' && (*fields)[0] != 'X';
}

UniqueFd open_pidfd(pid_t pid) {
    if (pid <= 0) return UniqueFd();
    return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

UniqueFd open_pidfd(const Identity& id) {
    if (!id.known()) return UniqueFd();
    UniqueFd fd = open_pidfd(id.pid);
    if (!fd) return fd;
    // Checked after the open: if the pid still has the recorded start time now, the
    // process the pidfd pinned is the recorded one.
    const auto now = start_time(id.pid);
    if (!now || *now != id.start_time) fd.reset();
    return fd;
}

std::optional<Identity> identify(int pidfd, pid_t pid) {
    const auto start = start_time(pid);
    // Alive after the read: the pid was still this process's when its stat was read.
    if (!start || has_exited(pidfd)) return std::nullopt;
    return Identity{pid, *start};
}

bool send_signal(int pidfd, int sig) {
    return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

bool wait_exit(int pidfd, std::chrono::milliseconds limit) {
    pollfd p{pidfd, POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, static_cast<int>(limit.count()));
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

}  // namespace sandlock::proc
