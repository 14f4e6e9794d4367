// OCI hooks runner.
//
// A hook is an executable run with the container state JSON on its stdin. Like runc, the
// hook's stdout and stderr are captured and, when it fails, quoted in the error:
//   error running createRuntime hook #0: error running hook: exit status 1, stdout: , stderr: boom
//   error running createRuntime hook #1: hook ran past specified timeout of 2.0s
//   error running poststop hook #0: fork/exec /no/such: No such file or directory
//
// No threads and no static state: createContainer/startContainer hooks are run from a
// process that already sits in the container's namespaces. The hook runs in its own process
// group, so a timeout kills the hook and everything it started (SIGKILL to the group).
//
// The caller must not have SIGCHLD set to SIG_IGN (the hook would be auto-reaped and its exit
// status lost) nor reap children with waitpid(-1) while a hook runs.
#pragma once

#include <string>
#include <vector>

#include "spec/config.hpp"

namespace sandlock::hooks {

// Runs one hook: execve(hook.path, hook.args or {path}, hook.env exactly), state_json on
// stdin, in the caller's working directory. Throws sandlock::Error on failure (message as
// above, without the "error running <kind> hook #N: " prefix).
void run_hook(const spec::Hook& hook, const std::string& state_json);

// Runs hooks in order; the first failure throws "error running <kind> hook #<i>: <reason>".
void run_hooks(const std::vector<spec::Hook>& hooks, const std::string& state_json,
               const char* kind);

// For poststart/poststop, whose failures must not stop the runtime: runs every hook and
// returns one warning per failed hook (same wording as run_hooks), in order.
std::vector<std::string> run_hooks_warn(const std::vector<spec::Hook>& hooks,
                                        const std::string& state_json, const char* kind);

}  // namespace sandlock::hooks
