// The dashboard's page: agent/fleet/dashboard.html, compiled in by CMake
// (agent/CMakeLists.txt turns the file into a string constant), so that the
// binary serves it with no file to install and no build step for the page.
#pragma once

#include <string_view>

namespace edgespool::agent::fleet {

std::string_view DashboardPage();

}  // namespace edgespool::agent::fleet
