// Rules that involve more than one key, which the schema's per-key ranges
// cannot state. Internal to agent/config/.
#pragma once

#include "agent/config/config.h"
#include "agent/config/schema.h"

namespace edgespool::agent::config_detail {

// One [[section]] element, right after its keys are parsed; `element` points
// to the struct of that section, `line` is where its table starts.
void CheckRoute(void* element, int line, const ProblemSink& problems);
void CheckAcl(void* element, int line, const ProblemSink& problems);  // resolves user, group
void CheckRateLimit(void* element, int line, const ProblemSink& problems);
void CheckSubscription(void* element, int line, const ProblemSink& problems);

// The whole configuration, after the file and the environment: fills the
// defaults that derive from other keys (node.id, uplink.client_id, the
// catch-all route) and checks what spans keys or needs the node's name.
void CheckConfig(Config& c, const ProblemSink& problems);

}  // namespace edgespool::agent::config_detail
