#include "tools/common/validators.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>

#include "core/strings.h"

namespace shrink::tools {

namespace {

std::string number_str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// A validator that parses the flag's text as a number and asks `ok`; `need` completes
// "needs a finite number ...". Text that is not a number is left to the option's own
// conversion, which reports it.
CLI::Validator number_validator(const std::string& need, std::function<bool(double)> ok) {
  return CLI::Validator(
      [need, ok](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str()) return "";
        if (std::isfinite(v) && ok(v)) return "";
        return "needs a finite number " + need + ", got " + text;
      },
      "NUMBER " + need);
}

}  // namespace

CLI::Validator positive() {
  return number_validator("> 0", [](double v) { return v > 0; });
}

CLI::Validator non_negative() {
  return number_validator(">= 0", [](double v) { return v >= 0; });
}

CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [at, ec] = std::from_chars(text.data(), end, value);
        if (!text.empty() && ec == std::errc() && at == end) return "";
        return "needs a whole number in [0, 18446744073709551615], got " + text;
      },
      "UINT64");
}

CLI::Validator name_list() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.starts_with('-')) return "needs comma-separated names, got the flag-like word " + text;
        for (const std::string& name : split(text, ','))
          if (name.empty()) return "needs comma-separated names without an empty one, got '" + text + "'";
        return "";
      },
      "NAME[,NAME...]");
}

CLI::Validator in_range(double lo, double hi) {
  return number_validator("in [" + number_str(lo) + ", " + number_str(hi) + "]",
                          [lo, hi](double v) { return v >= lo && v <= hi; });
}

}  // namespace shrink::tools
