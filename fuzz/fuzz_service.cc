#include "fuzz/fuzz_service.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "fuzz/fuzz_util.h"

namespace encserve::fuzz {
namespace {

constexpr auto kReplyWait = std::chrono::seconds(8);  // under libFuzzer's -timeout=10

server::EngineService* service = nullptr;
std::vector<void (*)()>* before_service = nullptr;

void ShutdownAll() {
  for (auto it = before_service->rbegin(); it != before_service->rend(); ++it) (*it)();
  service->Shutdown(scheduler::Clock::now());
  delete service;
  service = nullptr;
}

struct ReplySlot {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  server::HttpReply reply;
};

// The previous request's slot: its reply must not run a second time later.
std::shared_ptr<ReplySlot> previous;

void CheckReply(const server::HttpReply& r) {
  FUZZ_CHECK(r.status >= 200 && r.status <= 599, "HTTP status " + std::to_string(r.status));
  if (r.content_type != "application/json") return;
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded(), "reply body is not JSON: " + r.body.substr(0, 200));
  if (r.status >= 400) {
    FUZZ_CHECK(j.is_object() && j.contains("error") && j["error"].is_string(),
               "error reply without an error message: " + r.body.substr(0, 200));
  }
}

}  // namespace

server::EngineService& NullService() {
  if (service != nullptr) return *service;
  server::EngineServiceOptions o;
  o.pipeline.backend = "null";
  o.pipeline.common.model_dir = ModelDir();
  o.pipeline.common.threads = 1;
  o.pipeline.common.replicas = 1;
  o.warmup = false;
  auto s = server::EngineService::Create(o);
  if (!s.ok()) SetupFailed("null-backend EngineService: " + s.status().ToString());
  service = s->release();
  before_service = new std::vector<void (*)()>();
  std::atexit(ShutdownAll);
  return *service;
}

void AtExitBeforeService(void (*fn)()) {
  NullService();
  before_service->push_back(fn);
}

server::HttpReply HandleAndCheck(server::HttpApi& api, server::HttpApiRequest req) {
  if (previous) {
    std::lock_guard<std::mutex> lock(previous->mu);
    FUZZ_CHECK(previous->calls == 1, "a reply ran " + std::to_string(previous->calls) + " times");
  }
  auto slot = std::make_shared<ReplySlot>();
  previous = slot;
  api.Handle(std::move(req), server::RequestContext(), [slot](server::HttpReply r) {
    std::lock_guard<std::mutex> lock(slot->mu);
    if (++slot->calls == 1) slot->reply = std::move(r);
    slot->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(slot->mu);
  const bool replied = slot->cv.wait_for(lock, kReplyWait, [&] { return slot->calls > 0; });
  FUZZ_CHECK(replied, "no reply within 8 s");
  server::FinishReply(slot->reply);  // (the body, as the session builds it before writing)
  CheckReply(slot->reply);
  return slot->reply;
}

}  // namespace encserve::fuzz
