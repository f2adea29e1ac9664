#include "tokenizer/wordpiece.h"

#include "tokenizer/unicode.h"

namespace encserve::tokenizer_internal {

namespace {
constexpr int32_t kMaxVocabId = 1 << 24;  // sanity bound against corrupt files
}  // namespace

StatusOr<std::unique_ptr<WordPiece>> WordPiece::Create(
    std::vector<std::pair<std::string, int32_t>> vocab, WordPieceConfig config) {
  std::unique_ptr<WordPiece> wp(new WordPiece());
  wp->config_ = std::move(config);
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id >= kMaxVocabId) {
      return DataLoss("vocabulary id " + std::to_string(id) + " of token '" + token +
                      "' is out of range");
    }
    if (id > max_id) max_id = id;
  }
  wp->tokens_.reserve(vocab.size());
  for (auto& entry : vocab) wp->tokens_.push_back(std::move(entry.first));
  wp->id_to_entry_.assign(static_cast<size_t>(max_id + 1), -1);
  // Insert in the given order so that a later duplicate wins, like HF's HashMap::insert.
  const std::string& prefix = wp->config_.continuing_subword_prefix;
  wp->vocab_.reserve(vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) {
    const int32_t id = vocab[i].second;
    wp->id_to_entry_[id] = static_cast<int32_t>(i);
    wp->vocab_.insert_or_assign(std::string_view(wp->tokens_[i]), id);
  }
  // Duplicated tokens: only the winning id is reachable, as in HF.
  for (const auto& [tok, id] : wp->vocab_) {
    if (tok.size() >= prefix.size() && tok.compare(0, prefix.size(), prefix) == 0) {
      wp->continuation_.emplace(tok.substr(prefix.size()), id);
    }
  }
  auto unk = wp->vocab_.find(std::string_view(wp->config_.unk_token));
  if (unk == wp->vocab_.end()) {
    return DataLoss("unk token '" + wp->config_.unk_token + "' is not in the vocabulary");
  }
  wp->unk_id_ = unk->second;
  return wp;
}

void WordPiece::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (unicode::CountCodePoints(word) > config_.max_input_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t mark = ids->size();
  size_t start = 0;
  while (start < word.size()) {
    const auto& table = start == 0 ? vocab_ : continuation_;
    size_t end = word.size();
    int32_t found = -1;
    while (start < end) {
      auto it = table.find(word.substr(start, end - start));
      if (it != table.end()) {
        found = it->second;
        break;
      }
      // Step back one code point.
      do {
        --end;
      } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {
      ids->resize(mark);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    start = end;
  }
}

std::optional<int32_t> WordPiece::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* WordPiece::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_entry_.size() || id_to_entry_[id] < 0) {
    return nullptr;
  }
  return &tokens_[id_to_entry_[id]];
}

}  // namespace encserve::tokenizer_internal
