// A fake of the kernel seam (runtime/linux/kernel.hpp) for unit tests of create's and
// exec's orchestration, without root. It starts no process: its "stage 1" is a thread
// that plays the children's side of the sync protocol (sync.hpp) from a script, over the
// real socket create made. Its processes are entries in a table (running, exited,
// reaped), its cgroups records; every call it answers is logged, in order, with what the
// scripted child received, and any call can be made to fail.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/container/sync.hpp"
#include "runtime/linux/kernel.hpp"

namespace sandlock::testing {

// Above the kernel's PID_MAX_LIMIT (4194304): a stray real kill(2) reaches no process.
constexpr pid_t kFakeStage1 = 5000001;
constexpr pid_t kFakeInit = 5000002;
constexpr unsigned long long kFakeStartTime = 4242;

class FakeKernel;

// The scripted child: its end of the sync socket, and the kernel whose processes it is.
struct ScriptedChild {
    container::SyncSocket sock;
    FakeKernel& kernel;
};
using ChildStep = std::function<void(ScriptedChild&)>;

// The steps a script is made of.
namespace child {
template <class M>
ChildStep send(M message) {
    return [message](ScriptedChild& c) { c.sock.send(message); };
}
// One packet as is (a child that does not speak the protocol).
ChildStep send_raw(std::string bytes);
// The parent's next message, which must be of `type`; logged as "child got TYPE".
ChildStep expect(container::SyncType type);
// Stage 1 forks init, exits, and reports init's pid (InitPid).
ChildStep fork_init(pid_t init = kFakeInit);
// The same, but init has exited before the parent reads its pid.
ChildStep fork_init_that_dies(pid_t init = kFakeInit);
// Every process of the child exits: the parent reads EOF.
ChildStep hang_up();
}  // namespace child

class FakeKernel final : public os::Kernel {
public:
    explicit FakeKernel(std::vector<ChildStep> script);
    FakeKernel(const FakeKernel&) = delete;
    FakeKernel& operator=(const FakeKernel&) = delete;
    ~FakeKernel() override;

    // The call logged as `event` ("make fifo", "cgroup apply", ...) throws SystemError(err).
    void fail(const std::string& event, int err = EIO);

    // Everything logged, in order (the scripted child finished first).
    std::vector<std::string> events();
    // What the child did not get as scripted ("" when it ran to its end).
    std::string child_error();
    // Processes still there: "NAME running", or "NAME not reaped" for an exited child of ours.
    std::vector<std::string> leftovers() const;
    // Cgroups made and not destroyed, by path.
    std::vector<std::string> cgroups_left() const;
    // The cgroup a container's record names (open_cgroup_manager), as exec finds it.
    static nlohmann::json cgroup_record(const std::string& path);

    // The scripted child's view: its processes come and go.
    void spawned(pid_t pid);
    void exited(pid_t pid);
    void exit_all();

    // The seam.
    pid_t start_child(int channel, const std::function<void()>& body) override;
    int wait_child(pid_t pid) override;
    void kill(pid_t pid) override;
    void kill_and_reap(pid_t pid) override;
    std::optional<unsigned long long> start_time(pid_t pid) override;
    void write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>& uid_map,
                           const std::vector<spec::IdMapping>& gid_map) override;
    UniqueFd make_exec_fifo(const std::string& path) override;
    os::NamespacePlan plan_join_process(pid_t pid, const spec::Linux& linux_cfg) override;
    cgroups::Hierarchy cgroup_hierarchy() override;
    std::unique_ptr<cgroups::Manager> cgroup_manager(const cgroups::Hierarchy& host,
                                                     const std::string& resolved_path) override;
    std::unique_ptr<cgroups::Manager> open_cgroup_manager(const nlohmann::json& state) override;

    // Logs event (with its managers' and the child's, one list) and throws if it is to fail.
    void call(const std::string& event);
    void log(const std::string& event);
    static std::string name_of(pid_t pid);

    struct Cgroup {
        std::string path;
        bool made = false;
        bool destroyed = false;
    };

private:
    enum class Proc { Running, Exited, Reaped };
    void play(container::SyncSocket sock);
    void finish_child();

    std::vector<ChildStep> script_;
    std::map<std::string, int> failing_;
    mutable std::mutex mu_;  // the child's thread and the test's share what follows
    std::vector<std::string> events_;
    std::map<pid_t, Proc> procs_;
    std::set<pid_t> ours_;  // started by start_child: ours to reap
    std::string child_error_;
    std::vector<std::shared_ptr<Cgroup>> cgroups_;
    std::thread child_;
};

}  // namespace sandlock::testing
