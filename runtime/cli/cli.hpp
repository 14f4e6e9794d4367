// runc-compatible command line: global flags, one file per subcommand.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/container/create.hpp"
#include "runtime/container/state.hpp"

// CLI11 is header-only (Debian's 2.1 has no precompiled mode) and costs ~6 CPU-seconds
// in every file that includes it, so only cli.cpp does: the subcommand files declare
// their flags through Command and Option below, which forward to CLI11 one to one.
namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace sandlock::cli {

struct Arena;  // owns the Command and Option handles (cli.cpp)

// A value must be one of these (CLI::IsMember).
struct IsMember {
    std::vector<std::string> values;
};
// A number >= 0 (CLI::NonNegativeNumber).
struct NonNegative {};
inline constexpr NonNegative NonNegativeNumber{};

// A handle on a CLI::Option; each call forwards to the CLI11 method of the same name.
class Option {
public:
    explicit Option(CLI::Option* option) : option_(option) {}
    Option* required();
    Option* check(const IsMember& allowed);
    Option* check(NonNegative);
    Option* envname(const std::string& name);
    // false: a repeatable option takes one value per use (`--allow A --allow B ID`), so
    // that the positional after it is not swallowed.
    Option* allow_extra_args(bool allow);

private:
    CLI::Option* option_;
};

// A handle on a CLI::App (the program or a subcommand); each call forwards to the CLI11
// method of the same name. add_option takes the variable's own type, as CLI11 does.
class Command {
public:
    Command(CLI::App* app, Arena* arena) : app_(app), arena_(arena) {}
    Command* add_subcommand(const std::string& name, const std::string& description);
    Option* add_option(const std::string& name, std::string& value, const std::string& description);
    Option* add_option(const std::string& name, std::vector<std::string>& value,
                       const std::string& description);
    Option* add_option(const std::string& name, std::vector<uint32_t>& value,
                       const std::string& description);
    Option* add_option(const std::string& name, int& value, const std::string& description);
    Option* add_option(const std::string& name, std::optional<uint16_t>& value,
                       const std::string& description);
    Option* add_option(const std::string& name, std::optional<int64_t>& value,
                       const std::string& description);
    Option* add_option(const std::string& name, std::optional<uint64_t>& value,
                       const std::string& description);
    Option* add_flag(const std::string& name, bool& value, const std::string& description);
    Command* alias(const std::string& name);
    Command* group(const std::string& name);
    Command* footer(const std::string& text);
    CLI::App* app() const { return app_; }

private:
    CLI::App* app_;
    Arena* arena_;
};

struct GlobalOptions {
    std::string root;
    std::string log;
    std::string log_format = "text";
    bool debug = false;
    bool systemd_cgroup = false;
    std::string rootless = "auto";
    std::string criu;
    std::string supervisor_mode;  // --supervisor-mode / SANDLOCK_RUNC_SUPERVISOR_MODE; "": the config's
    std::string config;           // --config; "": $SANDLOCK_RUNC_CONFIG or /etc/sandlock-runc/config.yaml

    container::StateStore store() const;
    // create's and run's settings from the global flags and the operator's configuration
    // (read here, so a malformed one fails the command): the configuration itself, and
    // whether an egress policy may run with the seccomp supervisor alone when the kernel
    // programs cannot be attached — when the flag or else the configuration allows it
    // (default: deny), and always without root (rootless), where it is the only mode.
    void prepare_create(container::CreateOptions& opts) const;
};

// Subcommands register a handler; run_cli calls the parsed one after the
// whole command line is read. Handlers return the exit code; errors are thrown.
struct Context {
    GlobalOptions global;
    std::map<const Command*, std::function<int()>> handlers;
    // exec's command and its arguments, split off before CLI11 parses.
    std::vector<std::string> trailing_command;
};

// Each registers one subcommand (and its aliases) on app.
void register_create(Command& app, Context& ctx);
void register_start(Command& app, Context& ctx);
void register_run(Command& app, Context& ctx);
void register_state(Command& app, Context& ctx);
void register_kill(Command& app, Context& ctx);
void register_delete(Command& app, Context& ctx);
void register_exec(Command& app, Context& ctx);
void register_list(Command& app, Context& ctx);
void register_ps(Command& app, Context& ctx);
void register_spec(Command& app, Context& ctx);
void register_features(Command& app, Context& ctx);
void register_pause(Command& app, Context& ctx);
void register_resume(Command& app, Context& ctx);
void register_update(Command& app, Context& ctx);
void register_events(Command& app, Context& ctx);
void register_egress(Command& app, Context& ctx);
void register_shim(Command& app, Context& ctx);  // hidden: the egress supervisor

int run_cli(int argc, char** argv);

// Splits `exec [flags] ID CMD ARGS...` at the first argument that is neither
// a flag of the subcommand nor a flag's value: CMD's own flags must not be
// parsed as ours (runc's CLI stops parsing at the first positional too).
std::vector<std::string> split_off_command(const CLI::App& sub, std::vector<std::string>& args,
                                           size_t positionals_kept);

inline constexpr const char* kVersion = "0.1.0";

}  // namespace sandlock::cli
