#include "runtime/shim/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "runtime/util/unix_socket.hpp"

namespace sandlock::shim {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxMessage = 64 * 1024;
// A connected client that sends nothing must not hold up the other clients for long.
constexpr int kServerReceiveTimeoutMs = 2000;

// A unix socket address for path. A path longer than sun_path is reached through
// its directory, /proc/self/fd/N/<name>, with dir keeping N open meanwhile.
struct Address {
    sockaddr_un addr{};
    UniqueFd dir;
};

Address address_for(const std::string& path) {
    Address a;
    a.addr.sun_family = AF_UNIX;
    std::string target = path;
    if (path.size() >= sizeof a.addr.sun_path) {
        const auto slash = path.rfind('/');
        const std::string dir =
            slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
        const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
        a.dir.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!a.dir) throw_errno("open " + dir);
        target = "/proc/self/fd/" + std::to_string(a.dir.get()) + "/" + name;
        if (target.size() >= sizeof a.addr.sun_path) throw Error("socket path too long: " + path);
    }
    std::memcpy(a.addr.sun_path, target.c_str(), target.size() + 1);
    return a;
}

// Waits until fd is readable (or hung up); false on timeout.
bool wait_readable(int fd, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) throw_errno("poll");
    }
}

json parse_object(const std::string& payload, const std::string& what) {
    json j = json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(what + ": not a JSON object");
    return j;
}

bool means_nobody_listens(int err) {
    return err == ENOENT || err == ECONNREFUSED || err == ENOTSOCK || err == EPIPE ||
           err == ECONNRESET || err == ENOTDIR;
}

void set_timeout(int sock, int option, int timeout_ms) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (::setsockopt(sock, SOL_SOCKET, option, &tv, sizeof tv) != 0) throw_errno("setsockopt");
}

}  // namespace

json control_request(const std::string& socket_path, const json& request, int fd, int timeout_ms) {
    return control_request(socket_path, request, fd >= 0 ? std::vector<int>{fd} : std::vector<int>{}, timeout_ms);
}

json control_request(const std::string& socket_path, const json& request, const std::vector<int>& fds, int timeout_ms) {
    Address a = address_for(socket_path);
    UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno("socket");
    // A shim that is stopped (SIGSTOP) with a full backlog must not block us forever.
    set_timeout(sock.get(), SO_SNDTIMEO, timeout_ms);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof a.addr) != 0) {
        const int err = errno;
        if (means_nobody_listens(err))
            throw ShimUnavailable("connect " + socket_path + ": " + std::strerror(err));
        throw_errno("connect " + socket_path, err);
    }
    try {
        unix_socket::send_with_fds(sock.get(), request.dump(), fds);
    } catch (const SystemError& e) {
        if (means_nobody_listens(e.code())) throw ShimUnavailable(e.what());
        throw;
    }
    if (!wait_readable(sock.get(), timeout_ms))
        throw Error("egress shim did not answer on " + socket_path + " within " +
                    std::to_string(timeout_ms / 1000) + "s");
    unix_socket::Received reply;
    try {
        reply = unix_socket::recv_with_fd(sock.get(), kMaxMessage);
    } catch (const SystemError& e) {
        if (means_nobody_listens(e.code())) throw ShimUnavailable(e.what());
        throw;
    }
    if (reply.payload.empty())
        throw ShimUnavailable("egress shim closed " + socket_path + " without answering");
    return parse_object(reply.payload, "egress shim reply");
}

bool peer_allowed(int conn) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    return cred.uid == 0 || cred.uid == ::geteuid();
}

ControlServer::ControlServer(std::string socket_path, Handler handler,
                             std::function<void(int)> on_signal)
    : path_(std::move(socket_path)), handler_(std::move(handler)), on_signal_(std::move(on_signal)) {
    listen_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!listen_) throw_errno("socket");
    Address a = address_for(path_);
    // A socket file left by a shim killed with SIGKILL would make bind fail.
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) throw_errno("remove stale " + path_);
    // The socket must never be reachable with a wider mode, not even briefly.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof a.addr);
    const int err = errno;
    ::umask(old);
    if (rc != 0) throw_errno("bind " + path_, err);
    if (::chmod(path_.c_str(), 0600) != 0) throw_errno("chmod " + path_);
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) throw_errno("stat " + path_);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    if (::listen(listen_.get(), 64) != 0) throw_errno("listen " + path_);

    sigset_t set;
    ::sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, sig);
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) throw_errno("signalfd");
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) throw_errno("eventfd");
}

ControlServer::~ControlServer() {
    // Only our own socket: a newer shim may have replaced the file.
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

void ControlServer::shutdown() {
    const uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof one) < 0) {
        // The counter cannot overflow with our increments; nothing to do.
    }
}

void ControlServer::serve() {
    for (;;) {
        pollfd p[3] = {{wake_.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
        if (::poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (p[0].revents) return;
        if (p[1].revents & POLLIN) {
            signalfd_siginfo si{};
            while (::read(signals_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
                if (on_signal_) on_signal_(static_cast<int>(si.ssi_signo));
        }
        if (p[2].revents & POLLIN) {
            UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!conn) {
                // Out of fds: back off instead of spinning on the pending connection.
                if (errno == EMFILE || errno == ENFILE)
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            serve_connection(conn.get());
        }
    }
}

void ControlServer::serve_connection(int conn) {
    json reply;
    try {
        if (!peer_allowed(conn)) {
            reply = {{"ok", false}, {"error", "permission denied"}};
        } else {
            if (!wait_readable(conn, kServerReceiveTimeoutMs)) return;
            auto msg = unix_socket::recv_with_fds(conn, kMaxMessage);
            if (msg.payload.empty()) return;  // the client hung up
            reply = handler_(parse_object(msg.payload, "request"), std::move(msg.fds));
        }
    } catch (const std::exception& e) {
        reply = {{"ok", false}, {"error", e.what()}};
    }
    try {
        unix_socket::send_with_fd(conn, reply.dump(), -1);
    } catch (const std::exception&) {
        // The client left; nothing to tell it.
    }
}

}  // namespace sandlock::shim
