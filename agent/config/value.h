// One value of one Kind (schema.h): set from a TOML node or from text (an
// environment variable), checked against its row, and rendered back as TOML.
// Internal to agent/config/.
#pragma once

#include <string>
#include <toml++/toml.h>

#include "agent/config/schema.h"

namespace edgespool::agent::config_detail {

// Sets the field of `d` inside `owner` from a TOML node. A node of the wrong
// TOML type is reported at its own line, a bad value at `check_line` (the
// key's line in a [table], the element's line in an [[array]]). `name` is
// the key as reported, "section.key".
void SetFromNode(const KeyDesc& d, const std::string& name, void* owner, const toml::node& n,
                 int check_line, const ProblemSink& problems);
// The same from text: an environment variable, or a TOML string.
void SetFromText(const KeyDesc& d, const std::string& name, void* owner, const std::string& text,
                 int line, const ProblemSink& problems);

// Whether `config show` prints the key (Show), and its value as TOML.
bool IsShown(const KeyDesc& d, void* owner);
std::string RenderValue(const KeyDesc& d, void* owner);

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string Quote(const std::string& s);

}  // namespace edgespool::agent::config_detail
