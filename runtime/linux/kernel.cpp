#include "runtime/linux/kernel.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/process.hpp"

namespace sandlock::os {
namespace {

// A zombie is gone for our purpose: it holds no mounts and no cgroup membership.
bool is_zombie(pid_t pid) {
    std::string st;
    try {
        st = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
    } catch (const Error&) {
        return true;  // no such process
    }
    auto close = st.rfind(')');
    return close != std::string::npos && close + 2 < st.size() && st[close + 2] == 'Z';
}

class RealKernel final : public Kernel {
public:
    pid_t start_child(int, const std::function<void()>& body) override {
        pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            body();
            ::_exit(1);  // body never returns; nothing may unwind into the parent's code
        }
        return pid;
    }

    int wait_child(pid_t pid) override {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) return -1;
        }
        return status;
    }

    void kill(pid_t pid) override {
        if (pid > 0) ::kill(pid, SIGKILL);
    }

    void kill_and_reap(pid_t pid) override {
        if (pid <= 0) return;
        ::kill(pid, SIGKILL);
        // init is not our child (stage 1 forked it); wait for it to disappear so
        // its mounts and cgroup membership are gone before the caller cleans up.
        for (int i = 0; i < 200; ++i) {
            if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
            if (::kill(pid, 0) != 0 && errno == ESRCH) return;
            if (is_zombie(pid)) return;
            ::usleep(5000);
        }
    }

    std::optional<unsigned long long> start_time(pid_t pid) override { return proc::start_time(pid); }

    void write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>& uid_map,
                           const std::vector<spec::IdMapping>& gid_map) override {
        os::write_id_mappings(pid, uid_map, gid_map);
    }

    UniqueFd make_exec_fifo(const std::string& path) override {
        // 0622 whatever our umask: init may write it after switching to a non-root user.
        if (::mkfifo(path.c_str(), 0622) != 0) throw_errno("mkfifo " + path);
        if (::chmod(path.c_str(), 0622) != 0) throw_errno("chmod " + path);
        UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!fd) throw_errno("open " + path);
        return fd;
    }

    NamespacePlan plan_join_process(pid_t pid, const spec::Linux& linux_cfg) override {
        return os::plan_join_process(pid, linux_cfg);
    }

    // Probed once a command (create asks for the container's cgroup and then its shim's):
    // the host's mounts do not change under it.
    cgroups::Hierarchy cgroup_hierarchy() override {
        if (!host_) host_ = cgroups::probe_host();
        return *host_;
    }

    std::unique_ptr<cgroups::Manager> cgroup_manager(const cgroups::Hierarchy& host,
                                                     const std::string& resolved_path) override {
        return cgroups::make_manager(host, resolved_path);
    }

    std::unique_ptr<cgroups::Manager> open_cgroup_manager(const nlohmann::json& state) override {
        return cgroups::open_manager(state);
    }

private:
    std::optional<cgroups::Hierarchy> host_;
};

}  // namespace

Kernel& real_kernel() {
    static RealKernel kernel;
    return kernel;
}

}  // namespace sandlock::os
