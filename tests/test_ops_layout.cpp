// Layout ops' forward values (float32), exact, on odd and large shapes: reshape and flatten
// views, expand, permute and transpose (against kernels/reference/ strided_copy), concat,
// slice and index_select.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/op_table.h"
#include "tests/test_helpers.h"

namespace shrink::testing {
namespace {

TEST(OpsForward, ReshapeAndFlatten) {
  Tensor x = random_tensor({3, 5, 7}, 17);
  Tensor r = reshape(x, {7, -1});
  EXPECT_EQ(r.shape(), (Shape{7, 15}));
  EXPECT_EQ(r.raw_data(), x.raw_data());  // a view
  EXPECT_EQ(r.to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(flatten(x).shape(), (Shape{3, 35}));
  EXPECT_EQ(flatten(x, 0).shape(), (Shape{105}));
  EXPECT_EQ(flatten(x, 2).shape(), (Shape{3, 5, 7}));
  EXPECT_EQ(flatten(x, -2).shape(), (Shape{3, 35}));
}

TEST(OpsForward, ExpandMatchesReference) {
  for (const auto& [from, to] : std::vector<std::pair<Shape, Shape>>{
           {{5, 1}, {3, 5, 7}}, {{7}, {3, 5, 7}}, {{}, {3, 5}}, {{3, 1, 7}, {3, 5, 7}},
           {{1, 1037}, {37, 1037}}}) {
    Tensor x = random_tensor(from, 18);
    Tensor y = expand(x, to);
    ASSERT_EQ(y.shape(), to);
    const auto want = op_reference::expand(to)({{from, values_of(x)}});
    EXPECT_TRUE(all_close("expand " + shape_str(from), y.to_vector<float>(), want, 0, 0));
  }
}

TEST(OpsForward, PermuteAndTransposeMatchReference) {
  for (const Shape& s : {Shape{3, 5, 7}, Shape{33, 37, 29}}) {
    Tensor x = random_tensor(s, 19);
    const std::vector<std::vector<std::int64_t>> orders = {{2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {0, 1, 2}};
    for (const auto& order : orders) {
      Tensor y = permute(x, order);
      Shape out = {s[order[0]], s[order[1]], s[order[2]]};
      ASSERT_EQ(y.shape(), out);
      EXPECT_TRUE(all_close("permute " + shape_str(s), y.to_vector<float>(),
                            op_reference::permute(order)({{s, values_of(x)}}), 0, 0, out));
    }
    Tensor t = transpose(x, 0, -1);
    EXPECT_EQ(t.shape(), (Shape{s[2], s[1], s[0]}));
    EXPECT_EQ(t.to_vector<float>(), permute(x, {2, 1, 0}).to_vector<float>());
  }
}

TEST(OpsForward, ConcatMatchesReference) {
  Tensor a = random_tensor({3, 2, 7}, 20), b = random_tensor({3, 5, 7}, 21), c = random_tensor({3, 1, 7}, 22);
  Tensor y = concat({a, b, c}, 1);
  ASSERT_EQ(y.shape(), (Shape{3, 8, 7}));
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  const auto yv = y.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 8; ++j)
      for (int k = 0; k < 7; ++k) {
        const float want = j < 2 ? av[(i * 2 + j) * 7 + k]
                                 : j < 7 ? bv[(i * 5 + j - 2) * 7 + k] : cv[i * 7 + k];
        ASSERT_EQ(yv[(i * 8 + j) * 7 + k], want);
      }
  Tensor z = concat({a, a}, 0);
  EXPECT_EQ(z.shape(), (Shape{6, 2, 7}));
  std::vector<float> twice = av;
  twice.insert(twice.end(), av.begin(), av.end());
  EXPECT_EQ(z.to_vector<float>(), twice);
  EXPECT_EQ(concat({a}, -1).to_vector<float>(), av);
}

TEST(OpsForward, SliceAndIndexSelectMatchReference) {
  const Shape s = {3, 11, 7};
  Tensor x = random_tensor(s, 23);
  const auto xv = x.to_vector<float>();
  auto check_rows = [&](const Tensor& y, const std::vector<std::int64_t>& rows, const char* what) {
    ASSERT_EQ(y.shape(), (Shape{3, static_cast<std::int64_t>(rows.size()), 7})) << what;
    const auto yv = y.to_vector<float>();
    for (int i = 0; i < 3; ++i)
      for (size_t j = 0; j < rows.size(); ++j)
        for (int k = 0; k < 7; ++k)
          ASSERT_EQ(yv[(i * rows.size() + j) * 7 + k], xv[(i * 11 + rows[j]) * 7 + k]) << what;
  };
  check_rows(slice(x, 1, 1, 10, 3), {1, 4, 7}, "slice step 3");
  check_rows(slice(x, 1, 2, 100), {2, 3, 4, 5, 6, 7, 8, 9, 10}, "slice end clamps");
  check_rows(slice(x, 1, -3, -1), {8, 9}, "slice negative");
  check_rows(slice(x, 1, 5, 5), {}, "slice empty");
  const std::vector<std::int64_t> idx = {10, 0, 10, 3, 3};
  check_rows(index_select(x, 1, Tensor::from_vector(idx, {5})), idx, "index_select repeated");
  Tensor first = index_select(x, 0, Tensor::from_vector(std::vector<std::int64_t>{2, 0}, {2}));
  EXPECT_EQ(first.shape(), (Shape{2, 11, 7}));
  EXPECT_EQ(first.to_vector<float>()[0], xv[2 * 77]);
  // int64 data moves too.
  Tensor ints = Tensor::arange(10);
  EXPECT_EQ(index_select(ints, 0, Tensor::from_vector(std::vector<std::int64_t>{9, 1}, {2}))
                .to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{9, 1}));
}

}  // namespace
}  // namespace shrink::testing
