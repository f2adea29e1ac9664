#include "server/auth.h"

namespace encserve::server {

bool BearerMatches(std::string_view authorization, std::string_view key) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() != kBearer.size() + key.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return false;
  }
  const volatile char* given = authorization.data() + kBearer.size();
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  }
  return diff == 0;
}

}  // namespace encserve::server
