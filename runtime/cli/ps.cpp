#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>

#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cli {
namespace {

std::string run_ps(const std::vector<std::string>& ps_args) {
    std::string cmd = "ps";
    for (const auto& a : ps_args) {
        std::string quoted = "'";
        for (char c : a) quoted += (c == '\'') ? std::string("'\\''") : std::string(1, c);
        cmd += " " + quoted + "'";
    }
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw_errno("run ps");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    if (status != 0) throw Error("ps " + (ps_args.empty() ? "" : ps_args.front()) + ": exit status " +
                                 std::to_string(WEXITSTATUS(status)));
    return out;
}

// Keeps the header and the lines whose PID column is one of pids.
std::string filter_ps(const std::string& text, const std::set<pid_t>& pids) {
    std::istringstream in(text);
    std::string header;
    std::getline(in, header);
    std::istringstream hs(header);
    std::string col;
    int pid_col = -1;
    for (int i = 0; hs >> col; ++i)
        if (col == "PID") pid_col = i;
    if (pid_col < 0) throw Error("couldn't find PID field in ps output");
    std::string out = header + "\n", line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string field;
        for (int i = 0; i <= pid_col && ls >> field; ++i) {
        }
        try {
            if (pids.count(static_cast<pid_t>(std::stol(field)))) out += line + "\n";
        } catch (const std::exception&) {
        }
    }
    return out;
}

}  // namespace

void register_ps(Command& app, Context& ctx) {
    struct PsFlags {
        std::string id;
        std::string format = "table";
    };
    auto f = std::make_shared<PsFlags>();
    auto* sub = app.add_subcommand("ps", "list the processes of a container");
    sub->add_option("-f,--format", f->format, "table or json")
        ->check(IsMember({"table", "json"}));
    sub->add_option("id", f->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, f] {
        auto pids = container::Container::load(ctx.global.store(), f->id).pids();
        std::sort(pids.begin(), pids.end());
        if (f->format == "json") {
            std::cout << nlohmann::json(pids).dump() << "\n";
            return 0;
        }
        std::vector<std::string> ps_args = ctx.trailing_command;
        if (ps_args.empty()) ps_args = {"-ef"};
        std::cout << filter_ps(run_ps(ps_args), std::set<pid_t>(pids.begin(), pids.end()));
        return 0;
    };
}

}  // namespace sandlock::cli
