#include <iostream>

#include "runtime/cli/cli.hpp"
#include "runtime/cli/table.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_list(Command& app, Context& ctx) {
    struct ListFlags {
        std::string format = "table";
        bool quiet = false;
    };
    auto f = std::make_shared<ListFlags>();
    auto* sub = app.add_subcommand("list", "list containers");
    sub->alias("ls");
    sub->add_option("-f,--format", f->format, "table or json")
        ->check(IsMember({"table", "json"}));
    sub->add_flag("-q,--quiet", f->quiet, "print only ids");
    ctx.handlers[sub] = [&ctx, f] {
        auto store = ctx.global.store();
        std::vector<nlohmann::ordered_json> states;
        for (const auto& id : store.list_ids()) {
            try {
                states.push_back(container::Container::load(store, id).state_json());
            } catch (const std::exception&) {
                // A container deleted while we list is simply not listed.
            }
        }
        if (f->quiet) {
            for (const auto& s : states) std::cout << s["id"].get<std::string>() << "\n";
        } else if (f->format == "json") {
            std::cout << nlohmann::ordered_json(states).dump() << "\n";
        } else {
            Table t({"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"});
            for (const auto& s : states)
                t.add({s["id"].get<std::string>(), std::to_string(s["pid"].get<int>()),
                       s["status"].get<std::string>(), s["bundle"].get<std::string>(),
                       s["created"].get<std::string>(),
                       s["owner"].get<std::string>().empty() ? "root" : s["owner"].get<std::string>()});
            std::cout << t.render();
        }
        return 0;
    };
}

}  // namespace sandlock::cli
