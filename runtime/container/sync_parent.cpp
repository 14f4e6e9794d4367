#include "runtime/container/sync_parent.hpp"

#include "runtime/container/process.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/linux/terminal.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::container {
namespace {

class ChildServer {
public:
    ChildServer(SyncSocket& sock, const ParentHandlers& handlers) : sock_(sock), h_(handlers) {}

    Served run() {
        while (!ready_) {
            SyncMessage m = sock_.recv();
            admit(m);
            std::visit([this](auto& typed) { handle(typed); }, m);
        }
        return std::move(served_);
    }

private:
    // Throws unless m is the next message of the order, or a later one after optional ones.
    void admit(const SyncMessage& m) {
        const SyncType type = type_of(m);
        if (type != SyncType::Error) {
            for (size_t i = next_; i < h_.order.size(); ++i) {
                if (h_.order[i].type == type) {
                    next_ = i + 1;
                    return;
                }
                if (h_.order[i].required) throw_unexpected(m, h_.order[i].type);
            }
        }
        throw_unexpected_here(m);
    }

    [[noreturn]] static void throw_unexpected_here(const SyncMessage& m) {
        if (const auto* error = std::get_if<msg::Error>(&m)) throw Error(error->message);
        throw Error(std::string("sync: unexpected ") + sync_type_name(type_of(m)));
    }

    template <class F>
    static const std::function<F>& step(const std::function<F>& f, SyncType type) {
        if (!f) throw Error(std::string("sync: no handler for ") + sync_type_name(type));
        return f;
    }

    void handle(const msg::InitPid& m) {
        served_.pid = m.pid;
        step(h_.init_pid, m.type)(m.pid);
    }
    void handle(const msg::UsernsReady& m) {
        step(h_.userns_ready, m.type)();
        sock_.send(msg::UsernsMapped{});
    }
    void handle(const msg::JoinCgroup& m) {
        const bool joined = step(h_.join_cgroup, m.type)(m.makes_cgroup_ns);
        sock_.send(msg::CgroupJoined{.joined = joined});
        if (!joined) cgroup_step_done();
    }
    void handle(const msg::LeaveCgroup& m) {
        step(h_.leave_cgroup, m.type)();
        sock_.send(msg::CgroupLeft{});
        cgroup_step_done();
    }
    void handle(const msg::RunHooks& m) {
        sock_.send(msg::HooksDone{step(h_.run_hooks, m.type)()});
        if (h_.after_hooks) h_.after_hooks();
    }
    void handle(msg::Console& m) {
        if (h_.console_socket.empty())
            served_.console_master = std::move(m.master);
        else
            os::send_console(h_.console_socket, m.master.get(), m.slave_name);
    }
    void handle(const msg::EgressListener& m) {
        step(h_.egress_listener, m.type)(take_fd_from(served_.pid, m.fd));
        sock_.send(msg::EgressDone{});
    }
    void handle(const msg::SeccompListener& m) {
        pass_seccomp_listener(take_fd_from(served_.pid, m.fd));
        sock_.send(msg::SeccompDone{});
    }
    void handle(const msg::Ready&) { ready_ = true; }
    // The parent's own messages, and Error (admit() threw already).
    template <class M>
    void handle(const M&) {
        throw Error(std::string("sync: unexpected ") + sync_type_name(M::type));
    }

    void cgroup_step_done() {
        if (h_.after_cgroup_step) h_.after_cgroup_step();
    }

    void pass_seccomp_listener(UniqueFd fd) {
        // Without a listenerPath the filter's listener has no taker: closed here.
        if (!h_.seccomp || h_.seccomp->listener_path.empty()) return;
        if (!h_.container) throw Error("sync: no container state for the seccomp listener");
        nlohmann::json state = oci_state(*h_.container, h_.status);
        os::send_listener_fd(h_.seccomp->listener_path,
                             os::container_process_state(state, served_.pid, h_.seccomp->listener_metadata)
                                 .dump(),
                             fd.get());
    }

    SyncSocket& sock_;
    const ParentHandlers& h_;
    size_t next_ = 0;
    bool ready_ = false;
    Served served_;
};

}  // namespace

void check_console_destination(bool terminal, bool detached, const std::string& console_socket) {
    if (terminal && detached && console_socket.empty())
        throw Error("cannot allocate tty if runc will detach without setting console socket");
    if (!terminal && !console_socket.empty())
        throw Error("cannot use console socket if runc will not detach or allocate tty");
}

Served serve_child(SyncSocket& sock, const ParentHandlers& handlers) {
    return ChildServer(sock, handlers).run();
}

}  // namespace sandlock::container
