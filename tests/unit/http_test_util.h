// Test helpers for the HTTP front end: a FakeService with a worker ("batcher") thread that can
// fail, or hold requests until released / cancelled / past their deadline, and a small
// synchronous Beast client.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "server/service.h"

namespace encserve::testing {

using server::Clock;
using server::RequestContext;

// Embed: row = [len(text), 1, 0, 0]. Texts starting with "hold" wait for Release(), the
// deadline or cancellation. Scores: pair -> len(a) + len(b); rerank score = len(document);
// similarity = 1 / (1 + |len(source) - len(s)|). Tokenize: one token per byte (id = byte),
// plus [CLS]=101 / [SEP]=102 as special tokens when add_special_tokens.
class FakeService : public server::Service {
 public:
  FakeService() : worker_([this] { Run(); }) {}
  ~FakeService() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
    for (auto& t : tasks_) t();  // every done runs exactly once
    for (auto& h : held_) h.fail(Cancelled("service shutting down"));
  }

  void Embed(server::EmbedParams p, RequestContext ctx,
             server::Done<server::EmbedResult> done) override {
    bool hold = false;
    for (const auto& t : p.texts) hold = hold || t.rfind("hold", 0) == 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      last_embed = p;
      last_deadline = ctx.deadline;
    }
    server::EmbedResult r;
    r.rows = int(p.texts.size());
    r.dim = 4;
    for (const auto& t : p.texts) {
      r.data.insert(r.data.end(), {float(t.size()), 1.0f, 0.0f, 0.0f});
      r.prompt_tokens += int64_t(t.size());
    }
    if (ctx.timing) {  // fixed times: 0.5 ms tokenising, 1 ms queued, 2 ms computing
      *ctx.timing = server::RequestTiming{0.0005, 0.001, 0.002, r.rows, r.prompt_tokens};
    }
    Queue<server::EmbedResult>(std::move(r), std::move(ctx), std::move(done), hold);
  }
  void Score(server::ScoreParams p, RequestContext ctx,
             server::Done<server::ScoreResult> done) override {
    server::ScoreResult r;
    for (auto& [a, b] : p.pairs) r.scores.push_back(float(a.size() + b.size()));
    Queue<server::ScoreResult>(std::move(r), std::move(ctx), std::move(done), false);
  }
  void Rerank(server::RerankParams p, RequestContext ctx,
              server::Done<server::RerankResult> done) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      last_rerank = p;
    }
    server::RerankResult r;
    for (size_t i = 0; i < p.documents.size(); ++i) {
      server::RankedDocument d{int(i), float(p.documents[i].size()), std::nullopt};
      if (p.return_documents) d.document = p.documents[i];
      r.results.push_back(d);
    }
    std::stable_sort(r.results.begin(), r.results.end(),
                     [](const auto& a, const auto& b) { return a.score > b.score; });
    if (p.top_n && size_t(*p.top_n) < r.results.size()) r.results.resize(*p.top_n);
    Queue<server::RerankResult>(std::move(r), std::move(ctx), std::move(done), false);
  }
  void Similarity(server::SimilarityParams p, RequestContext ctx,
                  server::Done<server::SimilarityResult> done) override {
    server::SimilarityResult r;
    for (auto& s : p.sentences) {
      r.scores.push_back(1.0f / (1.0f + std::abs(float(p.source_sentence.size()) - s.size())));
    }
    Queue<server::SimilarityResult>(std::move(r), std::move(ctx), std::move(done), false);
  }
  StatusOr<server::TokenizeResult> Tokenize(const server::TokenizeParams& p) const override {
    if (auto f = Fail()) return *f;
    server::TokenizeResult r;
    for (const auto& t : p.texts) {
      std::vector<server::Token> toks;
      if (p.add_special_tokens) toks.push_back({101, "[CLS]", true});
      for (char c : t) toks.push_back({int32_t(static_cast<unsigned char>(c)), {c}, false});
      if (p.add_special_tokens) toks.push_back({102, "[SEP]", true});
      r.tokens.push_back(toks);
    }
    return r;
  }
  server::ServiceInfo Info() const override {
    server::ServiceInfo i;
    i.model_id = "fake-model";
    i.model_kind = cross_encoder ? "cross-encoder" : "embedding";
    i.embedding_dim = 4;
    i.max_input_length = 512;
    return i;
  }
  bool Ready() const override { return ready; }
  Status AdmitAny(uint64_t client) const override {
    std::lock_guard<std::mutex> l(mu_);
    ++admit_any_calls;
    (void)client;
    return admit_any_.value_or(Status::Ok());
  }
  // AdmitAny answers `status` (nullopt: OK).
  void SetAdmitAny(std::optional<Status> status) {
    std::lock_guard<std::mutex> l(mu_);
    admit_any_ = std::move(status);
  }
  int AdmitAnyCalls() {
    std::lock_guard<std::mutex> l(mu_);
    return admit_any_calls;
  }
  void RecordRequest(std::string_view route, int code, double seconds) override {
    std::lock_guard<std::mutex> l(mu_);
    records.emplace_back(std::string(route), code);
  }
  std::string MetricsText() const override { return "encserve_requests_total 7\n"; }
  std::string StatsJson() const override {
    return R"({"time":1,"metrics":{"encserve_requests_total":{"type":"counter","help":"",)"
           R"("samples":[{"labels":{},"value":7}]}}})";
  }

  // Test controls and observations.
  size_t Held() {
    std::lock_guard<std::mutex> l(mu_);
    return held_.size();
  }
  bool WaitHeld(size_t n) {
    return WaitFor([&] { return Held() >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    release_ = true;
  }
  bool AnyHeldCancelled() {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& h : held_) {
      if (h.cancelled->load()) return true;
    }
    return false;
  }
  std::optional<server::EmbedParams> LastEmbed() {
    std::lock_guard<std::mutex> l(mu_);
    return last_embed;
  }
  std::optional<server::RerankParams> LastRerank() {
    std::lock_guard<std::mutex> l(mu_);
    return last_rerank;
  }
  Clock::time_point LastDeadline() {
    std::lock_guard<std::mutex> l(mu_);
    return last_deadline;
  }
  std::vector<std::pair<std::string, int>> Records() {
    std::lock_guard<std::mutex> l(mu_);
    return records;
  }
  static bool WaitFor(const std::function<bool()>& pred, double seconds = 10) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
      if (Clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  // Every call fails with `status` (nullopt: none do).
  void SetFail(std::optional<Status> status) {
    std::lock_guard<std::mutex> l(mu_);
    fail_ = std::move(status);
  }
  std::optional<Status> Fail() const {
    std::lock_guard<std::mutex> l(mu_);
    return fail_;
  }
  std::atomic<bool> ready{true};
  std::atomic<bool> cross_encoder{false};  // Info().model_kind

 private:
  std::optional<Status> fail_;
  std::optional<Status> admit_any_;
  mutable int admit_any_calls = 0;
  std::optional<server::EmbedParams> last_embed;
  std::optional<server::RerankParams> last_rerank;
  Clock::time_point last_deadline;
  std::vector<std::pair<std::string, int>> records;

  struct HeldRequest {
    std::function<void()> ok;
    std::function<void(Status)> fail;
    Clock::time_point deadline;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  template <typename T>
  void Queue(T result, RequestContext ctx, server::Done<T> done, bool hold) {
    auto shared = std::make_shared<T>(std::move(result));
    std::lock_guard<std::mutex> l(mu_);
    std::optional<Status> f = fail_;
    if (f) {
      tasks_.push_back([done, f] { done(*f); });
    } else if (hold) {
      held_.push_back({[done, shared] { done(std::move(*shared)); },
                       [done](Status s) { done(std::move(s)); }, ctx.deadline, ctx.cancelled});
    } else {
      tasks_.push_back([done, shared] { done(std::move(*shared)); });
    }
    cv_.notify_all();
  }

  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      cv_.wait_for(l, std::chrono::milliseconds(2));
      std::vector<std::function<void()>> run(tasks_.begin(), tasks_.end());
      tasks_.clear();
      for (size_t i = 0; i < held_.size();) {
        HeldRequest& h = held_[i];
        if (h.cancelled->load()) {
          run.push_back([f = h.fail] { f(Cancelled("client went away")); });
        } else if (Clock::now() > h.deadline) {
          run.push_back([f = h.fail] { f(DeadlineExceeded("deadline passed while queued")); });
        } else if (release_) {
          run.push_back(h.ok);
        } else {
          ++i;
          continue;
        }
        held_.erase(held_.begin() + i);
      }
      l.unlock();
      for (auto& f : run) f();  // like a batcher: on this thread, no lock held
      run.clear();              // (destroying a done may call RecordRequest)
      l.lock();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<HeldRequest> held_;
  bool release_ = false;
  bool stop_ = false;
  std::thread worker_;
};

struct Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  bool keep_alive = false;
  nlohmann::json Json() const { return nlohmann::json::parse(body); }
};

// A synchronous HTTP/1.1 client on one keep-alive connection (10 s timeouts).
class HttpClient {
 public:
  explicit HttpClient(int port) : stream_(ioc_) {
    stream_.expires_after(std::chrono::seconds(10));
    stream_.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
  }
  Response Send(const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "localhost");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    stream_.expires_after(std::chrono::seconds(10));
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream_, buffer_, parser);
    Response r;
    r.status = int(parser.get().result_int());
    r.body = parser.get().body();
    r.keep_alive = parser.get().keep_alive();
    for (auto& f : parser.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
    return r;
  }
  void Close() {
    boost::beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

inline Response Request(int port, const std::string& method, const std::string& target,
                        const std::string& body = "",
                        const std::map<std::string, std::string>& headers = {}) {
  HttpClient c(port);
  return c.Send(method, target, body, headers);
}

}  // namespace encserve::testing
