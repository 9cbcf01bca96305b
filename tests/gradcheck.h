// Central-finite-difference gradient checker, in float64.
//
// For f: inputs -> tensor, the check builds L = sum_i w_i * f(x)_i with fixed random
// weights w (so a non-scalar output is tested in every element, not just through its sum),
// runs autograd once with the seed w, and compares each input element's gradient against
// (L(x + h e_j) - L(x - h e_j)) / 2h. The failure message names the op, the input, the
// worst element (flat and multi-index), both values and the tolerance.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/test_helpers.h"

namespace shrink::testing {

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// How an input's values are drawn. Kinks and ties are avoided by construction:
//   Normal   N(0, 1)-ish uniform in [-2, 2]
//   Positive [0.5, 2]                       (log, sqrt, pow, div's denominator)
//   AwayFromZero |x| in [0.2, 2], random sign (relu, abs)
//   Relu6Range in [-2, 8], at least 0.2 from 0 and 6
//   Distinct   a shuffled ladder with gaps of 0.1 (max: no near-ties)
enum class Init { Normal, Positive, AwayFromZero, Relu6Range, Distinct };

struct InputSpec {
  Shape shape;
  Init init = Init::Normal;
  InputSpec(Shape s, Init i = Init::Normal) : shape(std::move(s)), init(i) {}  // NOLINT
};

inline Tensor make_input(const InputSpec& spec, std::mt19937_64& rng) {
  const std::int64_t n = numel(spec.shape);
  std::vector<double> v(static_cast<size_t>(n));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& x : v) {
    switch (spec.init) {
      case Init::Normal: x = -2.0 + 4.0 * u(rng); break;
      case Init::Positive: x = 0.5 + 1.5 * u(rng); break;
      case Init::AwayFromZero: x = (u(rng) < 0.5 ? -1.0 : 1.0) * (0.2 + 1.8 * u(rng)); break;
      case Init::Relu6Range: {
        do x = -2.0 + 10.0 * u(rng);
        while (std::abs(x) < 0.2 || std::abs(x - 6.0) < 0.2);
        break;
      }
      case Init::Distinct: break;
    }
  }
  if (spec.init == Init::Distinct) {
    for (std::int64_t i = 0; i < n; ++i) v[i] = -0.05 * static_cast<double>(n) + 0.1 * static_cast<double>(i);
    std::shuffle(v.begin(), v.end(), rng);
  }
  return Tensor::from_vector(v, spec.shape);
}


struct GradCheckOptions {
  double h = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  std::uint64_t seed = 1234;
};

// Weighted sum of `out` (as float64 values) with the weights w.
inline double weighted_sum(const Tensor& out, const std::vector<double>& w) {
  const std::vector<double> v = out.to(DType::Float64).to_vector<double>();
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) acc += w[i] * v[i];
  return acc;
}

// Checks autograd against finite differences for every input of `inputs` that requires
// grad. Inputs must be float64 CPU leaves; the others are passed through unchanged.
inline ::testing::AssertionResult gradcheck(const std::string& name, const TensorFn& f,
                                            std::vector<Tensor> inputs,
                                            const GradCheckOptions& opt = {}) {
  for (auto& x : inputs) {
    if (!x.requires_grad()) continue;
    if (x.dtype() != DType::Float64 || x.grad_fn())
      return ::testing::AssertionFailure()
             << name << ": gradcheck inputs must be float64 leaves";
    x.zero_grad();
  }

  // ---- analytic: one backward with seed w ----
  Tensor out = f(inputs);
  if (!out.requires_grad())
    return ::testing::AssertionFailure() << name << ": output does not require grad";
  if (out.dtype() != DType::Float64)
    return ::testing::AssertionFailure() << name << ": output is " << dtype_name(out.dtype())
                                         << ", expected float64";
  std::mt19937_64 rng(opt.seed);
  std::uniform_real_distribution<double> wdist(0.5, 1.5);
  std::vector<double> w(static_cast<size_t>(out.numel()));
  for (auto& x : w) x = (rng() & 1 ? 1.0 : -1.0) * wdist(rng);
  out.backward(Tensor::from_vector(w, out.shape()));
  const Shape out_shape = out.shape();
  out = Tensor();  // release the graph before perturbing

  std::vector<std::vector<double>> analytic(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    Tensor g = x.grad();
    if (!g.defined()) {
      analytic[i].assign(static_cast<size_t>(x.numel()), 0.0);  // no path: zero gradient
      continue;
    }
    if (g.shape() != x.shape() || g.dtype() != DType::Float64)
      return ::testing::AssertionFailure()
             << name << ": gradient of input " << i << " has shape " << shape_str(g.shape())
             << " " << dtype_name(g.dtype()) << ", expected " << shape_str(x.shape()) << " float64";
    analytic[i] = g.to_vector<double>();
  }

  // ---- numeric: central differences, element by element ----
  double worst_excess = -1;  // max of |a - n| - tol
  std::ostringstream worst;
  std::int64_t checked = 0;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    double* data = x.data<double>();
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double saved = data[j];
      data[j] = saved + opt.h;
      const Tensor plus = f(inputs);
      if (plus.shape() != out_shape)
        return ::testing::AssertionFailure() << name << ": output shape changed under no_grad";
      const double lp = weighted_sum(plus, w);
      data[j] = saved - opt.h;
      const double lm = weighted_sum(f(inputs), w);
      data[j] = saved;
      const double numeric = (lp - lm) / (2 * opt.h);
      const double a = analytic[i][static_cast<size_t>(j)];
      const double tol = opt.atol + opt.rtol * std::abs(numeric);
      const double excess = std::isfinite(a) ? std::abs(a - numeric) - tol : 1e300;
      ++checked;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst.str("");
        worst << name << ": input " << i << " " << shape_str(x.shape()) << " element " << j << " "
              << index_str(x.shape(), j) << ": autograd " << a << " vs finite difference "
              << numeric << " (|diff| " << std::abs(a - numeric) << ", tolerance " << tol << ")";
      }
    }
  }
  if (checked == 0) return ::testing::AssertionFailure() << name << ": no input requires grad";
  if (worst_excess > 0) return ::testing::AssertionFailure() << "worst element of " << worst.str();
  return ::testing::AssertionSuccess();
}

// Convenience: draws inputs from `specs` (float64, requires_grad) and checks.
inline ::testing::AssertionResult gradcheck(const std::string& name, const TensorFn& f,
                                            const std::vector<InputSpec>& specs,
                                            const GradCheckOptions& opt = {}) {
  std::mt19937_64 rng(opt.seed ^ std::hash<std::string>{}(name));
  std::vector<Tensor> inputs;
  for (const auto& s : specs) {
    Tensor x = make_input(s, rng);
    x.requires_grad_();
    inputs.push_back(x);
  }
  return gradcheck(name, f, std::move(inputs), opt);
}

}  // namespace shrink::testing
