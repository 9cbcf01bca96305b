// A value-parameterised test whose parameter is the OpenMP thread count: each test runs with
// omp_set_num_threads(GetParam()) and the previous count is restored afterwards. For kernels
// whose work split depends on the thread count (whole images or bands of one image per thread).
#pragma once
#include <gtest/gtest.h>
#include <omp.h>

namespace shrink::testing {

class OmpThreadsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(GetParam());
  }
  void TearDown() override { omp_set_num_threads(saved_); }

 private:
  int saved_ = 1;
};

}  // namespace shrink::testing
