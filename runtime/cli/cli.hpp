// runc-compatible command line: global flags, one file per subcommand.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/container/state.hpp"

namespace sandlock::cli {

struct GlobalOptions {
    std::string root;
    std::string log;
    std::string log_format = "text";
    bool debug = false;
    bool systemd_cgroup = false;
    std::string rootless = "auto";
    std::string criu;
    std::string supervisor_mode = "deny";  // --supervisor-mode / SANDLOCK_RUNC_SUPERVISOR_MODE

    container::StateStore store() const;
    // Whether an egress policy may run with the seccomp supervisor alone, when the
    // kernel programs cannot be attached: when the operator allows it, and always
    // without root (rootless), where it is the only mode.
    bool supervisor_mode_allowed() const;
};

// Subcommands register a handler; run_cli calls the parsed one after the
// whole command line is read. Handlers return the exit code; errors are thrown.
struct Context {
    GlobalOptions global;
    std::map<const CLI::App*, std::function<int()>> handlers;
    // exec's command and its arguments, split off before CLI11 parses.
    std::vector<std::string> trailing_command;
};

// Each registers one subcommand (and its aliases) on app.
void register_create(CLI::App& app, Context& ctx);
void register_start(CLI::App& app, Context& ctx);
void register_run(CLI::App& app, Context& ctx);
void register_state(CLI::App& app, Context& ctx);
void register_kill(CLI::App& app, Context& ctx);
void register_delete(CLI::App& app, Context& ctx);
void register_exec(CLI::App& app, Context& ctx);
void register_list(CLI::App& app, Context& ctx);
void register_ps(CLI::App& app, Context& ctx);
void register_spec(CLI::App& app, Context& ctx);
void register_features(CLI::App& app, Context& ctx);
void register_pause(CLI::App& app, Context& ctx);
void register_resume(CLI::App& app, Context& ctx);
void register_update(CLI::App& app, Context& ctx);
void register_events(CLI::App& app, Context& ctx);
void register_egress(CLI::App& app, Context& ctx);
void register_shim(CLI::App& app, Context& ctx);  // hidden: the egress supervisor

int run_cli(int argc, char** argv);

// Splits `exec [flags] ID CMD ARGS...` at the first argument that is neither
// a flag of the subcommand nor a flag's value: CMD's own flags must not be
// parsed as ours (runc's CLI stops parsing at the first positional too).
std::vector<std::string> split_off_command(const CLI::App& sub, std::vector<std::string>& args,
                                           size_t positionals_kept);

inline constexpr const char* kVersion = "0.1.0";

}  // namespace sandlock::cli
