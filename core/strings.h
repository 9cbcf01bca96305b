// Small text helpers shared by the parsers of model specs and schedules.
#pragma once
#include <string>
#include <vector>

namespace shrink {

// "a:b::c" split at ':' -> {"a", "b", "", "c"}; an empty text gives {""}.
inline std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + 1)
    parts.push_back(text.substr(start, at - start));
  parts.push_back(text.substr(start));
  return parts;
}

// {"a", "b"} joined by ", " -> "a, b".
inline std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace shrink
