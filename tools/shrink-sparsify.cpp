// shrink-sparsify: one round of unstructured pruning (SAP with the PQ Index, or the lottery
// ticket / one-shot baselines), after which the surviving weights are stored physically in
// CSR layers (nn::SparseLinear, nn::SparseConv2d) and rewound to the initial weights (Diao et al. 2023,
// Alg. 1). Chained with shrink-train it gives the iterative prune → retrain procedure.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "prune/sap.h"
#include "tools/common/cli.h"
#include "tools/common/data_options.h"
#include "tools/common/validators.h"

int main(int argc, char** argv) {
  using namespace shrink;
  std::string checkpoint, method = "sap", scope_name = "layer", init, reference, out = "sparse.safetensors";
  prune::SapOptions sap;
  double fraction = 0.2;
  bool json = false;
  tools::CommonOptions common;
  CLI::App app{"One round of unstructured pruning into compressed sparse (CSR) layers.", "shrink-sparsify"};
  app.add_option("checkpoint", checkpoint, "Trained model (.safetensors)")->required();
  app.add_option("--method", method, "sap (PQ Index decides the count), lottery (remove --fraction of "
                 "the remaining by current magnitude), one-shot (by the magnitude of --reference)")
      ->check(CLI::IsMember({"sap", "lottery", "one-shot"}))->capture_default_str();
  app.add_option("--scope", scope_name, "global, layer or neuron")
      ->check(CLI::IsMember({"global", "layer", "neuron"}))->capture_default_str();
  app.add_option("--init", init, "Initial weights to rewind to (shrink-train --epochs 0 writes them); "
                 "without it the surviving trained weights are kept");
  app.add_option("--reference", reference, "The first dense trained model (one-shot ranks by it)");
  app.add_option("--p", sap.p, "PQ Index p")->capture_default_str();
  app.add_option("--q", sap.q, "PQ Index q")->capture_default_str();
  app.add_option("--eta", sap.eta_r, "SAP eta_r")->capture_default_str();
  app.add_option("--gamma", sap.gamma, "SAP gamma")->capture_default_str();
  app.add_option("--beta", sap.beta, "SAP beta (largest fraction pruned per round)")->capture_default_str();
  app.add_option("--fraction", fraction, "lottery / one-shot: fraction removed per round, in [0, 1) (a round never "
                 "removes every weight)")
      ->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_option("--out", out, "Output checkpoint")->capture_default_str();
  app.add_flag("--json", json, "Print exactly one JSON object on stdout");
  tools::add_common_options(app, common);

  return tools::guarded_main(app, argc, argv, [&] {
    tools::apply_common_options(common);
    tools::check_output_path(out, {checkpoint, init, reference});
    SHRINK_CHECK(method != "one-shot" || !reference.empty(), "--method one-shot needs --reference");
    SHRINK_CHECK(method == "sap" || fraction < 1, "--fraction must be below 1: a round never removes every weight");
    if (method == "sap") prune::check_sap_options(sap);  // --p/--q/--eta/--gamma/--beta, before any work
    Generator gen(common.seed);
    nn::Checkpoint ckpt = nn::load_checkpoint(checkpoint, gen);
    nn::Module& model = *ckpt.model;
    const nn::StateDict init_state = init.empty() ? nn::StateDict{} : load_safetensors(init).tensors;
    const prune::Scope scope = prune::parse_scope(scope_name);
    prune::RoundReport r;
    if (method == "sap") r = prune::sap_unstructured_round(model, init_state, scope, sap);
    else if (method == "lottery") r = prune::lottery_round(model, init_state, scope, fraction);
    else r = prune::one_shot_mask_round(model, init_state, load_safetensors(reference).tensors, scope, fraction, reference);
    // The sparse model takes the inputs the dense one took: its recorded input size and channels
    // carry over (without them shrink-eval and shrink-train on the output had to be told again).
    tools::DataOptions recorded;
    tools::image_options_from_checkpoint(recorded, ckpt.metadata, checkpoint);
    std::map<std::string, std::string> metadata = {
        {"sparsified_from", checkpoint}, {"method", method}, {"scope", scope_name}};
    metadata.merge(tools::image_metadata(tools::image_options(recorded)));
    nn::save_checkpoint(out, model, metadata);
    nlohmann::json scopes = nlohmann::json::array();
    for (const auto& s : r.scopes)
      scopes.push_back({{"name", s.name}, {"d", s.d}, {"pqi", s.pqi}, {"keep_bound", s.keep_bound},
                        {"prune", s.prune}, {"removed", s.removed}});
    const nlohmann::json report{{"method", method}, {"scope", scope_name},
                                {"remaining_before", r.remaining_before}, {"remaining", r.remaining},
                                {"layer_remaining", r.layer_remaining}, {"params", model.num_parameters()},
                                {"scopes", scopes}, {"out", out}};
    if (json) {
      std::cout << report.dump() << std::endl;
    } else {
      std::printf("%s (%s scope): %lld -> %lld stored weights; saved %s\n", method.c_str(), scope_name.c_str(),
                  static_cast<long long>(r.remaining_before), static_cast<long long>(r.remaining), out.c_str());
      for (const auto& s : r.scopes)
        if (scopes.size() <= 8)
          std::printf("  %-8s d=%lld I=%.4f removed %lld\n", s.name.c_str(), static_cast<long long>(s.d), s.pqi,
                      static_cast<long long>(s.removed));
    }
    return 0;
  });
}
