// A generated sequence-classification task for the token models (no text corpus can be
// downloaded here): "majority". Each sequence is [CLS] then 8..32 tokens, padded with PAD to
// 33; a token is a distractor (uniform over 22 ids) or, with probability 1/2, one of 8 marker
// ids; the label (8 classes) is the marker that occurs most often (sequences with a tie are
// redrawn, so a winner often leads by one). A model must count across the whole sequence and
// ignore padding, so it needs attention and the padding mask. Ids: 0 PAD, 1 CLS, 2..9
// markers, 10..31 distractors (vocabulary 32).
// 50000 train / 10000 test sequences, the same on every machine (a fixed mt19937_64 stream).
//
// In the Dataset, `train.images` / `test.images` hold the int64 ids (N, 33) and
// `vocab_size` is 32; sample_shape is (33).
#pragma once
#include <cstdint>

#include "datasets/dataset.h"

namespace shrink::datasets {

constexpr std::int64_t kPadId = 0, kClsId = 1;

struct MajorityTaskOptions {
  std::int64_t train = 50000, test = 10000;
  std::int64_t min_tokens = 8, max_tokens = 32;  // before CLS and padding
  std::uint64_t seed = 20261203;
};

Dataset majority_task(const MajorityTaskOptions& o = {});

}  // namespace shrink::datasets
