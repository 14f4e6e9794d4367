// The shim's control socket, <state dir>/shim.sock: a SOCK_SEQPACKET unix socket
// carrying one JSON object per packet. Requests:
//   {"op":"register"} + one seccomp listener fd (SCM_RIGHTS)  -> {"ok":true,"listeners":N}
//   {"op":"register","kernel_layer":{"id":ID}} + the listener and the container's five
//       kernel-layer maps (egress/kernel_layer.hpp, KernelLayer::handover): the first
//       listener of a container whose policy create attached; the shim owns the maps
//   {"op":"status"}                                           -> {"ok":true,"counters":{...},
//                                                                 "listeners":N,"pid":P,...}
// A refusal is {"ok":false,"error":"..."}. One request per connection.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::shim {

// Nothing serves the socket: it is missing, refuses connections, or the peer
// hung up without answering. register_listener turns this into its own message.
class ShimUnavailable : public Error {
public:
    using Error::Error;
};

// Client side: sends request (with fd attached when fd >= 0) on a fresh connection
// and returns the reply. Throws ShimUnavailable (see above), or Error on a timeout
// or a malformed reply.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               int fd = -1, int timeout_ms = 5000);
// The same with several fds attached (at most unix_socket::kMaxFds), in order.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               const std::vector<int>& fds, int timeout_ms = 5000);

// Whether the peer of a connected unix socket may talk to the shim: root, or our euid.
bool peer_allowed(int conn);

// Server side. Binds socket_path (mode 0600, replacing a stale socket file) at
// construction; serve() answers requests until shutdown(). SIGTERM, SIGINT and
// SIGHUP are read from a signalfd (the caller blocks them in every thread first)
// and reported through on_signal; serving continues until shutdown().
class ControlServer {
public:
    // Returns the reply for a request, given the fds attached to it, in order (maybe none).
    // Exceptions become {"ok":false,"error":what()}.
    using Handler = std::function<nlohmann::json(const nlohmann::json& request, std::vector<UniqueFd> fds)>;

    ControlServer(std::string socket_path, Handler handler, std::function<void(int)> on_signal);
    ~ControlServer();  // unlinks the socket if it is still the one we bound
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void serve();
    void shutdown();  // thread-safe; serve() returns soon after
    const std::string& path() const { return path_; }

private:
    void serve_connection(int conn);

    std::string path_;
    Handler handler_;
    std::function<void(int)> on_signal_;
    UniqueFd listen_;
    UniqueFd signals_;
    UniqueFd wake_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

}  // namespace sandlock::shim
