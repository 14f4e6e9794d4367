// Test support shared by the unit tests: checks run in a forked child (for code
// that changes the process: filters, Landlock, identity) read back as an exit
// code, a self-removing temp dir, and loopback addresses.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>

#include <boost/test/unit_test.hpp>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::testing {

// The precondition of a test that needs root (it makes namespaces, takes another uid or
// capabilities, opens privileged sockets): run by another user, the suite skips it and
// says why instead of failing.
inline boost::test_tools::assertion_result needs_root(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(::geteuid() == 0);
    if (!r) r.message() << "needs root (namespaces, identity changes or privileged sockets)";
    return r;
}

// A failed check inside a child: its code becomes the exit status.
struct ChildFailure {
    int code;
};

inline void require(bool ok, int code, const std::string& what) {
    if (ok) return;
    std::fprintf(stderr, "child check %d failed: %s\n", code, what.c_str());
    throw ChildFailure{code};
}

inline std::string errno_name(int e) { return e ? std::strerror(e) : std::string("success"); }

inline void require_errno(int got, int want, int code, const std::string& what) {
    require(got == want, code, what + ": got " + errno_name(got) + ", want " + errno_name(want));
}

// r is a syscall result; checks it failed with want (or succeeded when want == 0).
inline void require_result(long r, int want, int code, const std::string& what) {
    require_errno(r < 0 ? errno : 0, want, code, what);
}

// A forked child that is killed and reaped if the test leaves early.
class Child {
public:
    // body runs in the child; returning is success, ChildFailure exits with
    // its code, any other exception exits 99.
    explicit Child(const std::function<void()>& body) {
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            int rc = 0;
            try {
                body();
            } catch (const ChildFailure& f) {
                rc = f.code;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child: %s\n", e.what());
                rc = 99;
            } catch (...) {
                rc = 99;
            }
            ::_exit(rc);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    // Exit status, or 128+signal.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t pid_ = -1;
};

inline int run_child(const std::function<void()>& body) { return Child(body).wait(); }

// Adapts a body that returns its exit status (0 = success) for Child.
inline std::function<void()> exiting_with(std::function<int()> body) {
    return [body = std::move(body)] {
        if (int rc = body(); rc != 0) throw ChildFailure{rc};
    };
}

// The message f throws, or "" when it throws nothing.
inline std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string& prefix = "sandlock-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw_errno("mkdtemp");
        path = tmpl;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        try {
            fs::remove_all(path);
        } catch (...) {
        }
    }
};

inline sockaddr_in loopback4(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

}  // namespace sandlock::testing
