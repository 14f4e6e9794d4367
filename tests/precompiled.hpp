// The tests' precompiled header (Makefile: PCH): the runtime's plus Boost.Test. Passed
// with -include to every tests/*.cpp but main.cpp, whose BOOST_TEST_MODULE must come
// before Boost.Test's header.

#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "runtime/precompiled.hpp"
