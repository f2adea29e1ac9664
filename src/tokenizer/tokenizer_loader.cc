// Loading a Tokenizer from tokenizer.json, or from vocab.txt (+ tokenizer_config.json).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace encserve {

using json = nlohmann::json;
using tokenizer_internal::AddedToken;
using tokenizer_internal::PostProcessorTemplate;
using tokenizer_internal::TemplatePiece;
using tokenizer_internal::TokenizerImpl;

namespace {

StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound("no such file: " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return DataLoss("error reading " + path);
  return ss.str();
}

StatusOr<json> ParseJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss(path + ": not valid JSON");
  if (!j.is_object()) return DataLoss(path + ": top-level value is not an object");
  return j;
}

// Rust str::trim_end (White_Space). `line` is valid UTF-8.
std::string_view TrimEnd(std::string_view line) {
  size_t end = line.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(line[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!unicode::IsWhitespace(unicode::DecodeUtf8(line, &pos))) break;
    end = start;
  }
  return line.substr(0, end);
}

tokenizer_internal::NormalizerConfig ResolveOptions(const TokenizerOptions& o) {
  tokenizer_internal::NormalizerConfig c;
  c.clean_text = o.clean_text;
  c.handle_chinese_chars = o.handle_chinese_chars;
  c.strip_accents = o.strip_accents.value_or(o.lowercase);
  c.lowercase = o.lowercase;
  return c;
}

// ---- tokenizer.json sections (may throw json::exception on wrong types) ----

Status ParseModel(const json& m, TokenizerImpl* impl) {
  if (!m.is_object()) return DataLoss("\"model\" is missing or not an object");
  // Very old files have no "type"; WordPiece is then recognised by its fields.
  const std::string type =
      m.value("type", std::string(m.contains("merges") ? "BPE (untagged)" : "WordPiece"));
  if (type != "WordPiece") {
    return Unimplemented("tokenizer model type '" + type + "' is not supported (only WordPiece)");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) {
    return DataLoss("WordPiece model has no \"vocab\" object");
  }
  tokenizer_internal::WordPieceConfig cfg;
  cfg.unk_token = m.value("unk_token", std::string("[UNK]"));
  cfg.continuing_subword_prefix = m.value("continuing_subword_prefix", std::string("##"));
  cfg.max_input_chars_per_word = m.value("max_input_chars_per_word", size_t{100});
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(m["vocab"].size());
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer()) return DataLoss("vocab id of '" + token + "' is not an integer");
    vocab.emplace_back(token, id.get<int64_t>() > INT32_MAX ? -1 : id.get<int32_t>());
  }
  ASSIGN_OR_RETURN(impl->model, tokenizer_internal::WordPiece::Create(std::move(vocab), cfg));
  return Status::Ok();
}

Status ParseNormalizer(const json& n, TokenizerImpl* impl) {
  if (n.is_null()) {
    impl->normalizer.enabled = false;
    return Status::Ok();
  }
  const std::string type = n.value("type", std::string());
  if (type != "BertNormalizer") {
    return Unimplemented("normalizer '" + type + "' is not supported (only BertNormalizer)");
  }
  TokenizerOptions o;
  o.clean_text = n.value("clean_text", true);
  o.handle_chinese_chars = n.value("handle_chinese_chars", true);
  o.lowercase = n.value("lowercase", true);
  if (n.contains("strip_accents") && !n["strip_accents"].is_null()) {
    o.strip_accents = n["strip_accents"].get<bool>();
  }
  impl->normalizer = ResolveOptions(o);
  return Status::Ok();
}

Status ParsePreTokenizer(const json& p, TokenizerImpl* impl) {
  if (p.is_null()) {
    impl->bert_pre_tokenizer = false;
    return Status::Ok();
  }
  const std::string type = p.value("type", std::string());
  if (type != "BertPreTokenizer") {
    return Unimplemented("pre-tokenizer '" + type + "' is not supported (only BertPreTokenizer)");
  }
  impl->bert_pre_tokenizer = true;
  return Status::Ok();
}

Status ParseTemplate(const json& pieces, const json& specials, bool pair,
                     std::vector<TemplatePiece>* out) {
  if (!pieces.is_array()) return DataLoss("TemplateProcessing template is not a list");
  for (const json& item : pieces) {
    TemplatePiece piece;
    if (item.contains("Sequence")) {
      const json& s = item["Sequence"];
      const std::string id = s.at("id").get<std::string>();
      if (id != "A" && !(pair && id == "B")) {
        return DataLoss("TemplateProcessing: unexpected sequence id '" + id + "'");
      }
      piece.is_sequence = true;
      piece.sequence = id == "A" ? 0 : 1;
      piece.type_id = s.value("type_id", 0);
    } else if (item.contains("SpecialToken")) {
      const json& s = item["SpecialToken"];
      const std::string id = s.at("id").get<std::string>();
      if (!specials.is_object() || !specials.contains(id)) {
        return DataLoss("TemplateProcessing: special token '" + id + "' is not defined");
      }
      piece.ids = specials[id].at("ids").get<std::vector<int32_t>>();
      piece.type_id = s.value("type_id", 0);
    } else {
      return DataLoss("TemplateProcessing: unknown template piece " + item.dump());
    }
    out->push_back(std::move(piece));
  }
  return Status::Ok();
}

Status ParsePostProcessor(const json& p, TokenizerImpl* impl) {
  if (p.is_null()) {
    impl->post = PostProcessorTemplate{};
    impl->post.single = {TemplatePiece{true, 0, {}, 0}};
    impl->post.pair = {TemplatePiece{true, 0, {}, 0}, TemplatePiece{true, 1, {}, 1}};
    return Status::Ok();
  }
  const std::string type = p.value("type", std::string());
  if (type == "BertProcessing") {
    impl->post = tokenizer_internal::BertTemplate(p.at("cls").at(1).get<int32_t>(),
                                                  p.at("sep").at(1).get<int32_t>());
    return Status::Ok();
  }
  if (type == "TemplateProcessing") {
    impl->post = PostProcessorTemplate{};
    const json specials = p.value("special_tokens", json::object());
    RETURN_IF_ERROR(ParseTemplate(p.at("single"), specials, false, &impl->post.single));
    RETURN_IF_ERROR(ParseTemplate(p.at("pair"), specials, true, &impl->post.pair));
    return Status::Ok();
  }
  return Unimplemented("post-processor '" + type +
                       "' is not supported (only TemplateProcessing, BertProcessing)");
}

Status ParseTokenizerJson(const json& j, TokenizerImpl* impl) {
  RETURN_IF_ERROR(ParseModel(j.contains("model") ? j["model"] : json(), impl));
  RETURN_IF_ERROR(ParseNormalizer(j.value("normalizer", json()), impl));
  RETURN_IF_ERROR(ParsePreTokenizer(j.value("pre_tokenizer", json()), impl));
  RETURN_IF_ERROR(ParsePostProcessor(j.value("post_processor", json()), impl));
  const json added = j.value("added_tokens", json::array());
  if (!added.is_array()) return DataLoss("\"added_tokens\" is not a list");
  for (const json& t : added) {
    AddedToken token;
    token.id = t.at("id").get<int32_t>();
    token.content = t.at("content").get<std::string>();
    if (unicode::FindInvalidUtf8(token.content) != unicode::kValidUtf8) {
      return DataLoss("added token content is not valid UTF-8");
    }
    token.single_word = t.value("single_word", false);
    token.lstrip = t.value("lstrip", false);
    token.rstrip = t.value("rstrip", false);
    token.special = t.value("special", false);
    token.normalized = t.value("normalized", !token.special);
    impl->added_tokens.push_back(std::move(token));
  }
  const json padding = j.value("padding", json());
  if (padding.is_object() && padding.contains("pad_id")) {
    impl->pad_id = padding["pad_id"].get<int32_t>();
  } else if (auto pad = impl->model->TokenToId("[PAD]")) {
    impl->pad_id = *pad;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromTokenizerJson(const std::string& path) {
  ASSIGN_OR_RETURN(json j, ParseJson(path));
  auto impl = std::make_unique<TokenizerImpl>();
  try {
    Status st = ParseTokenizerJson(j, impl.get());
    if (!st.ok()) return Status(st.code(), path + ": " + st.message());
  } catch (const json::exception& e) {
    return DataLoss(path + ": malformed tokenizer.json: " + e.what());
  }
  RETURN_IF_ERROR(impl->Finish());
  return TokenizerImpl::Wrap(std::move(impl));
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocabFile(const std::string& path,
                                                              const TokenizerOptions& opts) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  // HF WordPiece::read_file: BufRead::lines() (drops "\n" / "\r\n"), then trim_end();
  // id = line number, a later duplicate wins.
  std::vector<std::pair<std::string, int32_t>> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const size_t line_end = nl == std::string::npos ? text.size() : nl;
    std::string_view line(text.data() + pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t bad = unicode::FindInvalidUtf8(line);
    if (bad != unicode::kValidUtf8) {
      return DataLoss(path + ": line " + std::to_string(vocab.size() + 1) + " is not valid UTF-8");
    }
    vocab.emplace_back(std::string(TrimEnd(line)), static_cast<int32_t>(vocab.size()));
    pos = line_end + 1;
  }
  if (vocab.empty()) return DataLoss(path + ": empty vocabulary");

  auto impl = std::make_unique<TokenizerImpl>();
  impl->normalizer = ResolveOptions(opts);
  impl->bert_pre_tokenizer = true;
  auto model = tokenizer_internal::WordPiece::Create(std::move(vocab), {});
  if (!model.ok()) return Status(model.status().code(), path + ": " + model.status().message());
  impl->model = std::move(model).value();
  // BertWordPieceTokenizer: these become special (non-normalized) tokens when in the vocab.
  for (const char* name : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    if (auto id = impl->model->TokenToId(name)) {
      AddedToken t;
      t.content = name;
      t.id = *id;
      t.special = true;
      t.normalized = false;
      impl->added_tokens.push_back(std::move(t));
    }
  }
  const auto cls = impl->model->TokenToId("[CLS]");
  const auto sep = impl->model->TokenToId("[SEP]");
  if (!cls || !sep) return DataLoss(path + ": [CLS] or [SEP] is not in the vocabulary");
  impl->post = tokenizer_internal::BertTemplate(*cls, *sep);
  impl->pad_id = impl->model->TokenToId("[PAD]").value_or(0);
  RETURN_IF_ERROR(impl->Finish());
  return TokenizerImpl::Wrap(std::move(impl));
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("tokenizer directory not found: " + dir);
  const fs::path base(dir);
  if (fs::exists(base / "tokenizer.json", ec)) {
    return FromTokenizerJson((base / "tokenizer.json").string());
  }
  if (!fs::exists(base / "vocab.txt", ec)) {
    return NotFound("neither tokenizer.json nor vocab.txt found in " + dir);
  }
  TokenizerOptions opts;
  const fs::path config = base / "tokenizer_config.json";
  if (fs::exists(config, ec)) {
    ASSIGN_OR_RETURN(json j, ParseJson(config.string()));
    try {
      opts.lowercase = j.value("do_lower_case", true);
      opts.handle_chinese_chars = j.value("tokenize_chinese_chars", true);
      if (j.contains("strip_accents") && !j["strip_accents"].is_null()) {
        opts.strip_accents = j["strip_accents"].get<bool>();
      }
    } catch (const json::exception& e) {
      return DataLoss(config.string() + ": " + e.what());
    }
  }
  return FromVocabFile((base / "vocab.txt").string(), opts);
}

}  // namespace encserve
