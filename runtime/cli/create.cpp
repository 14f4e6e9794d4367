#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

// Flags shared by create and run.
void add_create_flags(Command* sub, container::CreateOptions& o) {
    sub->add_option("-b,--bundle", o.bundle, "path to the bundle (default: current directory)");
    sub->add_option("--console-socket", o.console_socket,
                    "unix socket that receives the pty master (runc protocol)");
    sub->add_option("--pid-file", o.pid_file, "file to write the container init's pid to");
    sub->add_flag("--no-pivot", o.no_pivot, "use MS_MOVE + chroot instead of pivot_root");
    sub->add_flag("--no-new-keyring", o.no_new_keyring, "keep the caller's session keyring");
    sub->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1) to init")
        ->check(NonNegativeNumber);
    sub->add_option("id", o.id, "container id")->required();
}

void register_create(Command& app, Context& ctx) {
    auto opts = std::make_shared<container::CreateOptions>();
    auto* sub = app.add_subcommand("create", "create a container (init waits for start)");
    add_create_flags(sub, *opts);
    // man/generate.sh turns this into the page's DESCRIPTION.
    sub->footer(
        "Hooks: prestart, createRuntime and createContainer get the state with \"status\": "
        "\"created\" on stdin, as crun's (runc says \"creating\"); startContainer \"created\", "
        "poststart \"running\", poststop \"stopped\".\n"
        "A namespace type absent from linux.namespaces is the runtime's own. Without a mount "
        "namespace the rootfs is entered with chroot and the fields that need a mount (mounts, "
        "root.readonly, linux.rootfsPropagation, linux.maskedPaths, linux.readonlyPaths, "
        "linux.devices, linux.sysctl, process.terminal, an egress policy) are refused.\n"
        "A field the host or runtime cannot honour (process.apparmorProfile without AppArmor, "
        "SELinux labels, linux.intelRdt, linux.resources.network without net_cls/net_prio, ...) "
        "fails create with one line naming it, exit 1, nothing left behind; README.md lists "
        "every such field.");
    ctx.handlers[sub] = [&ctx, opts] {
        ctx.global.prepare_create(*opts);
        opts->detached = true;
        container::Container::create(ctx.global.store(), *opts);
        return 0;
    };
}

}  // namespace sandlock::cli
