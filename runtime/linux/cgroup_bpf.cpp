#include "runtime/linux/cgroup_bpf.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// bpf(2) itself, for the two commands libbpf would precede with probe programs (see
// create_map in the header).
int bpf_syscall(int cmd, bpf_attr& attr) {
    return static_cast<int>(::syscall(SYS_bpf, cmd, &attr, sizeof attr));
}

UniqueFd load_program(bpf_prog_type type, const std::vector<bpf_insn>& insns, std::vector<char>* log) {
    static const char license[] = "Apache-2.0";  // no GPL-only helper is called
    bpf_attr attr{};
    attr.prog_type = type;
    attr.insns = reinterpret_cast<std::uintptr_t>(insns.data());
    attr.insn_cnt = static_cast<std::uint32_t>(insns.size());
    attr.license = reinterpret_cast<std::uintptr_t>(license);
    if (log) {
        attr.log_level = 1;
        attr.log_buf = reinterpret_cast<std::uintptr_t>(log->data());
        attr.log_size = static_cast<std::uint32_t>(log->size());
    }
    return UniqueFd(bpf_syscall(BPF_PROG_LOAD, attr));
}

}  // namespace

UniqueFd open_dir(const std::string& dir, const std::string& what) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno(what + ": open the cgroup " + dir);
    return fd;
}

UniqueFd load(bpf_prog_type type, const std::vector<bpf_insn>& insns, const std::string& what) {
    UniqueFd fd = load_program(type, insns, nullptr);
    if (fd) return fd;
    const int err = errno;
    if (err != EACCES && err != EINVAL) throw_errno(what + " (bpf BPF_PROG_LOAD)", err);
    // Again with the verifier's log, for its reason (the kernel keeps the log's tail).
    std::vector<char> log(64 * 1024, '\0');
    fd = load_program(type, insns, &log);
    if (fd) return fd;
    const std::string reason = last_line(log);
    throw SystemError(what + " (bpf BPF_PROG_LOAD)" + (reason.empty() ? "" : " [verifier: " + reason + "]"), err);
}

UniqueFd create_map(bpf_map_type type, const char* name, std::uint32_t key_size, std::uint32_t value_size,
                    std::uint32_t max_entries, std::uint32_t flags, const std::string& what) {
    bpf_attr attr{};
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = max_entries;
    attr.map_flags = flags;
    std::strncpy(attr.map_name, name, sizeof attr.map_name - 1);
    UniqueFd fd(bpf_syscall(BPF_MAP_CREATE, attr));
    if (!fd) throw_errno(what + " (bpf BPF_MAP_CREATE)");
    return fd;
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
