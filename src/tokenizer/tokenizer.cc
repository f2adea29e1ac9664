#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/truncation.h"
#include "tokenizer/unicode.h"

namespace encserve {
namespace tokenizer_internal {

namespace {

// Per-thread buffers reused across calls (Encode is const and may run concurrently).
struct Scratch {
  std::vector<TextPiece> raw_pieces;
  std::vector<TextPiece> norm_pieces;
  std::vector<std::string_view> words;
  std::string normalized;
  NormalizerScratch normalizer;
};

// Texts are indexed with 32-bit offsets; anything near that size is not a sensible input.
constexpr size_t kMaxTextBytes = size_t{1} << 30;
// Per-thread buffers grown beyond this are released after use.
constexpr size_t kMaxRetainedScratch = size_t{1} << 22;

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

Status CheckUtf8(std::string_view text, const char* what) {
  if (text.size() > kMaxTextBytes) {
    return InvalidArgument(std::string(what) + " is too long (" + std::to_string(text.size()) +
                           " bytes, limit " + std::to_string(kMaxTextBytes) + ")");
  }
  const size_t bad = unicode::FindInvalidUtf8(text);
  if (bad == unicode::kValidUtf8) return Status::Ok();
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
  return InvalidArgument(std::string(what) +
                         " is not valid UTF-8: ill-formed sequence at byte offset " +
                         std::to_string(bad) + " (byte " + byte + ")");
}

void AppendPiece(const TemplatePiece& piece, const std::vector<int32_t>* seqs[2], Encoding* enc) {
  const std::vector<int32_t>& src = piece.is_sequence ? *seqs[piece.sequence] : piece.ids;
  enc->ids.insert(enc->ids.end(), src.begin(), src.end());
  enc->type_ids.insert(enc->type_ids.end(), src.size(), piece.type_id);
}

}  // namespace

PostProcessorTemplate BertTemplate(int32_t cls_id, int32_t sep_id) {
  PostProcessorTemplate t;
  const TemplatePiece cls{false, 0, {cls_id}, 0};
  const TemplatePiece sep0{false, 0, {sep_id}, 0};
  const TemplatePiece sep1{false, 0, {sep_id}, 1};
  const TemplatePiece a{true, 0, {}, 0};
  const TemplatePiece b{true, 1, {}, 1};
  t.single = {cls, a, sep0};
  t.pair = {cls, a, sep0, b, sep1};
  t.added_single = 2;
  t.added_pair = 3;
  return t;
}

Status TokenizerImpl::Finish() {
  if (!model) return Internal("tokenizer has no model");
  // Special tokens first, then the others, as HF's AddedVocabulary builds its tries.
  std::vector<AddedToken> raw_tokens, norm_tokens;
  std::vector<std::string> raw_patterns, norm_patterns;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& t : added_tokens) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        NormalizerScratch scratch;
        std::string pattern;
        Normalize(normalizer, t.content, &scratch, &pattern);
        norm_patterns.push_back(std::move(pattern));
        norm_tokens.push_back(t);
      } else {
        raw_patterns.push_back(t.content);
        raw_tokens.push_back(t);
      }
    }
  }
  raw_matcher.Build(raw_patterns, raw_tokens);
  normalized_matcher.Build(norm_patterns, norm_tokens);

  vocab_size = model->id_bound();
  for (const AddedToken& t : added_tokens) {
    if (t.id < 0) return DataLoss("added token '" + t.content + "' has a negative id");
    added_id_to_token[t.id] = t.content;
    vocab_size = std::max(vocab_size, static_cast<size_t>(t.id) + 1);
  }
  post.added_single = post.added_pair = 0;
  for (const TemplatePiece& p : post.single) post.added_single += p.ids.size();
  for (const TemplatePiece& p : post.pair) post.added_pair += p.ids.size();

  const auto lookup = [&](const std::string& token) -> int32_t {
    for (const AddedToken& t : added_tokens) {
      if (t.content == token) return t.id;
    }
    return model->TokenToId(token).value_or(-1);
  };
  cls_id = lookup("[CLS]");
  sep_id = lookup("[SEP]");
  // With a template, [CLS]/[SEP] are its first / last special token.
  for (const TemplatePiece& p : post.single) {
    if (!p.is_sequence && !p.ids.empty()) {
      cls_id = p.ids.front();
      break;
    }
  }
  for (auto it = post.single.rbegin(); it != post.single.rend(); ++it) {
    if (!it->is_sequence && !it->ids.empty()) {
      sep_id = it->ids.back();
      break;
    }
  }
  return Status::Ok();
}

void TokenizerImpl::TokenizeText(std::string_view text, std::vector<int32_t>* ids) const {
  Scratch& s = ThreadScratch();
  s.raw_pieces.clear();
  raw_matcher.Split(text, &s.raw_pieces);
  for (const TextPiece& raw : s.raw_pieces) {
    if (raw.id >= 0) {
      ids->push_back(raw.id);
      continue;
    }
    Normalize(normalizer, text.substr(raw.begin, raw.end - raw.begin), &s.normalizer,
              &s.normalized);
    const std::string_view normalized = s.normalized;
    s.norm_pieces.clear();
    if (normalized_matcher.empty()) {
      s.norm_pieces.push_back({0, static_cast<uint32_t>(normalized.size()), -1});
    } else {
      normalized_matcher.Split(normalized, &s.norm_pieces);
    }
    for (const TextPiece& piece : s.norm_pieces) {
      if (piece.id >= 0) {
        ids->push_back(piece.id);
        continue;
      }
      const std::string_view segment = normalized.substr(piece.begin, piece.end - piece.begin);
      s.words.clear();
      if (bert_pre_tokenizer) {
        BertPreTokenize(segment, &s.words);
      } else if (!segment.empty()) {
        s.words.push_back(segment);
      }
      for (std::string_view word : s.words) model->Tokenize(word, ids);
    }
  }
  if (s.normalized.capacity() > kMaxRetainedScratch ||
      s.normalizer.a.capacity() > kMaxRetainedScratch) {
    s = Scratch();
  }
}

}  // namespace tokenizer_internal

using tokenizer_internal::TokenizerImpl;

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {
// Keeps n of the ids: the first n, or the last n for kLeft. True when any was dropped.
bool KeepTokens(std::vector<int32_t>* ids, size_t n, TruncationSide side) {
  if (ids->size() <= n) return false;
  if (side == TruncationSide::kLeft) {
    ids->erase(ids->begin(), ids->end() - static_cast<std::ptrdiff_t>(n));
  } else {
    ids->resize(n);
  }
  return true;
}
}  // namespace

StatusOr<Encoding> Tokenizer::Encode(std::string_view text, size_t max_length,
                                     TruncationSide side) const {
  RETURN_IF_ERROR(tokenizer_internal::CheckUtf8(text, "text"));
  const size_t specials = impl_->post.added_single;
  if (max_length < specials) {
    return InvalidArgument("max_length " + std::to_string(max_length) +
                           " is smaller than the number of special tokens (" +
                           std::to_string(specials) + ")");
  }
  std::vector<int32_t> a;
  impl_->TokenizeText(text, &a);
  Encoding enc;
  enc.truncated = KeepTokens(&a, max_length - specials, side);
  const std::vector<int32_t>* seqs[2] = {&a, nullptr};
  enc.ids.reserve(a.size() + specials);
  enc.type_ids.reserve(a.size() + specials);
  for (const auto& piece : impl_->post.single) tokenizer_internal::AppendPiece(piece, seqs, &enc);
  return enc;
}

StatusOr<Encoding> Tokenizer::EncodePair(std::string_view a, std::string_view b, size_t max_length,
                                         TruncationSide side) const {
  RETURN_IF_ERROR(tokenizer_internal::CheckUtf8(a, "first text"));
  RETURN_IF_ERROR(tokenizer_internal::CheckUtf8(b, "second text"));
  const size_t specials = impl_->post.added_pair;
  if (max_length < specials) {
    return InvalidArgument("max_length " + std::to_string(max_length) +
                           " is smaller than the number of special tokens of a pair (" +
                           std::to_string(specials) + ")");
  }
  std::vector<int32_t> ids_a, ids_b;
  impl_->TokenizeText(a, &ids_a);
  impl_->TokenizeText(b, &ids_b);
  Encoding enc;
  const auto [n1, n2] =
      tokenizer_internal::LongestFirstLengths(ids_a.size(), ids_b.size(), max_length - specials);
  const bool cut_a = KeepTokens(&ids_a, n1, side);
  const bool cut_b = KeepTokens(&ids_b, n2, side);
  enc.truncated = cut_a || cut_b;
  const std::vector<int32_t>* seqs[2] = {&ids_a, &ids_b};
  const size_t total = ids_a.size() + ids_b.size() + specials;
  enc.ids.reserve(total);
  enc.type_ids.reserve(total);
  for (const auto& piece : impl_->post.pair) tokenizer_internal::AppendPiece(piece, seqs, &enc);
  return enc;
}

const std::string& Tokenizer::IdToToken(int32_t id) const {
  static const std::string kEmpty;
  auto it = impl_->added_id_to_token.find(id);
  if (it != impl_->added_id_to_token.end()) return it->second;
  const std::string* token = impl_->model->IdToToken(id);
  return token != nullptr ? *token : kEmpty;
}

size_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}
int32_t Tokenizer::cls_id() const {
  return impl_->cls_id;
}
int32_t Tokenizer::sep_id() const {
  return impl_->sep_id;
}
int32_t Tokenizer::pad_id() const {
  return impl_->pad_id;
}
int32_t Tokenizer::unk_id() const {
  return impl_->model->unk_id();
}
size_t Tokenizer::num_special_tokens(bool pair) const {
  return pair ? impl_->post.added_pair : impl_->post.added_single;
}

}  // namespace encserve
