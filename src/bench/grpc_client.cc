#include "bench/grpc_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "encserve.grpc.pb.h"
#include "inference.grpc.pb.h"

namespace encserve::bench {

std::string GrpcCodeName(int code) {
  // gRPC's status codes are abseil's, number for number (0..16).
  if (code < 0 || code > 16) return "UNKNOWN";
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int DefaultGrpcChannels(int slots) {
  return std::clamp((slots + 15) / 16, 1, 8);
}

namespace {

namespace v1 = ::encserve::v1;

// One in-flight RPC; the completion queue's tag. Deletes itself once completed.
struct CallBase {
  virtual ~CallBase() = default;
  virtual void Complete() = 0;
};

template <typename Resp>
struct Call : CallBase {
  grpc::ClientContext ctx;
  Resp resp;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
  size_t expected = 0;  // rows the response must carry
  std::function<size_t(const Resp&)> rows;
  DoneFn done;

  void Complete() override {
    CallResult r;
    if (!status.ok()) {
      r.code = GrpcCodeName(static_cast<int>(status.error_code()));
      r.message = status.error_message();
    } else if (rows(resp) != expected) {
      r.code = "BAD_RESPONSE";
      r.message =
          "expected " + std::to_string(expected) + " rows, got " + std::to_string(rows(resp));
    } else {
      r.ok = true;
      r.code = "OK";
    }
    done(std::move(r));
    delete this;
  }
};

class GrpcClient : public Client {
 public:
  explicit GrpcClient(const GrpcClientOptions& o) : options_(o) {
    const int channels = o.channels > 0 ? o.channels : DefaultGrpcChannels(o.slots);
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // own TCP connection per channel
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      auto ch = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
      seed_.push_back(inference::InferenceService::NewStub(ch));
      v1_.push_back(v1::Encoder::NewStub(ch));
      channels_.push_back(std::move(ch));
    }
    const int threads = o.cq_threads > 0 ? o.cq_threads : std::min(2, std::max(1, o.slots));
    for (int t = 0; t < threads; ++t) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
    for (auto& cq : cqs_) {
      threads_.emplace_back([q = cq.get()] {
        void* tag;
        bool ok;
        while (q->Next(&tag, &ok)) static_cast<CallBase*>(tag)->Complete();
      });
    }
  }
  ~GrpcClient() override { Shutdown(); }

  std::string Describe() const override {
    return options_.api == GrpcApi::kSeed ? "grpc/seed" : "grpc/v1";
  }

  void Send(int slot, std::shared_ptr<const Payload> p, DoneFn done) override {
    const size_t ch = static_cast<size_t>(slot) % channels_.size();
    grpc::CompletionQueue* cq = cqs_[static_cast<size_t>(slot) % cqs_.size()].get();
    if (options_.api == GrpcApi::kSeed) {
      inference::InferRequest req;
      req.mutable_texts()->Assign(p->texts.begin(), p->texts.end());
      auto* call = Prepare<inference::InferResponse>(p->texts.size(), std::move(done),
                                                     [](const auto& r) { return r.num_texts(); });
      call->reader = seed_[ch]->PrepareAsyncInfer(&call->ctx, req, cq);
      return Start(call);
    }
    switch (p->op) {
      case Payload::Op::kEmbed: {
        v1::EmbedRequest req;
        req.mutable_texts()->Assign(p->texts.begin(), p->texts.end());
        auto* call = Prepare<v1::EmbedResponse>(p->texts.size(), std::move(done),
                                                [](const auto& r) { return r.embeddings_size(); });
        call->reader = v1_[ch]->PrepareAsyncEmbed(&call->ctx, req, cq);
        return Start(call);
      }
      case Payload::Op::kScore: {
        v1::ScoreRequest req;
        for (const auto& [a, b] : p->pairs) {
          auto* pair = req.add_pairs();
          pair->set_a(a);
          pair->set_b(b);
        }
        auto* call = Prepare<v1::ScoreResponse>(p->pairs.size(), std::move(done),
                                                [](const auto& r) { return r.scores_size(); });
        call->reader = v1_[ch]->PrepareAsyncScore(&call->ctx, req, cq);
        return Start(call);
      }
      case Payload::Op::kRerank: {
        v1::RerankRequest req;
        req.set_query(p->query);
        req.mutable_documents()->Assign(p->documents.begin(), p->documents.end());
        auto* call = Prepare<v1::RerankResponse>(p->documents.size(), std::move(done),
                                                 [](const auto& r) { return r.results_size(); });
        call->reader = v1_[ch]->PrepareAsyncRerank(&call->ctx, req, cq);
        return Start(call);
      }
    }
  }

  void Shutdown() override {
    if (threads_.empty()) return;
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  template <typename Resp, typename Rows>
  Call<Resp>* Prepare(size_t expected, DoneFn done, Rows rows) {
    auto* call = new Call<Resp>;
    call->expected = expected;
    call->rows = [rows](const Resp& r) { return static_cast<size_t>(rows(r)); };
    call->done = std::move(done);
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(options_.timeout_ms));
    if (!options_.api_key.empty()) {
      call->ctx.AddMetadata("authorization", "Bearer " + options_.api_key);
    }
    return call;
  }

  template <typename Resp>
  static void Start(Call<Resp>* call) {
    call->reader->StartCall();
    call->reader->Finish(&call->resp, &call->status, call);
  }

  GrpcClientOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<inference::InferenceService::Stub>> seed_;
  std::vector<std::unique_ptr<v1::Encoder::Stub>> v1_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
};

}  // namespace

StatusOr<std::unique_ptr<Client>> MakeGrpcClient(const GrpcClientOptions& options) {
  if (options.slots < 1) return InvalidArgument("gRPC client needs at least one slot");
  if (options.target.empty()) return InvalidArgument("empty --target");
  return std::unique_ptr<Client>(new GrpcClient(options));
}

}  // namespace encserve::bench
