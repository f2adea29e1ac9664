// libFuzzer target: JSON bodies into every POST route of the HTTP front end (HttpApi over a
// real EngineService on the `null` backend; reply checks in fuzz_service.h).
//
// Input: [route] body... ; route (mod the number of routes) picks one of kRoutes, the routes
// src/server/http/http_api.cc serves with a JSON body.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "fuzz/fuzz_service.h"
#include "fuzz/fuzz_util.h"

namespace {

// The same order as JSON_ROUTES in fuzz/make_seeds.py.
constexpr const char* kRoutes[] = {"/embed",     "/v1/embeddings", "/rerank",  "/similarity",
                                   "/score",     "/tokenize",      "/",        "/v1/rerank",
                                   "/v2/rerank", "/v1/embed",      "/v2/embed"};
encserve::server::HttpApi* api = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  api = new encserve::server::HttpApi(encserve::fuzz::NullService(), "",
                                      std::chrono::milliseconds(5000));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  if (size < 1) return 0;
  const char* route = kRoutes[data[0] % std::size(kRoutes)];
  server::HttpApiRequest req{
      .method = "POST", .target = route, .body = std::string(fuzz::AsText(data + 1, size - 1))};
  fuzz::HandleAndCheck(*api, std::move(req));
  return 0;
}
