// Transitional: the configuration moved to agent/config/config.h. This
// forwarder goes once every caller includes that path.
#pragma once

#include "agent/config/config.h"
