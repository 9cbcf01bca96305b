// FlopCounter: a thread-local scope, like NoGradGuard, that counts the floating-point
// work of the forward ops run while it is alive. Ops that do multiply-adds report it
// (count_flops below); a module that computes a product outside any Linear (an attention
// matmul) is therefore counted without restating its forward.
//
// The convention (nn/flops.h quotes it): one multiply-add = 2 FLOPs, so matmul and
// linear cost 2*m*n*k, a bias add inside linear / csr_linear costs `out` per row, the
// CSR product 2*nnz per row; elementwise ops, reductions and the backward pass count 0.
// Nested scopes each see everything run inside them.
#pragma once
#include <cstdint>

namespace shrink {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  std::int64_t count() const { return count_; }

 private:
  friend void count_flops(std::int64_t flops);
  std::int64_t count_ = 0;
  FlopCounter* outer_;
};

// Adds `flops` to every FlopCounter alive on this thread; a no-op (one thread-local
// load) when there is none, so ops call it unconditionally.
void count_flops(std::int64_t flops);

}  // namespace shrink
