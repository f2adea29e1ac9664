// API-key check shared by the HTTP and gRPC front ends.
#pragma once

#include <string_view>

namespace encserve::server {

// True when `authorization` is exactly "Bearer <key>". The comparison of the key takes the same
// time whatever the position of the first differing byte (no timing oracle on the key); only
// the length is revealed, as a wrong length is rejected at once.
bool BearerMatches(std::string_view authorization, std::string_view key);

}  // namespace encserve::server
