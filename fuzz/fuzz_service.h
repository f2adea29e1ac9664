// The server side the protocol fuzzers share: one EngineService on the `null` backend (the real
// MiniLM tokenizer and config, zeros for results: no model work), created once per process and
// shut down at exit; and the HTTP route check used by http_fuzz and http_json_fuzz.
#pragma once

#include <string>

#include "server/engine_service.h"
#include "server/http/http_api.h"

namespace encserve::fuzz {

// The service (created on the first call; exit 2 if it cannot be). Warm-up off.
server::EngineService& NullService();

// Registers `fn` to run at exit before the service is shut down (e.g. a server's Shutdown).
void AtExitBeforeService(void (*fn)());

// Serves `req` through `api`, waits for the reply (a finding if none comes within kReplyWait or
// if a reply came twice) and checks it: status 200..599, a JSON body when the content type is
// JSON, {"error": string, ...} for errors.
server::HttpReply HandleAndCheck(server::HttpApi& api, server::HttpApiRequest req);

}  // namespace encserve::fuzz
