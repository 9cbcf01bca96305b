// Dropout: inverted dropout while training, identity in eval mode (torch.nn.Dropout).
// The layer owns its mask stream: a Generator seeded from one draw of the generator given
// at construction, so a seeded run is reproducible and the layer outlives that generator
// (a checkpoint loader's or a shape-only copy's throwaway one).
#pragma once
#include "core/random.h"
#include "nn/module.h"

namespace shrink::nn {

class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen);
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
  double p() const { return p_; }
  // The mask stream, for saving and restoring a run's state (nn/train_state.h).
  const Generator& generator() const { return gen_; }
  void set_generator(const Generator& gen) { gen_ = gen; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  double p_;
  Generator gen_;
};

}  // namespace shrink::nn
