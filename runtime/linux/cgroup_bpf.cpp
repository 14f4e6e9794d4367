#include "runtime/linux/cgroup_bpf.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/util/error.hpp"

namespace sandlock::os::cgroup_bpf {

namespace {

// The verifier's last non-empty line: its verdict ("... invalid bpf_context access ...").
std::string last_line(const std::vector<char>& log) {
    std::string text(log.data(), ::strnlen(log.data(), log.size()));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    const auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

UniqueFd open_dir(const std::string& dir, const std::string& what) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno(what + ": open the cgroup " + dir);
    return fd;
}

UniqueFd load(bpf_prog_type type, const std::vector<bpf_insn>& insns, const std::string& what) {
    static const char license[] = "Apache-2.0";  // no GPL-only helper is called
    UniqueFd fd(bpf_prog_load(type, nullptr, license, insns.data(), insns.size(), nullptr));
    if (fd) return fd;
    const int err = errno;
    if (err != EACCES && err != EINVAL) throw_errno(what + " (bpf BPF_PROG_LOAD)", err);
    // Again with the verifier's log, for its reason (the kernel keeps the log's tail).
    std::vector<char> log(64 * 1024, '\0');
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = static_cast<__u32>(log.size()),
                .log_buf = log.data());
    fd.reset(bpf_prog_load(type, nullptr, license, insns.data(), insns.size(), &opts));
    if (fd) return fd;
    const std::string reason = last_line(log);
    throw SystemError(what + " (bpf BPF_PROG_LOAD)" + (reason.empty() ? "" : " [verifier: " + reason + "]"), err);
}

void attach(int prog_fd, int cgroup_fd, bpf_attach_type type, std::uint32_t flags, const std::string& what) {
    if (const int ret = bpf_prog_attach(prog_fd, cgroup_fd, type, flags); ret != 0)
        throw_errno(what + " (bpf BPF_PROG_ATTACH)", -ret);
}

std::vector<std::uint32_t> attached(int cgroup_fd, bpf_attach_type type, const std::string& what) {
    std::vector<std::uint32_t> ids(64);
    std::uint32_t count = static_cast<std::uint32_t>(ids.size());
    if (const int ret = bpf_prog_query(cgroup_fd, type, 0, nullptr, ids.data(), &count); ret != 0)
        throw_errno(what + " (bpf BPF_PROG_QUERY)", -ret);
    ids.resize(std::min<std::size_t>(count, ids.size()));
    return ids;
}

void detach(int cgroup_fd, std::uint32_t id, bpf_attach_type type, const std::string& what) {
    UniqueFd prog(bpf_prog_get_fd_by_id(id));
    if (!prog) {
        if (errno == ENOENT) return;  // already gone
        throw_errno(what + " (bpf BPF_PROG_GET_FD_BY_ID)");
    }
    if (const int ret = bpf_prog_detach2(prog.get(), cgroup_fd, type); ret != 0 && ret != -ENOENT)
        throw_errno(what + " (bpf BPF_PROG_DETACH)", -ret);
}

int detach_fd(int prog_fd, int cgroup_fd, bpf_attach_type type) noexcept {
    const int ret = bpf_prog_detach2(prog_fd, cgroup_fd, type);
    return ret < 0 ? -ret : 0;
}

}  // namespace sandlock::os::cgroup_bpf
