#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_exec(Command& app, Context& ctx) {
    auto o = std::make_shared<container::ExecOptions>();
    auto* sub = app.add_subcommand("exec", "run a process in a running container");
    sub->add_option("--console-socket", o->console_socket, "socket that receives the pty master");
    sub->add_option("--cwd", o->cwd, "working directory");
    sub->add_option("-e,--env", o->env, "set an environment variable (repeatable)");
    sub->add_flag("-t,--tty", o->tty, "allocate a pty");
    sub->add_option("-u,--user", o->user, "uid[:gid]");
    sub->add_option("-g,--additional-gids", o->additional_gids, "additional gid (repeatable)");
    sub->add_option("-p,--process", o->process_file, "process.json to run");
    sub->add_flag("-d,--detach", o->detach, "do not wait for the process");
    sub->add_option("--pid-file", o->pid_file, "file to write the process's pid to");
    sub->add_option("-c,--cap", o->caps, "add a capability (repeatable)");
    sub->add_flag("--no-new-privs", o->no_new_privs, "set no_new_privs for the process");
    sub->add_option("--preserve-fds", o->preserve_fds, "pass N extra fds")
        ->check(NonNegativeNumber);
    sub->add_option("--apparmor", o->apparmor,
                    "AppArmor profile for the process (refused where AppArmor is not enabled)");
    sub->add_option("--process-label", o->process_label,
                    "SELinux label for the process (refused: SELinux is not supported)");
    sub->add_option("--cgroup", o->cgroup, "sub-cgroup to run in (refused: not supported)");
    auto ignore_paused = std::make_shared<bool>(false);
    sub->add_flag("--ignore-paused", *ignore_paused, "accepted");
    sub->add_option("id", o->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, o, ignore_paused] {
        o->args = ctx.trailing_command;
        return container::Container::load(ctx.global.store(), o->id).exec(*o);
    };
}

}  // namespace sandlock::cli
