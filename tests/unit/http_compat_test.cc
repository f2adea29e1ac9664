// The compatibility routes over a FakeService (http_compat.h): TEI's root route, Cohere's
// rerank and embed (v1 and v2) and Jina's rerank: request parsing, reply shapes and errors.
#include <gtest/gtest.h>

#include <cstring>

#include "http_test_util.h"
#include "server/http/http_api.h"
#include "server/http/http_json.h"
#include "server/http/http_server.h"

namespace encserve::server {
namespace {

using encserve::testing::FakeService;
using encserve::testing::Request;
using encserve::testing::Response;
using Json = nlohmann::json;

class HttpCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpOptions o;
    o.port = 0;
    auto s = HttpServer::Start(o, svc);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(*s);
  }
  Response Post(const std::string& target, const std::string& body) {
    return Request(server->port(), "POST", target, body, {});
  }
  // POSTs and expects a 200 with a JSON body.
  Json Ok(const std::string& target, const std::string& body) {
    Response r = Post(target, body);
    EXPECT_EQ(r.status, 200) << target << " " << body << " -> " << r.body;
    return Json::parse(r.body, nullptr, false);
  }
  void ExpectError(const std::string& target, const std::string& body, int status,
                   const std::string& type) {
    Response r = Post(target, body);
    EXPECT_EQ(r.status, status) << target << " " << body << " -> " << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("type", ""), type) << target << " " << body << " -> " << r.body;
    EXPECT_TRUE(j["error"].is_string()) << r.body;
  }

  FakeService svc;  // outlives the server
  std::unique_ptr<HttpServer> server;
};

TEST_F(HttpCompatTest, RootAndInvocationsServeTheModelsDefaultTask) {
  // Embedding model: huggingface_hub's feature_extraction body is /embed's ...
  EXPECT_EQ(Ok("/", R"({"inputs": "abc", "normalize": true, "truncate": true})"),
            Json::parse("[[3, 1, 0, 0]]"));
  EXPECT_EQ(Ok("/invocations", R"({"inputs": ["a", "ab"]})"),
            Json::parse("[[1, 1, 0, 0], [2, 1, 0, 0]]"));
  // ... and its sentence_similarity body (inputs an object) is /similarity's.
  Json sim = Ok("/", R"({"inputs": {"source_sentence": "ab", "sentences": ["ab", "abcd"]},
                          "parameters": {}})");
  ASSERT_TRUE(sim.is_array()) << sim;
  ASSERT_EQ(sim.size(), 2u);
  EXPECT_FLOAT_EQ(sim[0].get<float>(), 1.0f);
  EXPECT_FLOAT_EQ(sim[1].get<float>(), 1.0f / 3);
  ExpectError("/", R"({"inputs": 3})", 400, "invalid_request");
  ExpectError("/", "not json", 400, "invalid_request");
  Response get = Request(server->port(), "GET", "/", "", {});
  EXPECT_EQ(get.status, 405) << get.body;

  // Cross-encoder: the root is /rerank.
  svc.cross_encoder = true;
  EXPECT_EQ(Ok("/", R"({"query": "q", "texts": ["a", "abc"]})"),
            Json::parse(R"([{"index": 1, "score": 3}, {"index": 0, "score": 1}])"));
  EXPECT_EQ(Ok("/invocations", R"({"query": "q", "texts": ["ab"], "return_text": true})"),
            Json::parse(R"([{"index": 0, "score": 2, "text": "ab"}])"));
  ExpectError("/", R"({"inputs": "abc"})", 400, "invalid_request");  // no "query"
}

TEST_F(HttpCompatTest, RouteLabelsNameTheNewRoutes) {
  EXPECT_EQ(HttpApi::RouteLabel("/"), "http:/");
  EXPECT_EQ(HttpApi::RouteLabel("/invocations"), "http:/invocations");
  EXPECT_EQ(HttpApi::RouteLabel("/v1/rerank?x=1"), "http:/v1/rerank");
  EXPECT_EQ(HttpApi::RouteLabel("/v2/rerank"), "http:/v2/rerank");
  EXPECT_EQ(HttpApi::RouteLabel("/v1/embed"), "http:/v1/embed");
  EXPECT_EQ(HttpApi::RouteLabel("/v2/embed"), "http:/v2/embed");
  EXPECT_EQ(HttpApi::RouteLabel("/v3/embed"), "http:other");
}

TEST_F(HttpCompatTest, NewRoutesAreRefusedFromTheHeadUnderOverloadAndNeedTheKey) {
  server.reset();
  HttpOptions o;
  o.port = 0;
  o.api_key = "k";
  auto s = HttpServer::Start(o, svc);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  server = std::move(*s);
  svc.SetAdmitAny(ResourceExhausted("overloaded: test"));
  const char* routes[] = {"/",          "/invocations", "/v1/rerank",
                          "/v2/rerank", "/v1/embed",    "/v2/embed"};
  for (const char* target : routes) {
    Response r =
        Request(server->port(), "POST", target, "{not json", {{"Authorization", "Bearer k"}});
    EXPECT_EQ(r.status, 429) << target << " " << r.body;
    ExpectError(target, R"({"texts": ["a"]})", 401, "unauthorized");
  }
  EXPECT_EQ(svc.AdmitAnyCalls(), int(std::size(routes)));
}

// Cohere v1 (and Jina) rerank: documents as strings or {"text"} objects; an object document
// comes back as it was sent, a string one as {"text"}.
TEST_F(HttpCompatTest, CohereV1RerankShape) {
  Json j = Ok("/v1/rerank", R"({"model": "rerank-english-v3.0", "query": "q",
      "documents": ["a", {"text": "abcd", "id": 7}, "abc"], "top_n": 2,
      "return_documents": true})");
  ASSERT_TRUE(j.is_object()) << j;
  ASSERT_TRUE(j["id"].is_string());
  EXPECT_EQ(j["id"].get<std::string>().size(), 36u);  // a UUID
  EXPECT_EQ(j["results"], Json::parse(R"([
      {"index": 1, "relevance_score": 4, "document": {"text": "abcd", "id": 7}},
      {"index": 2, "relevance_score": 3, "document": {"text": "abc"}}])"));
  EXPECT_EQ(j["model"], "rerank-english-v3.0");
  EXPECT_EQ(j["meta"]["api_version"]["version"], "1");
  EXPECT_EQ(j["meta"]["billed_units"]["search_units"], 1);
  EXPECT_TRUE(j["usage"]["total_tokens"].is_number_integer());  // Jina's
  auto p = svc.LastRerank();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->query, "q");
  EXPECT_EQ(p->documents, (std::vector<std::string>{"a", "abcd", "abc"}));
  EXPECT_EQ(p->top_n, std::optional<int>(2));
  EXPECT_TRUE(p->return_documents);
  EXPECT_FALSE(p->raw_scores);
  EXPECT_NE(Ok("/v1/rerank", R"({"query": "q", "documents": ["a"]})")["id"], j["id"]);
}

TEST_F(HttpCompatTest, CohereV2RerankShapeAndAcceptedOptions) {
  Json j = Ok("/v2/rerank", R"({"query": "q", "documents": ["ab", "abc"], "priority": 3,
                                "max_tokens_per_doc": 4096, "rank_fields": ["text"],
                                "max_chunks_per_doc": 1, "relevant_spans": {"mode": "disabled"}})");
  EXPECT_EQ(j["results"], Json::parse(R"([{"index": 1, "relevance_score": 3},
                                          {"index": 0, "relevance_score": 2}])"));
  EXPECT_EQ(j["model"], "fake-model");  // none sent: the served model
  EXPECT_EQ(j["meta"]["api_version"]["version"], "2");
  EXPECT_FALSE(svc.LastRerank()->return_documents);
  Ok("/v2/rerank", R"({"query": "q", "documents": ["a"], "max_tokens_per_doc": 512})");
}

TEST_F(HttpCompatTest, RerankErrors) {
  for (const char* route : {"/v1/rerank", "/v2/rerank"}) {
    ExpectError(route, R"({"documents": ["a"]})", 400, "invalid_request");  // no query
    ExpectError(route, R"({"query": 1, "documents": ["a"]})", 400, "invalid_request");
    ExpectError(route, R"({"query": "q"})", 400, "invalid_request");  // no documents
    ExpectError(route, R"({"query": "q", "documents": "a"})", 400, "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": [1]})", 400, "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": [{"title": "a"}]})", 400, "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "top_n": "2"})", 400,
                "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "return_documents": 1})", 400,
                "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "model": 5})", 400, "invalid_request");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "rank_fields": "text"})", 400,
                "invalid_request");
    ExpectError(route, "[]", 400, "invalid_request");
    // Options encserve cannot honour are refused, not ignored.
    ExpectError(route, R"({"query": "q", "documents": ["a"], "max_tokens_per_doc": 511})", 422,
                "unsupported");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "max_tokens_per_doc": 0})", 422,
                "validation");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "rank_fields": ["title"]})", 422,
                "unsupported");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "max_chunks_per_doc": 10})", 422,
                "unsupported");
    ExpectError(route, R"({"query": "q", "documents": ["a"], "relevant_spans": {"mode":
                           "enabled"}})",
                422, "unsupported");
  }
  svc.SetFail(InvalidArgument("no documents"));  // the Service's own checks: 422
  ExpectError("/v1/rerank", R"({"query": "q", "documents": []})", 422, "validation");
}

TEST_F(HttpCompatTest, CohereEmbedV1FloatsAndByType) {
  Json j = Ok("/v1/embed", R"({"texts": ["abc", "a"], "model": "embed-english-v3.0",
                               "input_type": "search_document"})");
  EXPECT_EQ(j["response_type"], "embeddings_floats");
  EXPECT_EQ(j["embeddings"], Json::parse("[[3, 1, 0, 0], [1, 1, 0, 0]]"));
  EXPECT_EQ(j["texts"], Json::parse(R"(["abc", "a"])"));
  EXPECT_EQ(j["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(j["meta"]["api_version"]["version"], "1");
  EXPECT_EQ(j["meta"]["billed_units"]["input_tokens"], 4);

  j = Ok("/v1/embed", R"({"texts": ["ab"], "embedding_types": ["float", "base64"],
                          "truncate": "NONE", "output_dimension": 2})");
  EXPECT_EQ(j["response_type"], "embeddings_by_type");
  EXPECT_EQ(j["embeddings"]["float"], Json::parse("[[2, 1, 0, 0]]"));
  ASSERT_TRUE(j["embeddings"]["base64"][0].is_string()) << j;
  auto bytes = http_json::Base64Decode(j["embeddings"]["base64"][0].get<std::string>());
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 4 * sizeof(float));
  float row[4];
  std::memcpy(row, bytes->data(), sizeof(row));
  EXPECT_EQ(row[0], 2.0f);
  EXPECT_EQ(row[1], 1.0f);
  auto p = svc.LastEmbed();
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->truncate);
  EXPECT_EQ(p->dimensions, std::optional<int>(2));
  EXPECT_FALSE(p->normalize.has_value());
}

TEST_F(HttpCompatTest, CohereEmbedV2IsByTypeWithFloatByDefault) {
  Json j = Ok("/v2/embed", R"({"model": "m", "texts": ["abc"], "input_type": "search_query",
                               "truncate": "END", "max_tokens": 512, "priority": 1})");
  EXPECT_EQ(j["embeddings"], Json::parse(R"({"float": [[3, 1, 0, 0]]})"));
  EXPECT_EQ(j["meta"]["api_version"]["version"], "2");
  EXPECT_TRUE(svc.LastEmbed()->truncate);
  j = Ok("/v2/embed", R"({"texts": ["abc"], "input_type": "clustering",
                          "embedding_types": ["base64"]})");
  EXPECT_FALSE(j["embeddings"].contains("float")) << j;
  EXPECT_TRUE(j["embeddings"]["base64"][0].is_string()) << j;
}

TEST_F(HttpCompatTest, EmbedErrors) {
  for (const char* route : {"/v1/embed", "/v2/embed"}) {
    ExpectError(route, R"({"input_type": "search_query"})", 400, "invalid_request");
    ExpectError(route, R"({"texts": "abc"})", 400, "invalid_request");
    ExpectError(route, R"({"texts": [1]})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "input_type": "bogus"})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "embedding_types": "float"})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "embedding_types": []})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "embedding_types": ["bogus"]})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "truncate": "MIDDLE"})", 400, "invalid_request");
    ExpectError(route, R"({"texts": ["a"], "output_dimension": "2"})", 400, "invalid_request");
    for (const char* type : {"int8", "uint8", "binary", "ubinary"}) {
      ExpectError(route, std::string(R"({"texts": ["a"], "embedding_types": [")") + type + "\"]}",
                  422, "unsupported");
    }
    ExpectError(route, R"({"texts": ["a"], "input_type": "image"})", 422, "unsupported");
    ExpectError(route, R"({"images": ["data:image/png;base64,AAAA"]})", 422, "unsupported");
    ExpectError(route, R"({"inputs": [{"content": []}]})", 422, "unsupported");
    ExpectError(route, R"({"texts": ["a"], "max_tokens": 100})", 422, "unsupported");
  }
  svc.SetFail(InvalidArgument("empty input"));
  ExpectError("/v2/embed", R"({"texts": []})", 422, "validation");
}

}  // namespace
}  // namespace encserve::server
