// Validators for the binaries' flags. CLI11's Range/PositiveNumber let NaN through
// (every comparison with NaN is false) and print the whole double range in their message;
// these refuse NaN and Inf and say plainly what the flag needs:
//   "--lr: needs a finite number > 0, got nan".
#pragma once
#include <CLI/CLI.hpp>

namespace shrink::tools {

CLI::Validator positive();                        // finite, > 0
CLI::Validator non_negative();                    // finite, >= 0
CLI::Validator in_range(double lo, double hi);    // finite, in [lo, hi]
// Decimal digits only, at most 2^64 - 1 (a seed): CLI11's conversion took "-1" and
// "99999999999999999999999" for an unsigned flag without a word.
CLI::Validator unsigned_64();
// A comma-separated list of names in one word ("a,b,c"): no empty name, and not a word that
// starts with '-' (CLI11 hands a flag that follows a value-less option to it as its value:
// "--groups --keep 0.5" had made "--keep" a group name).
CLI::Validator name_list();

}  // namespace shrink::tools
