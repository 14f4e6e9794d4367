// `run`: create + start, then (unless --detach) wait, forward signals, delete.
#pragma once

#include "runtime/container/create.hpp"

namespace sandlock::container {

int run_container(const StateStore& store, CreateOptions opts, bool detach, bool keep);

}  // namespace sandlock::container
