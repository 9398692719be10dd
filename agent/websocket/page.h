// The built-in page served at `/` of the WebSocket listener: one HTML file
// with its script and style inline (no CDN, no build step), compiled into the
// binary. It connects back to the same listener, subscribes to the downlink,
// the uplink and the status (session_message.h), and shows the live messages
// and the agent's status.
//
// Settings come from the URL fragment, which the browser never sends to the
// server: /#token=SECRET&session=hmi&down=down/%23&up=%23 (down/up: filters,
// comma-separated; session empty: anonymous). The token may also be typed in.
#pragma once

#include <string_view>

namespace edgespool::agent::websocket {

std::string_view PageHtml();

}  // namespace edgespool::agent::websocket
