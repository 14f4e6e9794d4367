// Container's start, kill and delete (container.hpp).
#include "runtime/container/container.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>
#include <cctype>
#include <chrono>
#include <thread>

#include "hooks/hooks.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"
#include "spec/config.hpp"

namespace sandlock::container {
namespace {

// The saved config.json's hooks: all that start and delete use of it. A file without a
// "hooks" key (a quoted word that no JSON string can hold unescaped) is not parsed at
// all: with a policy of a thousand rules it is 20 KB.
spec::Hooks load_saved_hooks(const StateStore& store, const std::string& id) {
    const std::string text = fs::read_file(store.config_path(id));
    if (text.find("\"hooks\"") == std::string::npos) return {};
    return spec::parse_config_hooks(nlohmann::json::parse(text));
}

// Init holds the fifo's write end (O_CLOEXEC) through its startContainer
// hooks: EOF means it has called execve (or died), so poststart may run.
void wait_for_execve(int fifo) {
    for (;;) {
        char byte;
        ssize_t n = ::read(fifo, &byte, 1);
        if (n == 0) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) throw_errno("read exec fifo");
        struct pollfd p {fifo, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) throw_errno("poll exec fifo");
    }
}

// Waits for exec.fifo to be readable while init is alive: a dead init must
// not hang `start` forever.
void release_init(const StateStore& store, const ContainerState& st) {
    UniqueFd fifo(::open(store.fifo_path(st.id).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fifo) throw_errno("open exec fifo");
    for (;;) {
        struct pollfd p {fifo.get(), POLLIN, 0};
        int r = ::poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) throw_errno("poll exec fifo");
        if (r > 0 && (p.revents & POLLIN)) break;
        if (!init_alive(st)) throw Error("container init exited before start");
    }
    char byte;
    ssize_t n = ::read(fifo.get(), &byte, 1);
    if (n != 1) throw Error("container init exited before start");
    ::unlink(store.fifo_path(st.id).c_str());
    wait_for_execve(fifo.get());
}

UniqueFd open_pidfd(const ContainerState& st) {
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, st.pid, 0)));
    if (!fd) return fd;
    // The pid may have been reused between our check and pidfd_open.
    if (!init_alive(st)) fd.reset();
    return fd;
}

void signal_init(const ContainerState& st, int sig) {
    UniqueFd pidfd = open_pidfd(st);
    if (!pidfd) throw Error("container not running");
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
        if (errno == ESRCH) throw Error("no such process");
        throw_errno("kill");
    }
}

void signal_all(const cgroups::Manager& cgroup, int sig) {
    for (pid_t pid : cgroup.pids()) ::kill(pid, sig);
}

bool wait_until_stopped(const ContainerState& st, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!init_alive(st)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return !init_alive(st);
}

void kill_everything(const ContainerState& st, cgroups::Manager& cgroup) {
    if (init_alive(st)) {
        UniqueFd pidfd = open_pidfd(st);
        if (pidfd) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    }
    // A container sharing our pid namespace keeps its other processes when
    // init dies: the cgroup knows them all.
    signal_all(cgroup, SIGKILL);
    // A paused container's processes cannot die until they are thawed.
    try {
        if (cgroup.frozen()) cgroup.thaw();
    } catch (const std::exception& e) {
        log::warn(std::string("thaw before kill: ") + e.what());
    }
    wait_until_stopped(st, std::chrono::seconds(10));
}

void destroy_container(const StateStore& store, const ContainerState& st, cgroups::Manager& cgroup) {
    if (st.shim) shim::stop_shim(store.dir(st.id), st.shim_process);
    // The shim's cgroup before the container's: the parents they share are the container's.
    cgroups::open_manager(st.shim_cgroup)->destroy();
    signal_all(cgroup, SIGKILL);
    // The shim removes its kernel-layer maps when it stops; this is for a shim that died.
    if (st.shim)
        if (const auto dirs = cgroup.dirs(); dirs.count(""))
            egress::forget_kernel_policy(dirs.at(""), {st.kernel_tables, shim::recorded_kernel_version(store.dir(st.id))});
    cgroup.destroy();
    std::optional<spec::Hooks> saved_hooks;
    try {
        saved_hooks = load_saved_hooks(store, st.id);
    } catch (const std::exception& e) {
        log::warn("delete " + st.id + ": cannot read saved config: " + e.what());
    }
    if (saved_hooks && !saved_hooks->poststop.empty()) {
        for (const auto& w : hooks::run_hooks_warn(saved_hooks->poststop,
                                                   hook_state_json(st, Status::Stopped), "poststop"))
            log::warn(w);
    }
    store.remove_dir(st.id);
}

[[noreturn]] void refuse_start(Status status) {
    switch (status) {
        case Status::Stopped:
            throw Error("cannot start a container that has stopped");
        case Status::Running:
            throw Error("cannot start an already running container");
        default:
            throw Error(std::string("cannot start a container in the ") + status_name(status) + " state");
    }
}

}  // namespace

void Container::start() {
    if (!can_start()) refuse_start(status_);
    release_init(store_, state_);
    status_ = Status::Running;
    const spec::Hooks saved = load_saved_hooks(store_, id());
    if (saved.poststart.empty()) return;
    for (const auto& w : hooks::run_hooks_warn(saved.poststart, hook_state_json(state_, Status::Running), "poststart"))
        log::warn(w);
}

namespace {

// A decimal signal number of `digits`, nullopt when it is not one (empty, signs, overflow).
std::optional<int> signal_number(std::string_view digits) {
    int n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return n;
}

}  // namespace

int parse_signal(const std::string& text) {
    const auto unknown = [&]() { return Error("unknown signal \"" + text + "\""); };
    std::string name = text;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (name.rfind("SIG", 0) == 0) name = name.substr(3);
    for (int sig = 1; sig < NSIG; ++sig) {
        const char* abbrev = ::sigabbrev_np(sig);
        if (abbrev && name == abbrev) return sig;
    }
    std::optional<int> sig;
    if (name.rfind("RTMIN+", 0) == 0) {
        if (const auto n = signal_number(std::string_view(name).substr(6))) sig = SIGRTMIN + *n;
    } else if (name.rfind("RTMAX-", 0) == 0) {
        if (const auto n = signal_number(std::string_view(name).substr(6))) sig = SIGRTMAX - *n;
    } else {
        sig = signal_number(text);
    }
    if (!sig || *sig <= 0 || *sig >= NSIG) throw unknown();
    return *sig;
}

void Container::kill(int sig, bool all) const {
    if (!all && !can_kill()) throw Error("container not running");
    if (all)
        signal_all(*open_cgroup(), sig);
    else
        signal_init(state_, sig);
    // A frozen task acts on SIGKILL only once thawed (v1 freezer): as runc 1.2, a SIGKILL
    // to a paused container thaws it, so that the kill takes effect (it is not paused
    // afterwards). Other signals stay pending until `resume`.
    if (sig == SIGKILL && status_ == Status::Paused) open_cgroup()->thaw();
}

void Container::destroy_by_id(const StateStore& store, const std::string& id, bool force) {
    if (force && !id.empty()) {
        validate_id(id);
        if (!store.exists(id)) {
            // runc: --force on a missing container succeeds; clear a half-made dir.
            if (fs::exists(store.dir(id))) store.remove_dir(id);
            return;
        }
    }
    load(store, id).destroy(force);
}

void Container::destroy(bool force) {
    if (!can_delete() && !force)
        throw Error("cannot delete container " + id() + " that is not stopped: " + status_name(status_));
    auto cgroup = open_cgroup();
    if (status_ != Status::Stopped) kill_everything(state_, *cgroup);
    destroy_container(store_, state_, *cgroup);
    status_ = Status::Stopped;
}

}  // namespace sandlock::container
