// Dropout: inverted dropout while training, identity in eval mode (torch.nn.Dropout).
// The mask is drawn from the Generator given at construction, which must outlive the
// module, so a seeded run is reproducible.
#pragma once
#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen);
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace shrink::nn
