#include "agent/cli.h"

#include <cstdio>

namespace edgespool::agent {

int CliMain(int argc, char** argv) {
  std::puts("edgespool");
  return kExitOk;
}

}  // namespace edgespool::agent
