// start, kill, delete, state, list, ps: the commands that act on a container's record.
#pragma once

#include <string>
#include <vector>

#include "runtime/container/state.hpp"

namespace sandlock::container {

void start_container(const StateStore& store, const std::string& id);

// "9", "KILL", "SIGKILL", "kill" -> 9; throws `unknown signal "X"`.
int parse_signal(const std::string& text);
void kill_container(const StateStore& store, const std::string& id, int sig, bool all);

void delete_container(const StateStore& store, const std::string& id, bool force);

nlohmann::ordered_json container_state_json(const StateStore& store, const std::string& id);
std::vector<pid_t> container_pids(const StateStore& store, const std::string& id);

}  // namespace sandlock::container
