// Data-free calibration sequences for GPTQ (int4): vocabulary words instead of a text corpus.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace encserve {

// n sequences of [CLS] + 6..40 whole-word tokens + [SEP]. The words are the vocabulary entries
// of two or more ASCII lower-case letters (no "##" pieces, digits or punctuation), drawn
// log-uniformly over their id order (BERT vocabularies list words roughly by frequency, so this
// is about Zipf's law), by a fixed LCG: the same sequences on every machine. Word salad, but it
// exercises the embeddings and attention like text does; tools/quant_sim.py ("wordsz512")
// measures it within 0.003 of calibrating on real MS MARCO queries. Empty when the vocabulary
// has no such words (the caller then skips GPTQ).
std::vector<std::vector<int32_t>> VocabularyCalibration(const Tokenizer& tokenizer, int n = 512);

}  // namespace encserve
