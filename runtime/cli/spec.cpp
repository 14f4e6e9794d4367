#include <fcntl.h>
#include <unistd.h>

#include "runtime/cli/cli.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"
#include "spec/config.hpp"

namespace sandlock::cli {

void register_spec(Command& app, Context& ctx) {
    struct SpecFlags {
        std::string bundle;
        bool rootless = false;
    };
    auto f = std::make_shared<SpecFlags>();
    auto* sub = app.add_subcommand("spec", "write a default config.json");
    sub->add_option("-b,--bundle", f->bundle, "directory to write config.json in");
    sub->add_flag("--rootless", f->rootless, "a config for a rootless container");
    ctx.handlers[sub] = [f] {
        std::string path = fs::join(f->bundle.empty() ? "." : f->bundle, "config.json");
        if (fs::exists(path)) throw Error("File " + path + " exists. Remove it first");
        std::string text = spec::default_spec(f->rootless).dump(1, '\t') + "\n";
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
        if (!fd) throw_errno("open " + path);
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            throw_errno("write " + path);
        return 0;
    };
}

}  // namespace sandlock::cli
