#include "runtime/cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iostream>

#include "runtime/linux/namespaces.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"
#include "spec/config.hpp"

// SANDLOCK_COMMIT: `git describe --always --dirty` of the tree this was built from,
// written by the Makefile into $(BUILD)/gen (only this file includes it, so a new
// commit recompiles this file alone). "unknown" outside a git checkout.
#if __has_include("sandlock_version.h")
#include "sandlock_version.h"
#endif
#ifndef SANDLOCK_COMMIT
#define SANDLOCK_COMMIT "unknown"
#endif

namespace sandlock::cli {

// The handles given out while the command line is declared; they live as long as run_cli.
struct Arena {
    std::deque<Command> commands;
    std::deque<Option> options;
};

Option* Option::required() {
    option_->required();
    return this;
}
Option* Option::check(const IsMember& allowed) {
    option_->check(CLI::IsMember(allowed.values));
    return this;
}
Option* Option::check(NonNegative) {
    option_->check(CLI::NonNegativeNumber);
    return this;
}
Option* Option::allow_extra_args(bool allow) {
    option_->allow_extra_args(allow);
    return this;
}
Option* Option::envname(const std::string& name) {
    option_->envname(name);
    return this;
}

Command* Command::add_subcommand(const std::string& name, const std::string& description) {
    return &arena_->commands.emplace_back(app_->add_subcommand(name, description), arena_);
}

template <typename T>
static Option* add(Arena* arena, CLI::App* app, const std::string& name, T& value,
                   const std::string& description) {
    return &arena->options.emplace_back(app->add_option(name, value, description));
}
Option* Command::add_option(const std::string& name, std::string& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, std::vector<std::string>& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, std::vector<uint32_t>& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, int& value, const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, std::optional<uint16_t>& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, std::optional<int64_t>& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}
Option* Command::add_option(const std::string& name, std::optional<uint64_t>& value,
                            const std::string& description) {
    return add(arena_, app_, name, value, description);
}

Option* Command::add_flag(const std::string& name, bool& value, const std::string& description) {
    return &arena_->options.emplace_back(app_->add_flag(name, value, description));
}
Command* Command::alias(const std::string& name) {
    app_->alias(name);
    return this;
}
Command* Command::group(const std::string& name) {
    app_->group(name);
    return this;
}
Command* Command::footer(const std::string& text) {
    app_->footer(text);
    return this;
}

container::StateStore GlobalOptions::store() const {
    return container::StateStore(root.empty() ? container::default_root() : root);
}

void GlobalOptions::prepare_create(container::CreateOptions& opts) const {
    opts.operator_config = config::load_operator_config(config);
    const bool allowed = supervisor_mode.empty() ? opts.operator_config.supervisor_mode_allowed.value_or(false)
                                                 : supervisor_mode == "allow";
    opts.supervisor_mode_allowed = allowed || os::rootless();
    opts.systemd_cgroup = systemd_cgroup;
    // The shim reads its audit.log cap from the environment; an explicit one wins.
    if (opts.operator_config.audit_max_size && !std::getenv(shim::kAuditMaxSizeEnv))
        ::setenv(shim::kAuditMaxSizeEnv, std::to_string(*opts.operator_config.audit_max_size).c_str(), 1);
}

static bool is_flag_without_value(const CLI::App& sub, const std::string& token) {
    std::string name = token.substr(0, token.find('='));
    const CLI::Option* opt = nullptr;
    try {
        opt = sub.get_option(name);
    } catch (const CLI::OptionNotFound&) {
        return true;  // unknown flags are CLI11's to report
    }
    return opt->get_expected_min() == 0 || token.find('=') != std::string::npos;
}

std::vector<std::string> split_off_command(const CLI::App& sub, std::vector<std::string>& args,
                                           size_t positionals_kept) {
    size_t i = 0, positionals = 0;
    while (i < args.size()) {
        const std::string& a = args[i];
        if (a == "--") {
            std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
            args.resize(i);
            return rest;
        }
        if (a.size() > 1 && a[0] == '-') {
            bool takes_value = !is_flag_without_value(sub, a);
            i += takes_value ? 2 : 1;
            continue;
        }
        if (positionals == positionals_kept) break;
        ++positionals;
        ++i;
    }
    std::vector<std::string> rest(args.begin() + static_cast<long>(std::min(i, args.size())),
                                  args.end());
    args.resize(std::min(i, args.size()));
    return rest;
}

static void print_version() {
    std::cout << "sandlock-runc version " << kVersion << "\n"
              << "commit: " << SANDLOCK_COMMIT << "\n"
              << "spec: " << spec::kOciVersion << "\n";
}

static log::Format parse_log_format(const std::string& f) {
    if (f == "text") return log::Format::Text;
    if (f == "json") return log::Format::Json;
    throw Error("invalid log-format: " + f);
}

static void explain_accepted_flags(const GlobalOptions& g) {
    if (!g.criu.empty()) log::debug("--criu is accepted but checkpoint/restore is not supported");
    if (g.rootless != "auto")
        log::debug("--rootless " + g.rootless + " is accepted; rootless mode follows the euid");
}

// Finds `exec` (or `ps`) after the global flags and moves the command
// (or the ps options) that follows the container id to ctx.
static void split_exec_command(const CLI::App& app, std::vector<std::string>& args, Context& ctx) {
    std::vector<std::string> globals = args;
    std::vector<std::string> after = split_off_command(app, globals, 0);
    if (after.empty() || (after.front() != "exec" && after.front() != "ps")) return;
    std::string name = after.front();
    std::vector<std::string> exec_args(after.begin() + 1, after.end());
    ctx.trailing_command = split_off_command(*app.get_subcommand(name), exec_args, 1);
    args = globals;
    args.push_back(name);
    args.insert(args.end(), exec_args.begin(), exec_args.end());
}

int run_cli(int argc, char** argv) {
    Context ctx;
    CLI::App app{"sandlock-runc: an OCI runtime with per-container egress allowlists",
                 "sandlock-runc"};
    Arena arena;
    Command root(&app, &arena);
    app.set_help_all_flag("--help-all", "Show help for every subcommand");
    bool version = false;
    app.add_flag("-v,--version", version, "print the version");
    app.add_option("--root", ctx.global.root,
                   "root directory for container state (default /run/sandlock-runc, or "
                   "$XDG_RUNTIME_DIR/sandlock-runc when rootless)");
    app.add_option("--log", ctx.global.log, "log file (default stderr)");
    app.add_option("--log-format", ctx.global.log_format, "log format: text or json")
        ->check(CLI::IsMember({"text", "json"}));
    app.add_flag("--debug", ctx.global.debug, "enable debug logging");
    app.add_flag("--systemd-cgroup", ctx.global.systemd_cgroup,
                 "systemd cgroup driver: cgroupsPath is slice:prefix:name, the cgroup a "
                 "transient scope (cgroupfs without systemd)");
    app.add_option("--rootless", ctx.global.rootless, "true, false or auto (accepted)");
    app.add_option("--criu", ctx.global.criu, "path to criu (accepted, unused)");
    app.add_option("--config", ctx.global.config,
                   "the operator's configuration (sandlock-runc-config(5); default $SANDLOCK_RUNC_CONFIG, "
                   "else /etc/sandlock-runc/config.yaml when it exists)");
    app.add_option("--supervisor-mode", ctx.global.supervisor_mode,
                   "allow: an egress policy whose kernel programs cannot be attached runs with "
                   "the seccomp supervisor alone; deny (default as root, unless the configuration's "
                   "supervisor_mode says allow): create fails")
        ->envname("SANDLOCK_RUNC_SUPERVISOR_MODE")
        ->check(CLI::IsMember({"allow", "deny"}));

    register_create(root, ctx);
    register_start(root, ctx);
    register_run(root, ctx);
    register_state(root, ctx);
    register_kill(root, ctx);
    register_delete(root, ctx);
    register_exec(root, ctx);
    register_list(root, ctx);
    register_ps(root, ctx);
    register_spec(root, ctx);
    register_features(root, ctx);
    register_pause(root, ctx);
    register_resume(root, ctx);
    register_update(root, ctx);
    register_events(root, ctx);
    register_egress(root, ctx);
    register_shim(root, ctx);
    auto* help = app.add_subcommand("help", "Show a list of commands or one command's help");
    std::vector<std::string> help_topic;
    help->add_option("command", help_topic);

    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        split_exec_command(app, args, ctx);
        std::reverse(args.begin(), args.end());  // CLI11 takes them reversed
        app.parse(args);
        log::configure(ctx.global.log, parse_log_format(ctx.global.log_format), ctx.global.debug);
        explain_accepted_flags(ctx.global);
        if (version) {
            print_version();
            return 0;
        }
        if (help->parsed() || app.get_subcommands().empty()) {
            if (!help_topic.empty()) {
                auto* sub = app.get_subcommand(help_topic.front());
                std::cout << sub->help();
            } else {
                std::cout << app.help();
            }
            return 0;
        }
        for (const auto* sub : app.get_subcommands()) {
            for (const auto& [command, handler] : ctx.handlers)
                if (command->app() == sub) return handler();
        }
        return 0;
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        log::fatal(e.what());
        return 1;
    } catch (const std::exception& e) {
        log::fatal(e.what());
        return 1;
    }
}

}  // namespace sandlock::cli
