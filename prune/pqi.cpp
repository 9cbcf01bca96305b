#include "prune/pqi.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace shrink::prune {

namespace {

void check_pq(double p, double q) {
  SHRINK_CHECK(p > 0 && q > p, "pq_index: needs 0 < p < q, got p = ", p, ", q = ", q);
}

}  // namespace

void check_sap_options(const SapOptions& o, const std::string& flag_prefix) {
  const std::string& f = flag_prefix;
  SHRINK_CHECK(std::isfinite(o.p) && std::isfinite(o.q) && o.p > 0 && o.q > o.p,
               "SAP: needs finite 0 < p < q (", f, "p, ", f, "q), got p = ", o.p, ", q = ", o.q);
  SHRINK_CHECK(std::isfinite(o.eta_r) && o.eta_r >= 0, "SAP: eta_r (", f, "eta) must be finite and >= 0, got ",
               o.eta_r);
  SHRINK_CHECK(std::isfinite(o.gamma) && o.gamma > 0, "SAP: gamma (", f, "gamma) must be finite and > 0, got ",
               o.gamma);
  SHRINK_CHECK(o.beta > 0 && o.beta <= 1, "SAP: beta (", f, "beta, the largest fraction pruned per round) must be "
               "in (0, 1], got ", o.beta);
}

double pq_index(std::span<const double> w, double p, double q) {
  check_pq(p, q);
  // Mean form of I_{p,q}; scaling |w| by its maximum first keeps |w|^p and |w|^q in range
  // (I is scale invariant: the Scaling axiom).
  double peak = 0;
  for (double v : w) peak = std::max(peak, std::abs(v));
  if (peak == 0) return 0.0;
  double sum_p = 0, sum_q = 0;
  std::int64_t d = 0;
  for (double v : w) {
    if (v == 0) continue;
    const double a = std::abs(v) / peak;
    sum_p += std::pow(a, p);
    sum_q += std::pow(a, q);
    ++d;
  }
  const double dd = static_cast<double>(d);
  const double index = 1.0 - std::pow(sum_p / dd, 1.0 / p) / std::pow(sum_q / dd, 1.0 / q);
  return std::max(0.0, index);  // >= 0 by the power-mean inequality; clamp rounding
}

double pq_index(const Tensor& w, double p, double q) {
  const std::vector<double> v = w.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
  return pq_index(std::span<const double>(v), p, q);
}

double pqi_keep_bound(std::int64_t d, double index, const SapOptions& o) {
  check_pq(o.p, o.q);
  SHRINK_CHECK(o.eta_r >= 0, "pqi_keep_bound: eta_r must be >= 0, got ", o.eta_r);
  const double dd = static_cast<double>(d);
  return dd * std::pow(1.0 + o.eta_r, -o.q / (o.q - o.p)) *
         std::pow(1.0 - index, o.q * o.p / (o.q - o.p));
}

std::int64_t pqi_prune_count(std::int64_t d, std::int64_t r, const SapOptions& o) {
  if (d <= 0) return 0;
  const double dd = static_cast<double>(d);
  const double ratio = std::max(0.0, std::min(o.gamma * (1.0 - static_cast<double>(r) / dd), o.beta));
  return static_cast<std::int64_t>(std::floor(dd * ratio));
}

PqiDecision pqi_decide(std::span<const double> w, const SapOptions& o) {
  check_sap_options(o);
  PqiDecision out;
  out.d = std::count_if(w.begin(), w.end(), [](double v) { return v != 0; });
  out.index = pq_index(w, o.p, o.q);
  out.keep_bound = pqi_keep_bound(out.d, out.index, o);
  out.keep = static_cast<std::int64_t>(std::ceil(out.keep_bound));
  out.prune = pqi_prune_count(out.d, out.keep, o);
  return out;
}

}  // namespace shrink::prune
