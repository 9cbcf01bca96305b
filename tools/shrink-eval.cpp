// shrink-eval: loads a checkpoint and reports test accuracy, loss, parameters, FLOPs per
// sample and the measured latency of one batch.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "datasets/registry.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "tools/common/cli.h"
#include "tools/common/data_options.h"
#include "tools/common/model_for_data.h"
#include "tools/common/validators.h"
#include "tools/common/summary.h"

int main(int argc, char** argv) {
  using namespace shrink;
  std::string checkpoint, data_spec = "fashion-mnist";
  std::int64_t batch_size = 128;
  bool json = false, latency_only = false;
  tools::DataOptions images;
  tools::CommonOptions common;
  CLI::App app{"Evaluate a checkpoint on a data set's test split.", "shrink-eval"};
  app.add_option("checkpoint", checkpoint, "Model checkpoint (.safetensors)")->required();
  app.add_option("--data", data_spec, "fashion-mnist, mnist, idx:DIR, cifar10, cifar10:DIR, or majority (generated token sequences)")->capture_default_str();
  tools::add_image_options(app, images);
  app.add_option("--batch-size", batch_size, "Batch size for evaluation and the latency probe")
      ->check(tools::positive())->capture_default_str();
  app.add_flag("--json", json, "Print exactly one JSON object on stdout");
  app.add_flag("--latency-only", latency_only,
               "Skip the test-set pass: parameters, FLOPs and the latency probe only (accuracy and loss "
               "are then absent from the output)");
  tools::add_common_options(app, common);

  return tools::guarded_main(app, argc, argv, [&] {
    const Device device = tools::apply_common_options(common);
    Generator gen(common.seed);
    nn::Checkpoint ckpt = nn::load_checkpoint(checkpoint, gen);
    tools::image_options_from_checkpoint(images, ckpt.metadata, checkpoint);  // sized as it was trained
    const datasets::Dataset data = datasets::load_dataset(data_spec, tools::image_options(images));
    tools::check_model_fits_data(ckpt.spec, data, checkpoint);
    nn::Module& model = *ckpt.model;
    model.to(device);

    const tools::ModelSummary m = tools::summarize(model, ckpt.spec, data, device, batch_size, !latency_only);
    if (json) {
      nlohmann::json out{{"checkpoint", checkpoint},
                         {"data", data.name},
                         {"params", m.params},
                         {"flops", m.flops},
                         {"latency_ms", m.latency_ms},
                         {"latency_batch_size", m.latency_batch},
                         {"device", device.str()},
                         {"model", ckpt.spec},
                         {"widths", nn::layer_widths(model)}};
      if (!latency_only) {
        out["accuracy"] = m.accuracy;
        out["loss"] = m.loss;
      }
      std::cout << out.dump() << std::endl;
    } else {
      std::printf("checkpoint    %s\n", checkpoint.c_str());
      std::printf("model         %s\n", ckpt.spec.dump().c_str());
      std::printf("data          %s test split (%lld samples)\n", data.name.c_str(),
                  static_cast<long long>(data.test.size()));
      if (!latency_only) {
        std::printf("accuracy      %.2f%%\n", m.accuracy * 100);
        std::printf("loss          %.4f\n", m.loss);
      }
      std::printf("parameters    %lld\n", static_cast<long long>(m.params));
      std::printf("FLOPs/sample  %lld\n", static_cast<long long>(m.flops));
      std::printf("latency       %.3f ms per batch of %lld on %s (median of 25)\n", m.latency_ms,
                  static_cast<long long>(m.latency_batch), device.str().c_str());
    }
    return 0;
  });
}
