// The precompiled header (Makefile: PCH): headers that most files include and that cost
// the most to parse, nlohmann/json above all (~3 CPU-seconds a file). The Makefile
// compiles it once per build and passes it with -include to every runtime file, so
// nothing includes it by name; each file still includes what it uses.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
