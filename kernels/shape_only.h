// Shape-only execution. While it is on for a thread, kernels::backend() hands that thread a
// backend that allocates, frees and copies memory as the real one does but runs no compute
// kernel. Ops above still check their arguments, size their outputs, count FLOPs and record
// autograd nodes, so a forward pass in this mode yields every shape and the whole graph for
// the price of the allocations: what tracing channel coupling (prune/trace.h) and counting
// FLOPs (nn/flops.h) need, neither of which reads a value. Outputs hold unspecified values:
// nothing computed in this mode may be read. (PyTorch's "meta" tensors serve the same end.)
#pragma once

namespace shrink::kernels {

// Turns the mode on or off for the calling thread; returns the previous setting.
bool set_shape_only(bool on);
bool shape_only();

}  // namespace shrink::kernels
