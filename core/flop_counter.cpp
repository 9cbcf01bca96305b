#include "core/flop_counter.h"

namespace shrink {

namespace {
thread_local FlopCounter* innermost = nullptr;
}

FlopCounter::FlopCounter() : outer_(innermost) { innermost = this; }

FlopCounter::~FlopCounter() { innermost = outer_; }

void count_flops(std::int64_t flops) {
  for (FlopCounter* c = innermost; c != nullptr; c = c->outer_) c->count_ += flops;
}

}  // namespace shrink
