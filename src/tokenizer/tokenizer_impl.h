// Internal state of encserve::Tokenizer (shared by tokenizer.cc and tokenizer_loader.cc).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/wordpiece.h"

namespace encserve::tokenizer_internal {

// One element of a TemplateProcessing template.
struct TemplatePiece {
  bool is_sequence = false;
  int sequence = 0;          // 0: A, 1: B (when is_sequence)
  std::vector<int32_t> ids;  // special token ids (when !is_sequence)
  int32_t type_id = 0;
};

struct PostProcessorTemplate {
  std::vector<TemplatePiece> single;
  std::vector<TemplatePiece> pair;
  size_t added_single = 0;
  size_t added_pair = 0;
};

struct TokenizerImpl {
  NormalizerConfig normalizer;
  bool bert_pre_tokenizer = true;
  std::unique_ptr<WordPiece> model;
  std::vector<AddedToken> added_tokens;
  std::unordered_map<int32_t, std::string> added_id_to_token;
  AddedTokenMatcher raw_matcher;         // normalized == false tokens, on the raw text
  AddedTokenMatcher normalized_matcher;  // normalized == true tokens, on normalized pieces
  PostProcessorTemplate post;
  int32_t cls_id = -1;
  int32_t sep_id = -1;
  int32_t pad_id = 0;
  size_t vocab_size = 0;

  // Builds the matchers, special ids and vocab_size once `model`, `normalizer`,
  // `added_tokens` and `post` are set.
  Status Finish();

  // Ids of `text` (valid UTF-8) without special tokens / truncation.
  void TokenizeText(std::string_view text, std::vector<int32_t>* ids) const;

  static std::unique_ptr<Tokenizer> Wrap(std::unique_ptr<TokenizerImpl> impl) {
    return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
  }
};

// The template of BertProcessing: [CLS] A [SEP] / [CLS] A [SEP] B [SEP] (B part type 1).
PostProcessorTemplate BertTemplate(int32_t cls_id, int32_t sep_id);

}  // namespace encserve::tokenizer_internal
