// The one table of differentiable ops for the tests. Each row: a name, its inputs (shape and
// value domain), the function under test (core ops only), a forward reference built from
// kernels/reference/ where one exists, the pointwise kernel it runs, and tolerances. The
// table drives:
//   test_op_table.cpp       float64 gradient check against central differences, and the
//                           forward check against the reference (float64 and float32)
//   test_op_table_cuda.cpp  CUDA against CPU, forward and every input gradient
//   test_kernels_*.cpp      the unary kernel list (rows with `unary` set)
//
// Adding an op touches: its kernel declaration (kernels/backend.h), the CPU kernel, the CUDA
// kernel, the core op (core/ops/), and one row here (plus, if it has a new formula, the
// plain loop in kernels/reference/). Nothing else lists ops.
#pragma once
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/shrink.h"
#include "kernels/backend.h"
#include "tests/gradcheck.h"
#include "tests/op_reference.h"
#include "tests/op_reference_pool_bn.h"

namespace shrink::testing {

// The pointwise kernel a row runs, so the kernel-level tests share this list.
struct UnaryKernel {
  kernels::UnaryOp op;
  double alpha = 0;
  // No transcendental function: IEEE-exact, so bitwise equal on CPU and GPU.
  bool correctly_rounded = false;
};

struct OpCase {
  std::string name;
  std::vector<InputSpec> inputs;
  TensorFn fn;
  ReferenceFn reference;             // empty: no forward reference (composites, dropout)
  std::optional<UnaryKernel> unary;  // set for rows that are one pointwise kernel
  GradCheckOptions grad{};           // float64 central differences
  bool gradcheck = true;
  bool any_shape = false;  // pointwise: the forward check also runs on a large shape
  double tol32 = 1e-5;     // forward vs reference and CUDA vs CPU, float32 (atol and rtol)
  double tol64 = 1e-12;    // the same in float64
  std::string no_cuda;     // non-empty: why the CUDA comparison does not apply
};

// Test names: letters, digits and '_' only ("pow_2.5" -> "pow_2_5").
inline std::string test_name(const std::string& s) {
  std::string out = s;
  for (char& ch : out)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return out;
}

// The value range [lo, hi] an input domain draws from (kernel tests draw their own sizes).
inline std::pair<double, double> value_range(Init init) {
  switch (init) {
    case Init::Positive: return {0.5, 2.0};
    case Init::Relu6Range: return {-2.0, 8.0};
    default: return {-2.0, 2.0};
  }
}

namespace op_table_rows {

using namespace op_reference;
using V = const std::vector<Tensor>&;

// A fixed CSR pattern (rows, cols) with an empty row 3: entry (r, c) where (7r + 3c) % 5 < 2.
struct CsrPattern {
  std::int64_t rows = 6, cols = 9;
  std::vector<std::int64_t> row_ptr{0}, col_idx;
  CsrPattern() {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c)
        if (r != 3 && (7 * r + 3 * c) % 5 < 2) col_idx.push_back(c);
      row_ptr.push_back(static_cast<std::int64_t>(col_idx.size()));
    }
  }
  std::int64_t nnz() const { return static_cast<std::int64_t>(col_idx.size()); }
};

// A fixed CSR pattern of a conv weight w (c_out, c_in / groups, kh, kw) over the unfolded
// input of all c_in channels (core/ops.h csr_conv2d): entry j of row r's group-local row is
// kept when (7r + 3j) % 5 < 3; `offset` is each entry's place in the dense weight.
struct ConvCsrPattern {
  std::vector<std::int64_t> row_ptr{0}, col_idx, offset;
  Shape weight;
  ConvCsrPattern(const Shape& w, std::int64_t groups) : weight(w) {
    const std::int64_t row_length = w[1] * w[2] * w[3], out_per_group = w[0] / groups;
    for (std::int64_t r = 0; r < w[0]; ++r) {
      for (std::int64_t j = 0; j < row_length; ++j)
        if ((7 * r + 3 * j) % 5 < 3) {
          col_idx.push_back(r / out_per_group * row_length + j);
          offset.push_back(r * row_length + j);
        }
      row_ptr.push_back(static_cast<std::int64_t>(col_idx.size()));
    }
  }
  std::int64_t nnz() const { return static_cast<std::int64_t>(col_idx.size()); }
};

// The dense conv reference on the pattern's weight (zeros where nothing is stored).
inline ReferenceFn csr_conv2d(const ConvCsrPattern& m, Conv2dOptions o) {
  return [m, o](R in) {
    RefInput w{m.weight, std::vector<double>(static_cast<std::size_t>(numel(m.weight)), 0.0)};
    for (std::size_t e = 0; e < m.offset.size(); ++e) w.values[m.offset[e]] = in[1].values[e];
    std::vector<RefInput> dense = {in[0], w};
    if (in.size() > 2) dense.push_back(in[2]);
    return conv2d(o)(dense);
  };
}

inline ReferenceFn csr_linear(const CsrPattern& m) {
  return [m](R in) {
    const std::int64_t batch = numel(in[0].shape) / m.cols;
    std::vector<double> y(static_cast<std::size_t>(batch * m.rows));
    ref::csr_linear_forward(batch, m.rows, m.cols, m.row_ptr.data(), m.col_idx.data(),
                            in[1].values.data(), in[0].values.data(),
                            in.size() > 2 ? in[2].values.data() : nullptr, y.data());
    return y;
  };
}

inline void add_binary_rows(std::vector<OpCase>& t) {
  struct Pattern {
    const char* name;
    Shape a, b;
  };
  const std::vector<Pattern> patterns = {
      {"same", {3, 5}, {3, 5}},          {"row", {3, 5}, {5}},
      {"column", {3, 5}, {3, 1}},        {"scalar_shaped", {3, 5}, {}},
      {"scalar_shaped_left", {}, {2, 3}}, {"leading_dim", {2, 3, 5}, {3, 5}},
      {"leading_dim_left", {3, 5}, {2, 3, 5}}, {"both_broadcast", {3, 1, 5}, {1, 4, 1}},
      {"middle", {2, 3, 4}, {2, 1, 4}},  {"ones_vs_full", {1, 1}, {3, 4}},
  };
  struct Op {
    const char* name;
    Tensor (*fn)(const Tensor&, const Tensor&);
    kernels::BinaryOp kernel;
  };
  const Op ops[] = {{"add", shrink::add, kernels::BinaryOp::Add},
                    {"sub", shrink::sub, kernels::BinaryOp::Sub},
                    {"mul", shrink::mul, kernels::BinaryOp::Mul},
                    {"div", shrink::div, kernels::BinaryOp::Div},
                    {"add_relu", shrink::add_relu, kernels::BinaryOp::AddRelu}};
  for (const Op& op : ops)
    for (const Pattern& p : patterns) {
      const Init b_init = op.kernel == kernels::BinaryOp::Div ? Init::Positive : Init::Normal;
      auto fn = op.fn;
      OpCase c;
      c.name = std::string(op.name) + "_" + p.name;
      c.inputs = {{p.a}, {p.b, b_init}};
      c.fn = [fn](V x) { return fn(x[0], x[1]); };
      c.reference = binary(op.kernel);
      t.push_back(std::move(c));
    }
}

// A pointwise row: one input of `shape` in `init`, one unary kernel.
inline OpCase pointwise(std::string name, Init init, TensorFn fn, kernels::UnaryOp op,
                        double alpha, bool correctly_rounded, Shape shape = {3, 5}) {
  OpCase c;
  c.name = std::move(name);
  c.inputs = {{std::move(shape), init}};
  c.fn = std::move(fn);
  c.reference = unary(op, alpha);
  c.unary = UnaryKernel{op, alpha, correctly_rounded};
  c.any_shape = true;
  return c;
}

// Pooling and batch norm over NCHW, layer norm over the last axis. Max-pool rows draw distinct values (0.1 apart), so no
// central difference straddles a tie; ties are tested explicitly (test_ops_pool_batch_norm.cpp).
// Training-mode batch_norm rows pass no running statistics: gradcheck runs the op hundreds of
// times and each training call would move them (their update is tested on its own).
inline void add_pool_batch_norm_rows(std::vector<OpCase>& t) {
  auto row = [&t](std::string name, std::vector<InputSpec> inputs, TensorFn fn,
                  ReferenceFn reference) {
    OpCase c;
    c.name = std::move(name);
    c.inputs = std::move(inputs);
    c.fn = std::move(fn);
    c.reference = std::move(reference);
    t.push_back(std::move(c));
  };
  auto opts = [](std::int64_t kh, std::int64_t kw, std::int64_t sh, std::int64_t sw,
                 std::int64_t ph, std::int64_t pw) {
    Pool2dOptions o;
    o.kernel_h = kh, o.kernel_w = kw, o.stride_h = sh, o.stride_w = sw, o.pad_h = ph, o.pad_w = pw;
    return o;
  };
  struct PoolRow {
    const char* name;
    Shape x;
    Pool2dOptions o;
  };
  const PoolRow max_rows[] = {{"max_pool2d_2x2_s2", {2, 2, 6, 8}, opts(2, 2, 2, 2, 0, 0)},
                              {"max_pool2d_3x3_s2_p1", {2, 2, 7, 9}, opts(3, 3, 2, 2, 1, 1)},
                              {"max_pool2d_3x2_s1_overlapping", {1, 3, 5, 6}, opts(3, 2, 1, 1, 0, 0)}};
  for (const PoolRow& p : max_rows) {
    const Pool2dOptions o = p.o;
    row(p.name, {{p.x, Init::Distinct}}, [o](V x) { return max_pool2d(x[0], o); },
        pool2d(kernels::PoolOp::Max, o));
  }
  const PoolRow avg_rows[] = {{"avg_pool2d_3x3_s2_p1", {2, 2, 7, 9}, opts(3, 3, 2, 2, 1, 1)},
                              {"avg_pool2d_2x3_s1_p1_overlapping", {1, 3, 5, 6}, opts(2, 3, 1, 1, 1, 1)}};
  for (const PoolRow& p : avg_rows) {
    const Pool2dOptions o = p.o;
    row(p.name, {{p.x}}, [o](V x) { return avg_pool2d(x[0], o); },
        pool2d(kernels::PoolOp::Average, o));
  }
  row("adaptive_avg_pool2d_1x1", {{{2, 3, 5, 4}}}, [](V x) { return shrink::adaptive_avg_pool2d(x[0], 1, 1); },
      adaptive_avg_pool2d(1, 1));
  row("adaptive_avg_pool2d_7x5_to_3x2", {{{2, 2, 7, 5}}},
      [](V x) { return shrink::adaptive_avg_pool2d(x[0], 3, 2); }, adaptive_avg_pool2d(3, 2));

  const Shape x4 = {4, 3, 2, 3}, c3 = {3};
  row("batch_norm_training", {{x4}, {c3, Init::Positive}, {c3}},
      [](V x) { return shrink::batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); },
      batch_norm(true, true));
  row("batch_norm_training_no_affine", {{{3, 4, 5}}},
      [](V x) { return shrink::batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
      batch_norm(true, false));
  row("batch_norm_training_2d", {{{5, 4}}, {{4}, Init::Positive}, {{4}}},
      [](V x) { return shrink::batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); },
      batch_norm(true, true));
  // Evaluation: fixed running statistics built inside the function (not gradchecked inputs).
  const std::vector<double> rm = {0.3, -0.2, 0.5}, rv = {0.8, 1.7, 0.4};
  auto stats = [](const std::vector<double>& v, const Tensor& like) {
    return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).to(like.dtype()).to(like.device());
  };
  row("batch_norm_eval", {{x4}, {c3, Init::Positive}, {c3}},
      [rm, rv, stats](V x) {
        return shrink::batch_norm(x[0], x[1], x[2], stats(rm, x[0]), stats(rv, x[0]), false);
      },
      batch_norm(false, true, rm, rv));
  row("batch_norm_eval_2d_no_affine", {{{5, 3}}},
      [rm, rv, stats](V x) {
        return shrink::batch_norm(x[0], Tensor(), Tensor(), stats(rm, x[0]), stats(rv, x[0]), false);
      },
      batch_norm(false, false, rm, rv));

  // Layer norm over the last axis: rows of odd lengths, with and without the affine part, and
  // rows longer than 1024 (the CUDA kernel's block-per-row path).
  row("layer_norm_3d", {{{2, 3, 7}}, {{7}}, {{7}}},
      [](V x) { return shrink::layer_norm(x[0], x[1], x[2]); }, layer_norm(true, true));
  row("layer_norm_no_affine", {{{5, 9}}}, [](V x) { return shrink::layer_norm(x[0], Tensor(), Tensor()); },
      layer_norm(false, false));
  row("layer_norm_gamma_only_eps", {{{4, 6}}, {{6}}},
      [](V x) { return shrink::layer_norm(x[0], x[1], Tensor(), 1e-3); }, layer_norm(true, false, 1e-3));
  row("layer_norm_one_row", {{{11}}, {{11}}, {{11}}},
      [](V x) { return shrink::layer_norm(x[0], x[1], x[2]); }, layer_norm(true, true));
  row("layer_norm_long_rows", {{{2, 1031}}, {{1031}}, {{1031}}},
      [](V x) { return shrink::layer_norm(x[0], x[1], x[2]); }, layer_norm(true, true));
}

inline std::vector<OpCase> build_op_cases() {
  using kernels::UnaryOp;
  std::vector<OpCase> t;
  auto row = [&t](std::string name, std::vector<InputSpec> inputs, TensorFn fn,
                  ReferenceFn reference = {}) -> OpCase& {
    OpCase c;
    c.name = std::move(name);
    c.inputs = std::move(inputs);
    c.fn = std::move(fn);
    c.reference = std::move(reference);
    t.push_back(std::move(c));
    return t.back();
  };
  add_binary_rows(t);
  const Shape s = {3, 5};
  // ---- scalar forms and pointwise ----
  t.push_back(pointwise("neg", Init::Normal, [](V x) { return neg(x[0]); }, UnaryOp::Neg, 0, true));
  t.push_back(pointwise("add_scalar", Init::Normal, [](V x) { return add_scalar(x[0], 0.7); },
                        UnaryOp::AddScalar, 0.7, true));
  t.push_back(pointwise("mul_scalar", Init::Normal, [](V x) { return mul_scalar(x[0], -1.3); },
                        UnaryOp::MulScalar, -1.3, true));
  row("operators", {{s}, {s, Init::Positive}},
      [](V x) { return (2.0 * x[0] - 1.5) / 3.0 + x[0] * x[1] - x[0] / x[1] + (-x[1]); });
  t.push_back(pointwise("exp", Init::Normal, [](V x) { return exp(x[0]); }, UnaryOp::Exp, 0, false));
  t.push_back(pointwise("log", Init::Positive, [](V x) { return log(x[0]); }, UnaryOp::Log, 0, false));
  t.push_back(pointwise("sqrt", Init::Positive, [](V x) { return sqrt(x[0]); }, UnaryOp::Sqrt, 0, true));
  t.push_back(pointwise("pow_2.5", Init::Positive, [](V x) { return pow(x[0], 2.5); },
                        UnaryOp::PowScalar, 2.5, false));
  t.push_back(pointwise("pow_-1.5", Init::Positive, [](V x) { return pow(x[0], -1.5); },
                        UnaryOp::PowScalar, -1.5, false));
  t.push_back(pointwise("pow_3_negative_base", Init::Normal, [](V x) { return pow(x[0], 3.0); },
                        UnaryOp::PowScalar, 3.0, false));
  t.push_back(pointwise("abs", Init::AwayFromZero, [](V x) { return abs(x[0]); }, UnaryOp::Abs, 0, true));
  t.push_back(pointwise("square", Init::Normal, [](V x) { return square(x[0]); }, UnaryOp::Square, 0, true));
  t.push_back(pointwise("relu", Init::AwayFromZero, [](V x) { return relu(x[0]); }, UnaryOp::Relu, 0, true));
  t.push_back(pointwise("relu6", Init::Relu6Range, [](V x) { return relu6(x[0]); }, UnaryOp::Relu6, 0,
                        true, {4, 5}));
  t.push_back(pointwise("gelu", Init::Normal, [](V x) { return gelu(x[0]); }, UnaryOp::Gelu, 0, false));
  t.push_back(pointwise("gelu_tanh", Init::Normal, [](V x) { return gelu_tanh(x[0]); }, UnaryOp::GeluTanh, 0, false));
  t.push_back(pointwise("tanh", Init::Normal, [](V x) { return tanh(x[0]); }, UnaryOp::Tanh, 0, false));
  t.push_back(pointwise("sigmoid", Init::Normal, [](V x) { return sigmoid(x[0]); }, UnaryOp::Sigmoid, 0,
                        false));
  // ---- matrix products ----
  auto mm = [](V x) { return shrink::matmul(x[0], x[1]); };
  row("matmul_2d", {{{3, 4}}, {{4, 5}}}, mm, matmul);
  row("matmul_bmk_kn", {{{2, 3, 4}}, {{4, 5}}}, mm, matmul);
  row("matmul_bmk_bkn", {{{2, 3, 4}}, {{2, 4, 5}}}, mm, matmul);
  row("matmul_mk_bkn", {{{3, 4}}, {{2, 4, 5}}}, mm, matmul);
  row("matmul_4d", {{{2, 2, 3, 4}}, {{2, 2, 4, 3}}}, mm, matmul);
  row("matmul_4d_by_2d", {{{2, 2, 3, 4}}, {{4, 3}}}, mm, matmul);
  row("linear_bias", {{{3, 4}}, {{5, 4}}, {{5}}}, [](V x) { return shrink::linear(x[0], x[1], x[2]); },
      linear);
  row("linear_no_bias", {{{3, 4}}, {{5, 4}}}, [](V x) { return shrink::linear(x[0], x[1], Tensor()); },
      linear);
  row("linear_3d_input", {{{2, 3, 4}}, {{5, 4}}, {{5}}},
      [](V x) { return shrink::linear(x[0], x[1], x[2]); }, linear);
  // ---- convolution (x, weight[, bias]); CPU only until the cuDNN path lands ----
  {
    struct Conv {
      const char* name;
      Shape x, w;
      bool bias;
      Conv2dOptions o;
    };
    auto opts = [](std::int64_t sh, std::int64_t sw, std::int64_t ph, std::int64_t pw,
                   std::int64_t dh, std::int64_t dw, std::int64_t groups) {
      Conv2dOptions o;
      o.stride_h = sh, o.stride_w = sw, o.pad_h = ph, o.pad_w = pw;
      o.dilation_h = dh, o.dilation_w = dw, o.groups = groups;
      return o;
    };
    const Conv convs[] = {
        {"conv2d_3x3_pad1", {2, 3, 5, 5}, {4, 3, 3, 3}, true, opts(1, 1, 1, 1, 1, 1, 1)},
        {"conv2d_3x3_pad1_no_bias", {2, 3, 5, 5}, {4, 3, 3, 3}, false, opts(1, 1, 1, 1, 1, 1, 1)},
        {"conv2d_stride2", {2, 3, 7, 6}, {4, 3, 3, 3}, true, opts(2, 2, 1, 1, 1, 1, 1)},
        {"conv2d_padding_2x1", {1, 2, 5, 6}, {3, 2, 3, 2}, true, opts(1, 1, 2, 1, 1, 1, 1)},
        {"conv2d_dilation2", {2, 2, 7, 7}, {3, 2, 3, 3}, false, opts(1, 1, 1, 1, 2, 2, 1)},
        {"conv2d_odd_k3x2_stride2x1_pad1x0_dil2x1", {1, 3, 7, 6}, {2, 3, 3, 2}, true,
         opts(2, 1, 1, 0, 2, 1, 1)},
        {"conv2d_groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, true, opts(1, 1, 1, 1, 1, 1, 2)},
        {"conv2d_depthwise", {2, 3, 6, 5}, {3, 1, 3, 3}, true, opts(1, 1, 1, 1, 1, 1, 3)},
        {"conv2d_depthwise_stride2_no_bias", {2, 3, 7, 6}, {3, 1, 3, 3}, false,
         opts(2, 2, 1, 1, 1, 1, 3)},
        {"conv2d_depthwise_multiplier2", {2, 3, 5, 5}, {6, 1, 3, 3}, true, opts(1, 1, 1, 1, 1, 1, 3)},
        {"conv2d_1x1", {2, 4, 3, 5}, {5, 4, 1, 1}, true, opts(1, 1, 0, 0, 1, 1, 1)},
        {"conv2d_1x1_no_bias", {2, 4, 3, 5}, {5, 4, 1, 1}, false, opts(1, 1, 0, 0, 1, 1, 1)},
    };
    for (const Conv& cv : convs) {
      std::vector<InputSpec> inputs = {{cv.x}, {cv.w}};
      if (cv.bias) inputs.push_back({{cv.w[0]}});
      const Conv2dOptions o = cv.o;
      row(cv.name, inputs,
          [o](V x) { return shrink::conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), o); },
          conv2d(o));
      // The same convolution with its weight stored sparse (CPU only, as csr_linear).
      const ConvCsrPattern m(cv.w, o.groups);
      inputs[1] = {{m.nnz()}};
      row(std::string("csr_") + cv.name, std::move(inputs),
          [m, o](V x) {
            const Device d = x[0].device();
            return shrink::csr_conv2d(x[0], x[1], int64s(m.row_ptr, d), int64s(m.col_idx, d), m.weight[2],
                                      m.weight[3], x.size() > 2 ? x[2] : Tensor(), o);
          },
          csr_conv2d(m, o))
          .no_cuda = "csr_conv2d has CPU kernels only (kernels/cpu/sparse_conv.cpp)";
    }
    // conv2d_then: the gradient check runs the separate ops (inputs need gradients); the
    // forward and CUDA checks run the kernel's epilogue (inputs that do not).
    struct Then {
      const char* name;
      bool residual;
      ConvActivation activation;
    };
    const Then thens[] = {{"conv2d_then_residual_relu", true, ConvActivation::Relu},
                          {"conv2d_then_residual_relu6", true, ConvActivation::Relu6},
                          {"conv2d_then_residual", true, ConvActivation::None},
                          {"conv2d_then_relu", false, ConvActivation::Relu}};
    for (const Then& th : thens) {
      const Conv2dOptions o = opts(1, 1, 1, 1, 1, 1, 1);
      std::vector<InputSpec> inputs = {{{2, 3, 5, 5}}, {{4, 3, 3, 3}}, {{4}}};
      if (th.residual) inputs.push_back({{2, 4, 5, 5}, Init::Relu6Range});
      row(th.name, std::move(inputs),
          [o, th](V x) { return conv2d_then(x[0], x[1], x[2], o, th.residual ? x[3] : Tensor(), th.activation); },
          conv2d_then(o, th.activation));
    }
    // conv2d_residual_chain: two residual blocks (3 -> 4 -> 3, then 3 -> 2 -> 3 channels).
    const Conv2dOptions same = opts(1, 1, 1, 1, 1, 1, 1);
    row("conv2d_residual_chain",
        {{{2, 3, 5, 6}}, {{4, 3, 3, 3}}, {{4}}, {{3, 4, 3, 3}}, {{3}}, {{2, 3, 3, 3}}, {{2}}, {{3, 2, 3, 3}}, {{3}}},
        [same](V x) {
          return shrink::conv2d_residual_chain(
              x[0], {{x[1], x[2], same, x[3], x[4], same}, {x[5], x[6], same, x[7], x[8], same}});
        },
        conv2d_residual_chain(same));
    // inverted_residual_chain: 4 -> [8] -> 4 with the input added, then 4 -> [dw /2] -> 3.
    row("inverted_residual_chain",
        {{{4, 4, 6, 5}}, {{8, 4, 1, 1}}, {{8}}, {{8, 1, 3, 3}}, {{8}}, {{4, 8, 1, 1}}, {{4}},
         {{4, 1, 3, 3}}, {{4}}, {{3, 4, 1, 1}}, {{3}}},
        [](V x) {
          InvertedResidualWeights first, second;
          first.expand_weight = x[1], first.expand_bias = x[2];
          first.depthwise_weight = x[3], first.depthwise_bias = x[4];
          first.depthwise_options.pad_h = first.depthwise_options.pad_w = 1;
          first.depthwise_options.groups = 8;
          first.project_weight = x[5], first.project_bias = x[6];
          first.residual = true;
          second.depthwise_weight = x[7], second.depthwise_bias = x[8];
          second.depthwise_options = first.depthwise_options;
          second.depthwise_options.stride_h = second.depthwise_options.stride_w = 2;
          second.depthwise_options.groups = 4;
          second.project_weight = x[9], second.project_bias = x[10];
          return shrink::inverted_residual_chain(x[0], {first, second});
        },
        inverted_residual_chain({{true, 1, true}, {false, 2, false}}));
  }
  // ---- sparse products (CPU only) ----
  {
    const CsrPattern m;
    auto csr = [m](V x) {
      const Device d = x[0].device();
      return shrink::csr_linear(x[0], x[1], int64s(m.row_ptr, d), int64s(m.col_idx, d), m.cols,
                                x.size() > 2 ? x[2] : Tensor());
    };
    const char* cpu_only = "csr_linear has CPU kernels only (kernels/cpu/sparse.h)";
    row("csr_linear", {{{4, 9}}, {{m.nnz()}}, {{6}}}, csr, csr_linear(m)).no_cuda = cpu_only;
    row("csr_linear_3d", {{{2, 3, 9}}, {{m.nnz()}}}, csr, csr_linear(m)).no_cuda = cpu_only;
  }
  // ---- reductions ----
  const Shape r = {3, 4, 5};
  row("sum_all", {{r}}, [](V x) { return shrink::sum(x[0]); }, sum({}, false));
  row("sum_axis1", {{r}}, [](V x) { return shrink::sum(x[0], {1}); }, sum({1}, false));
  row("sum_axes_0_2", {{r}}, [](V x) { return shrink::sum(x[0], {0, 2}); }, sum({0, 2}, false));
  row("sum_axes_neg_keepdim", {{r}}, [](V x) { return shrink::sum(x[0], {-1, 0}, true); },
      sum({-1, 0}, false));
  row("sum_keepdim", {{r}}, [](V x) { return shrink::sum(x[0], {1}, true); }, sum({1}, false));
  row("sum_scalar_shaped", {{{}}}, [](V x) { return shrink::sum(x[0]); }, identity());
  row("sum_to", {{{2, 3, 4}}}, [](V x) { return sum_to(x[0], {3, 1}); }, sum({0, 2}, false));
  row("mean_all", {{r}}, [](V x) { return mean(x[0]); }, sum({}, true));
  row("mean_axis", {{r}}, [](V x) { return mean(x[0], {2}); }, sum({2}, true));
  row("mean_axes_keepdim", {{r}}, [](V x) { return mean(x[0], {0, 1}, true); }, sum({0, 1}, true));
  row("max_axis0", {{r, Init::Distinct}}, [](V x) { return shrink::max(x[0], 0); }, max(0));
  row("max_axis1_keepdim", {{r, Init::Distinct}}, [](V x) { return shrink::max(x[0], 1, true); },
      max(1));
  row("max_last", {{r, Init::Distinct}}, [](V x) { return shrink::max(x[0], -1); }, max(-1));
  // ---- softmax family and losses ----
  for (std::int64_t axis : {-1, 0, 1}) {
    row("softmax_axis" + std::to_string(axis), {{r}},
        [axis](V x) { return shrink::softmax(x[0], axis); }, softmax(axis, false));
    row("log_softmax_axis" + std::to_string(axis), {{r}},
        [axis](V x) { return log_softmax(x[0], axis); }, softmax(axis, true));
  }
  row("cross_entropy", {{{4, 5}}},
      [](V x) { return shrink::cross_entropy(x[0], int64s({0, 4, 2, 4}, x[0].device())); },
      cross_entropy({0, 4, 2, 4}, 0.0));
  row("cross_entropy_smoothing", {{{4, 5}}},
      [](V x) { return shrink::cross_entropy(x[0], int64s({1, 3, 0, 1}, x[0].device()), 0.1); },
      cross_entropy({1, 3, 0, 1}, 0.1));
  row("cross_entropy_full_smoothing", {{{3, 7}}},
      [](V x) { return shrink::cross_entropy(x[0], int64s({6, 0, 2}, x[0].device()), 1.0); },
      cross_entropy({6, 0, 2}, 1.0));
  // ---- dropout: a fixed generator gives the same mask every call, on either device ----
  row("dropout", {{{4, 7}}}, [](V x) {
    Generator gen(7);
    return dropout(x[0], 0.3, true, gen);
  });
  row("dropout_eval", {{{4, 7}}}, [](V x) {
    Generator gen(7);
    return dropout(x[0], 0.3, false, gen);
  }, identity());
  // ---- layout ----
  row("reshape", {{{3, 4}}}, [](V x) { return reshape(x[0], {2, 6}); }, identity());
  row("reshape_infer", {{{3, 4}}}, [](V x) { return reshape(x[0], {-1, 2, 3}); }, identity());
  row("flatten", {{{2, 3, 4}}}, [](V x) { return flatten(x[0]); }, identity());
  row("flatten_0", {{{2, 3, 4}}}, [](V x) { return flatten(x[0], 0); }, identity());
  row("expand", {{{3, 1}}}, [](V x) { return shrink::expand(x[0], {2, 3, 4}); }, expand({2, 3, 4}));
  row("expand_vector", {{{4}}}, [](V x) { return shrink::expand(x[0], {3, 4}); }, expand({3, 4}));
  row("expand_scalar_shaped", {{{}}}, [](V x) { return shrink::expand(x[0], {2, 3}); },
      expand({2, 3}));
  row("transpose", {{{2, 3, 4}}}, [](V x) { return transpose(x[0], 0, 2); }, permute({2, 1, 0}));
  row("transpose_neg", {{{3, 4}}}, [](V x) { return transpose(x[0], -1, -2); }, permute({1, 0}));
  row("permute", {{{2, 3, 4}}}, [](V x) { return shrink::permute(x[0], {2, 0, 1}); },
      permute({2, 0, 1}));
  row("concat_axis1", {{{2, 1, 3}}, {{2, 4, 3}}, {{2, 2, 3}}},
      [](V x) { return shrink::concat({x[0], x[1], x[2]}, 1); }, [](R in) { return concat(in, 1); });
  row("concat_axis0", {{{1, 4}}, {{3, 4}}}, [](V x) { return shrink::concat({x[0], x[1]}, 0); },
      [](R in) { return concat(in, 0); });
  row("concat_same_input_twice", {{{2, 3}}}, [](V x) { return shrink::concat({x[0], x[0]}, -1); },
      [](R in) { return concat({in[0], in[0]}, 1); });
  row("slice_step", {{{3, 8}}}, [](V x) { return shrink::slice(x[0], 1, 1, 7, 2); },
      slice(1, 1, 7, 2));
  row("slice_negative_start", {{{5, 3}}}, [](V x) { return shrink::slice(x[0], 0, -3, 100); },
      slice(0, 2, 5, 1));
  row("index_select_repeated", {{{3, 4}}},
      [](V x) { return shrink::index_select(x[0], 0, int64s({2, 0, 2, 1, 2}, x[0].device())); },
      index_select(0, {2, 0, 2, 1, 2}));
  row("index_select_middle", {{{2, 5, 3}}},
      [](V x) { return shrink::index_select(x[0], 1, int64s({4, 4, 0, 3}, x[0].device())); },
      index_select(1, {4, 4, 0, 3}));
  // Input-feature selection (nn/input_selection.h): sorted, unique features of (N, F).
  row("index_select_features", {{{3, 9}}},
      [](V x) { return shrink::index_select(x[0], 1, int64s({0, 2, 3, 7, 8}, x[0].device())); },
      index_select(1, {0, 2, 3, 7, 8}));
  row("embedding_repeated_ids", {{{5, 3}}},
      [](V x) { return shrink::embedding(int64s({4, 0, 4, 2, 4, 1}, x[0].device()), x[0]); },
      index_select(0, {4, 0, 4, 2, 4, 1}));
  row("embedding_2d_ids", {{{6, 4}}}, [](V x) {
    return shrink::embedding(reshape(int64s({5, 5, 0, 3, 5, 1}, x[0].device()), {2, 3}), x[0]);
  }, index_select(0, {5, 5, 0, 3, 5, 1}));
  // On CUDA inputs this crosses devices both ways (forward to the CPU, gradient back).
  row("to_cpu", {{s}}, [](V x) { return x[0].to(Device::cpu()); }, identity());
  // ---- attention: (B, H, T, d) as multi-head attention shapes it; Tq != Tk, d != dv ----
  using shrink::scaled_dot_product_attention;
  row("attention", {{{2, 2, 3, 4}}, {{2, 2, 5, 4}}, {{2, 2, 5, 3}}},
      [](V x) { return scaled_dot_product_attention(x[0], x[1], x[2]); }, attention(false));
  row("attention_3d_scale", {{{3, 4, 2}}, {{3, 4, 2}}, {{3, 4, 5}}},
      [](V x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0.7); }, attention(false, 0.7));
  // An additive mask differentiated too, broadcast over heads and queries.
  row("attention_additive_mask", {{{2, 2, 3, 4}}, {{2, 2, 5, 4}}, {{2, 2, 5, 3}}, {{2, 1, 1, 5}}},
      [](V x) { return scaled_dot_product_attention(x[0], x[1], x[2], x[3]); }, attention(true));
  row("attention_full_mask", {{{1, 2, 3, 2}}, {{1, 2, 4, 2}}, {{1, 2, 4, 2}}, {{1, 2, 3, 4}}},
      [](V x) { return scaled_dot_product_attention(x[0], x[1], x[2], x[3]); }, attention(true));
  // A padding mask: the last two keys of sequence 0 and the last of sequence 1 are padding,
  // so their values and keys get no gradient and change nothing.
  row("attention_padding_mask", {{{2, 2, 3, 4}}, {{2, 2, 4, 4}}, {{2, 2, 4, 3}}}, [](V x) {
    const Tensor mask = reshape(int64s({1, 1, 0, 0, 1, 1, 1, 0}, x[0].device()), {2, 4});
    return scaled_dot_product_attention(x[0], x[1], x[2], attention_mask_bias(mask, x[0].dtype()));
  }, [](R in) {
    std::vector<RefInput> with_mask = in;
    with_mask.push_back({{2, 1, 1, 4}, {0, 0, -1e9, -1e9, 0, 0, 0, -1e9}});
    return attention(true)(with_mask);
  });
  // The rows above without a differentiated mask run the fused kernel (AttentionKernel::Auto);
  // these pin each implementation and cross the kernel's blocks (32 queries, 64 keys).
  row("attention_composite", {{{2, 2, 3, 4}}, {{2, 2, 5, 4}}, {{2, 2, 5, 3}}}, [](V x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0, AttentionKernel::Composite);
  }, attention(false));
  row("attention_fused_blocks", {{{1, 1, 33, 3}}, {{1, 1, 70, 3}}, {{1, 1, 70, 2}}}, [](V x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0, AttentionKernel::Fused);
  }, attention(false));
  // A constant (Tq, Tk) mask shared by every batch and head, -1e9 on some keys of some queries.
  const std::vector<double> causal = {0, -1e9, -1e9, -1e9, 0.5, 0, -1e9, -1e9, 0, -0.25, 0, -1e9};
  row("attention_fused_2d_mask", {{{2, 2, 3, 4}}, {{2, 2, 4, 4}}, {{2, 2, 4, 3}}}, [causal](V x) {
    const Tensor mask = Tensor::from_vector(causal, {3, 4}, Device::cpu()).to(x[0].dtype()).to(x[0].device());
    return scaled_dot_product_attention(x[0], x[1], x[2], mask, 0, AttentionKernel::Fused);
  }, [causal](R in) {
    std::vector<RefInput> with_mask = in;
    with_mask.push_back({{3, 4}, causal});
    return attention(true)(with_mask);
  });
  // Multi-head attention on the (B, T, heads * d) layout: 2 heads, d 4, dv 3.
  row("multi_head_attention", {{{2, 3, 8}}, {{2, 5, 8}}, {{2, 5, 6}}},
      [](V x) { return shrink::multi_head_attention(x[0], x[1], x[2], 2); }, op_reference::multi_head_attention(2, false));
  row("multi_head_attention_composite", {{{2, 3, 8}}, {{2, 5, 8}}, {{2, 5, 6}}}, [](V x) {
    return shrink::multi_head_attention(x[0], x[1], x[2], 2, Tensor(), 0, AttentionKernel::Composite);
  }, op_reference::multi_head_attention(2, false));
  row("multi_head_attention_padding", {{{2, 3, 6}}, {{2, 4, 6}}, {{2, 4, 6}}}, [](V x) {
    const Tensor mask = reshape(int64s({1, 1, 1, 0, 1, 0, 0, 0}, x[0].device()), {2, 4});
    return shrink::multi_head_attention(x[0], x[1], x[2], 3, attention_mask_bias(mask, x[0].dtype()), 0,
                                AttentionKernel::Fused);
  }, [](R in) {
    std::vector<RefInput> with_mask = in;
    with_mask.push_back({{2, 1, 1, 4}, {0, 0, 0, -1e9, 0, -1e9, -1e9, -1e9}});
    return op_reference::multi_head_attention(3, true)(with_mask);
  });
  // A differentiated (heads, Tq, Tk) mask: the composite, which gives the mask its gradient.
  row("multi_head_attention_additive_mask", {{{1, 3, 4}}, {{1, 2, 4}}, {{1, 2, 4}}, {{2, 3, 2}}},
      [](V x) { return shrink::multi_head_attention(x[0], x[1], x[2], 2, x[3]); }, op_reference::multi_head_attention(2, true));
  add_pool_batch_norm_rows(t);
  // ---- a small network: every op's backward composed ----
  row("mlp", {{{4, 3}}, {{5, 3}}, {{5}}, {{3, 5}}}, [](V x) {
    Tensor h = gelu(shrink::linear(x[0], x[1], x[2]));
    return shrink::cross_entropy(shrink::linear(h, x[3], Tensor()),
                                 int64s({0, 2, 1, 2}, x[0].device()), 0.05);
  });
  return t;
}

}  // namespace op_table_rows

// The table, built once.
inline const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> table = op_table_rows::build_op_cases();
  return table;
}

// ---- one GoogleTest test per row: "<suite>.<row name>" ----

class OpCaseTest : public ::testing::Test {
 public:
  using Body = void (*)(const OpCase&);
  OpCaseTest(const OpCase* c, Body body) : case_(c), body_(body) {}
  void TestBody() override { body_(*case_); }

 private:
  const OpCase* case_;
  Body body_;
};

// Registers body(row) as test `suite`.`row name` for every row that `keep` accepts. Call at
// namespace scope: `const bool kRegistered = register_op_tests(...);`.
inline bool register_op_tests(const char* suite, OpCaseTest::Body body, const char* file,
                              int line, bool (*keep)(const OpCase&) = nullptr) {
  for (const OpCase& c : op_cases()) {
    if (keep && !keep(c)) continue;
    const OpCase* row = &c;
    ::testing::RegisterTest(suite, test_name(c.name).c_str(), nullptr, nullptr, file, line,
                            [row, body]() -> OpCaseTest* { return new OpCaseTest(row, body); });
  }
  return true;
}

// Inputs drawn for a row, float64 CPU leaves without requires_grad (same seed scheme as
// gradcheck, so the same values).
inline std::vector<Tensor> draw_inputs(const OpCase& c, std::uint64_t seed = GradCheckOptions{}.seed) {
  std::mt19937_64 rng(seed ^ std::hash<std::string>{}(c.name));
  std::vector<Tensor> inputs;
  for (const auto& s : c.inputs) inputs.push_back(make_input(s, rng));
  return inputs;
}

}  // namespace shrink::testing
