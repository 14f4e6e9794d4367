#include "tests/fake_kernel.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/util/error.hpp"

namespace sandlock::testing {

using container::SyncType;

namespace {

// A cgroup that is a record: what create does to it is logged through the kernel.
class FakeManager final : public cgroups::Manager {
public:
    FakeManager(FakeKernel& kernel, std::shared_ptr<FakeKernel::Cgroup> cgroup)
        : kernel_(kernel), cgroup_(std::move(cgroup)) {}

    void create() override {
        kernel_.call("cgroup create");
        cgroup_->made = true;
    }
    void add_process(pid_t pid) override { kernel_.call("cgroup add " + FakeKernel::name_of(pid)); }
    void add_process_to_own_cgroup(pid_t pid) override {
        kernel_.call("cgroup leave " + FakeKernel::name_of(pid));
    }
    std::vector<pid_t> pids() const override { return {}; }
    // Never fails: a real destroy retries and warns, the undo must not stop here.
    void destroy() override {
        kernel_.log("cgroup destroy");
        cgroup_->destroyed = true;
    }
    bool exists() const override { return cgroup_->made && !cgroup_->destroyed; }
    std::string path() const override { return cgroup_->path; }
    std::map<std::string, std::string> dirs() const override { return {{"", "/sys/fs/cgroup" + cgroup_->path}}; }
    cgroups::Kind kind() const override { return cgroups::Kind::V2; }
    nlohmann::json to_state() const override { return FakeKernel::cgroup_record(cgroup_->path); }
    void apply(const cgroups::Resources&) override { kernel_.call("cgroup apply"); }
    void freeze() override { kernel_.call("cgroup freeze"); }
    void thaw() override { kernel_.call("cgroup thaw"); }
    bool frozen() const override { return false; }
    nlohmann::json stats() const override { return nlohmann::json::object(); }

private:
    FakeKernel& kernel_;
    std::shared_ptr<FakeKernel::Cgroup> cgroup_;
};

// Writing to a socket whose reader left raises SIGPIPE in the writing thread: the
// scripted child gets EPIPE instead, as the test program must live on.
void block_sigpipe_in_this_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

namespace child {

ChildStep send_raw(std::string bytes) {
    return [bytes](ScriptedChild& c) {
        if (::write(c.sock.get(), bytes.data(), bytes.size()) < 0) throw_errno("fake child: write");
    };
}

ChildStep expect(SyncType type) {
    return [type](ScriptedChild& c) {
        const container::SyncMessage m = c.sock.recv();
        if (container::type_of(m) != type) container::throw_unexpected(m, type);
        // Logged before the child's next message, so the order of the log is the order of events.
        c.kernel.log(std::string("child got ") + container::sync_type_name(type));
    };
}

ChildStep fork_init(pid_t init) {
    return [init](ScriptedChild& c) {
        c.kernel.spawned(init);
        c.kernel.exited(kFakeStage1);
        c.sock.send(container::msg::InitPid{.pid = init});
    };
}

ChildStep fork_init_that_dies(pid_t init) {
    return [init](ScriptedChild& c) {
        c.kernel.spawned(init);
        c.kernel.exited(init);
        c.kernel.exited(kFakeStage1);
        c.sock.send(container::msg::InitPid{.pid = init});
    };
}

ChildStep hang_up() {
    return [](ScriptedChild& c) {
        c.kernel.exit_all();
        c.sock.close();
    };
}

}  // namespace child

FakeKernel::FakeKernel(std::vector<ChildStep> script) : script_(std::move(script)) {}

FakeKernel::~FakeKernel() { finish_child(); }

void FakeKernel::fail(const std::string& event, int err) { failing_[event] = err; }

std::string FakeKernel::name_of(pid_t pid) {
    if (pid == kFakeStage1) return "stage1";
    if (pid == kFakeInit) return "init";
    return std::to_string(pid);
}

nlohmann::json FakeKernel::cgroup_record(const std::string& path) { return {{"fake", path}}; }

void FakeKernel::log(const std::string& event) {
    std::lock_guard lock(mu_);
    events_.push_back(event);
}

void FakeKernel::call(const std::string& event) {
    log(event);
    if (auto it = failing_.find(event); it != failing_.end()) throw SystemError("fake " + event, it->second);
}

void FakeKernel::finish_child() {
    if (child_.joinable()) child_.join();
}

std::vector<std::string> FakeKernel::events() {
    finish_child();
    std::lock_guard lock(mu_);
    return events_;
}

std::string FakeKernel::child_error() {
    finish_child();
    std::lock_guard lock(mu_);
    return child_error_;
}

std::vector<std::string> FakeKernel::leftovers() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> left;
    for (const auto& [pid, state] : procs_) {
        if (state == Proc::Running) left.push_back(name_of(pid) + " running");
        if (state == Proc::Exited && ours_.count(pid)) left.push_back(name_of(pid) + " not reaped");
    }
    return left;
}

std::vector<std::string> FakeKernel::cgroups_left() const {
    std::vector<std::string> left;
    for (const auto& c : cgroups_)
        if (c->made && !c->destroyed) left.push_back(c->path);
    return left;
}

void FakeKernel::spawned(pid_t pid) {
    std::lock_guard lock(mu_);
    procs_[pid] = Proc::Running;
}

void FakeKernel::exited(pid_t pid) {
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    if (it != procs_.end() && it->second == Proc::Running) it->second = Proc::Exited;
}

void FakeKernel::exit_all() {
    std::lock_guard lock(mu_);
    for (auto& [pid, state] : procs_)
        if (state == Proc::Running) state = Proc::Exited;
}

void FakeKernel::play(container::SyncSocket sock) {
    block_sigpipe_in_this_thread();
    ScriptedChild c{std::move(sock), *this};
    try {
        for (const auto& step : script_) step(c);
    } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        child_error_ = e.what();
    }
}  // its end of the socket closes here: a parent still reading sees EOF

// The body is never run: it is stage 1 itself, which would set up a container in this process.
pid_t FakeKernel::start_child(int channel, const std::function<void()>&) {
    call("start stage1");
    if (child_.joinable()) throw Error("fake kernel: one child per test");
    UniqueFd own(::fcntl(channel, F_DUPFD_CLOEXEC, 0));
    if (!own) throw_errno("fake kernel: dup");
    {
        std::lock_guard lock(mu_);
        procs_[kFakeStage1] = Proc::Running;
        ours_.insert(kFakeStage1);
    }
    child_ = std::thread(&FakeKernel::play, this, container::SyncSocket(std::move(own)));
    return kFakeStage1;
}

int FakeKernel::wait_child(pid_t pid) {
    call("wait " + name_of(pid));
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    if (!ours_.count(pid) || it == procs_.end() || it->second == Proc::Reaped) return -1;
    if (it->second == Proc::Running) {
        // The real waitpid would block until the process exits on its own.
        events_.push_back("BUG: waited on running " + name_of(pid));
        return -1;
    }
    it->second = Proc::Reaped;
    return 0;
}

void FakeKernel::kill(pid_t pid) {
    if (pid <= 0) return;
    call("kill " + name_of(pid));
    exited(pid);
}

void FakeKernel::kill_and_reap(pid_t pid) {
    if (pid <= 0) return;
    call("kill_and_reap " + name_of(pid));
    exited(pid);
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    if (it != procs_.end() && ours_.count(pid)) it->second = Proc::Reaped;
}

std::optional<unsigned long long> FakeKernel::start_time(pid_t pid) {
    call("start time " + name_of(pid));
    std::lock_guard lock(mu_);
    auto it = procs_.find(pid);
    if (it == procs_.end() || it->second != Proc::Running) return std::nullopt;
    return kFakeStartTime;
}

void FakeKernel::write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>&,
                                   const std::vector<spec::IdMapping>&) {
    call("write id maps " + name_of(pid));
}

// A real fifo: the state dir is a real one, and what is left in it is what the test checks.
UniqueFd FakeKernel::make_exec_fifo(const std::string& path) {
    call("make fifo");
    if (::mkfifo(path.c_str(), 0622) != 0) throw_errno("mkfifo " + path);
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) throw_errno("open " + path);
    return fd;
}

os::NamespacePlan FakeKernel::plan_join_process(pid_t pid, const spec::Linux&) {
    call("open namespaces of " + name_of(pid));
    return {};
}

cgroups::Hierarchy FakeKernel::cgroup_hierarchy() {
    call("probe cgroups");
    cgroups::Hierarchy h;
    h.mode = cgroups::Mode::Unified;
    h.v2 = cgroups::Mount{"/sys/fs/cgroup", "/", {"cpu", "memory", "pids"}, "/"};
    return h;
}

std::unique_ptr<cgroups::Manager> FakeKernel::cgroup_manager(const cgroups::Hierarchy&,
                                                             const std::string& resolved_path) {
    call("cgroup manager " + resolved_path);
    cgroups_.push_back(std::make_shared<Cgroup>(Cgroup{resolved_path}));
    return std::make_unique<FakeManager>(*this, cgroups_.back());
}

std::unique_ptr<cgroups::Manager> FakeKernel::open_cgroup_manager(const nlohmann::json& state) {
    const std::string path = state.at("fake").get<std::string>();
    call("cgroup open " + path);
    cgroups_.push_back(std::make_shared<Cgroup>(Cgroup{path, true}));
    return std::make_unique<FakeManager>(*this, cgroups_.back());
}

}  // namespace sandlock::testing
