// libFuzzer target: every gRPC method's request bytes. A real GrpcServer (127.0.0.1, a free
// port) over the `null`-backend EngineService (fuzz_service.h) is started once; each input is
// sent as one unary call through a GenericStub (the bytes as the serialized request, 2 s
// deadline). The status must be one of kAccepted (never UNKNOWN or INTERNAL: a crash, an
// exception or an unhandled case), and an OK reply must parse as the method's response type.
//
// Input: [method] request bytes... ; method (mod the number of methods) picks one of kMethods:
// encserve.v1.Encoder (proto/encserve.proto) and inference.InferenceService (the seed's
// tests/data/seed_inference.proto plus ResetMetrics, proto/inference.proto).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "encserve.pb.h"
#include "fuzz/fuzz_service.h"
#include "fuzz/fuzz_util.h"
#include "inference.pb.h"
#include "server/grpc/grpc_server.h"

namespace {

using MessagePtr = std::unique_ptr<google::protobuf::Message>;

struct Method {
  const char* name;
  MessagePtr (*response)();  // an empty message of the response type
};
template <class T>
MessagePtr New() {
  return std::make_unique<T>();
}
const Method kMethods[] = {
    {"/encserve.v1.Encoder/Embed", New<encserve::v1::EmbedResponse>},
    {"/encserve.v1.Encoder/Score", New<encserve::v1::ScoreResponse>},
    {"/encserve.v1.Encoder/Rerank", New<encserve::v1::RerankResponse>},
    {"/encserve.v1.Encoder/Tokenize", New<encserve::v1::TokenizeResponse>},
    {"/encserve.v1.Encoder/Info", New<encserve::v1::InfoResponse>},
    {"/inference.InferenceService/Infer", New<inference::InferResponse>},
    {"/inference.InferenceService/GetMetrics", New<inference::MetricsResponse>},
    {"/inference.InferenceService/ResetMetrics", New<inference::Empty>},
};

// The statuses a request may get. To tighten, remove codes here.
const grpc::StatusCode kAccepted[] = {
    grpc::StatusCode::OK,
    grpc::StatusCode::INVALID_ARGUMENT,
    grpc::StatusCode::OUT_OF_RANGE,
    grpc::StatusCode::RESOURCE_EXHAUSTED,
    grpc::StatusCode::FAILED_PRECONDITION,
    grpc::StatusCode::UNAUTHENTICATED,
    grpc::StatusCode::DEADLINE_EXCEEDED,
};
// A request that does not parse was answered UNIMPLEMENTED (gRPC's own deserialisation failure)
// before the services parsed raw requests themselves (INVALID_ARGUMENT). While true, that is
// accepted with a note; set to false once every build answers INVALID_ARGUMENT.
constexpr bool kAcceptUnimplemented = true;

std::unique_ptr<encserve::server::GrpcServer>* fuzz_server = nullptr;
grpc::GenericStub* stub = nullptr;

void StopServer() {
  (*fuzz_server)->Shutdown(std::chrono::system_clock::now());
  fuzz_server->reset();
}

bool Accepted(const grpc::Status& st) {
  for (grpc::StatusCode c : kAccepted) {
    if (st.error_code() == c) return true;
  }
  if (kAcceptUnimplemented && st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    static bool noted = false;
    if (!noted) {
      std::fprintf(stderr, "grpc_fuzz note: UNIMPLEMENTED accepted (%s); tighten kAccepted\n",
                   st.error_message().c_str());
      noted = true;
    }
    return true;
  }
  return false;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace encserve;
  server::GrpcOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  auto started = server::GrpcServer::Start(o, fuzz::NullService());
  if (!started.ok()) fuzz::SetupFailed("GrpcServer: " + started.status().ToString());
  fuzz_server = new std::unique_ptr<server::GrpcServer>(std::move(*started));
  fuzz::AtExitBeforeService(StopServer);
  const std::string target = "127.0.0.1:" + std::to_string((*fuzz_server)->port());
  stub = new grpc::GenericStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Method& method = kMethods[data[0] % std::size(kMethods)];
  grpc::Slice slice(data + 1, size - 1);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  std::promise<grpc::Status> done;
  stub->UnaryCall(&ctx, method.name, grpc::StubOptions(), &request, &response,
                  [&done](grpc::Status st) { done.set_value(std::move(st)); });
  auto future = done.get_future();
  FUZZ_CHECK(future.wait_for(std::chrono::seconds(8)) == std::future_status::ready,
             std::string("no reply within 8 s from ") + method.name);
  const grpc::Status st = future.get();
  FUZZ_CHECK(Accepted(st), std::string(method.name) + ": status " +
                               std::to_string(st.error_code()) + " " + st.error_message());
  if (st.ok()) {
    MessagePtr reply = method.response();
    FUZZ_CHECK(reply->ParseFromString(Flatten(response)),
               std::string(method.name) + ": the reply is not a " + reply->GetTypeName());
  }
  return 0;
}
