// 10,000 concurrent producer connections, each publishing: all acked, none
// lost; prints the server's peak RSS. Labelled slow (platform/dev.sh test --slow).
#include "tests/integration/producer_connections_util.h"

namespace edgespool::testing {
namespace {

TEST(ProducerConnections, TenThousand) { RunConnectionsTest(10000, 3); }

}  // namespace
}  // namespace edgespool::testing
