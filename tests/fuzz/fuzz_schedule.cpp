// libFuzzer target: the schedule-spec parser (nn/schedule.h) and lr_at on what it returns.
// Every input must parse or throw shrink::Error, with and without the run's length. A
// parsed schedule gives a learning rate that is never NaN nor negative at any t (from a
// finite positive base), and describes itself in a form the parser reads back.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "nn/schedule.h"
#include "tests/fuzz/fuzz_input_file.h"

namespace {

void check(const std::string& text, std::int64_t total) {
  const auto schedule = shrink::nn::parse_schedule(text, total);
  SHRINK_FUZZ_ASSERT(schedule != nullptr);
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t t : {kMin, std::int64_t{-1}, std::int64_t{0}, std::int64_t{1}, std::int64_t{2},
                         std::int64_t{7}, std::int64_t{99}, std::int64_t{100}, std::int64_t{1} << 40, kMax}) {
    const double lr = schedule->lr_at(0.1, t);
    SHRINK_FUZZ_ASSERT(!std::isnan(lr) && lr >= 0);
  }
  shrink::nn::parse_schedule(schedule->describe(), total);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  bool refused = false;
  for (std::int64_t total : {std::int64_t{0}, std::int64_t{100}}) {
    try {
      check(text, total);
    } catch (const shrink::Error&) {
      refused = true;
    }
  }
  shrink::fuzz::InputTally::record(data, size, refused);
  return 0;
}
