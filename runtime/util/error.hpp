// One error convention for the whole program: failures are thrown as
// sandlock::Error (a message ready for the user) and caught once, in main,
// which prints the single line runc's callers expect and exits 1.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace sandlock {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// A failed system call: the message ends with strerror(errno), like runc's.
class SystemError : public Error {
public:
    SystemError(const std::string& what, int err);
    int code() const noexcept { return err_; }

private:
    int err_;
};

[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

// Returns a copy of s with a context prefix: "what: reason".
std::string with_context(const std::string& context, const std::string& reason);

}  // namespace sandlock
