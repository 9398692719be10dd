// 1,000 concurrent producer connections, each publishing: all acked, none
// lost. (10,000: producer_connections_slow_test.cc.)
#include "tests/integration/producer_connections_util.h"

namespace edgespool::testing {
namespace {

TEST(ProducerConnections, Thousand) { RunConnectionsTest(1000, 3); }

}  // namespace
}  // namespace edgespool::testing
