#include "runtime/util/error.hpp"

#include <cstring>

namespace sandlock {

SystemError::SystemError(const std::string& what, int err)
    : Error(what + ": " + std::strerror(err)), err_(err) {}

void throw_errno(const std::string& what) { throw SystemError(what, errno); }

void throw_errno(const std::string& what, int err) { throw SystemError(what, err); }

std::string with_context(const std::string& context, const std::string& reason) {
    return context.empty() ? reason : context + ": " + reason;
}

}  // namespace sandlock
