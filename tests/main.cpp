// The Boost.Test module; every other tests/*.cpp adds suites to it.
#define BOOST_TEST_MODULE sandlock_runc_unit
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
