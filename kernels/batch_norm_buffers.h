// The buffer contract of the batch_norm kernel (kernel_list.h), checked the same way by every
// backend before it touches memory.
#pragma once
#include "kernels/dtype_dispatch.h"

namespace shrink::kernels {

inline void check_batch_norm_buffers(bool training, const void* running_mean, const void* running_var,
                                     const void* save_mean, const void* save_invstd) {
  if (!training && (running_mean == nullptr || running_var == nullptr))
    throw Unsupported("batch_norm: evaluation needs the running statistics");
  if (training && (save_mean == nullptr || save_invstd == nullptr))
    throw Unsupported("batch_norm: training needs save_mean and save_invstd buffers");
  if (training && (running_mean == nullptr) != (running_var == nullptr))
    throw Unsupported("batch_norm: running_mean and running_var must be given together");
}

}  // namespace shrink::kernels
