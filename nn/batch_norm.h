// BatchNorm2d (and 1d on (n, c) inputs): as torch.nn.BatchNorm2d with affine weight/bias
// (c) and the buffers running_mean / running_var (c). Training normalises with the batch's
// statistics and updates the running ones (momentum, unbiased variance); evaluation uses the
// running ones. The channel count is read from the weight's shape, so pruning shrinks it
// by slicing the four vectors.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink::nn {

class BatchNorm2d : public Module {
 public:
  // weight = 1, bias = 0, running_mean = 0, running_var = 1 (PyTorch's reset_parameters).
  explicit BatchNorm2d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1);
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override;
  void check_invariants() const override;

  std::int64_t num_features() const { return parameter("weight").size(0); }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  // The weight of a training pass's batch statistics in the running ones (in [0, 1]);
  // recalibrate_batch_norm (nn/batch_norm_recalibration.h) sets it per pass.
  void set_momentum(double momentum);

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  double eps_, momentum_;
};

}  // namespace shrink::nn
