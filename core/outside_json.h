// JSON from outside the process (safetensors headers, checkpoint metadata, model specs in
// files): parsed with a nesting limit and quoted into messages only in bounded form.
// nlohmann's dump(), copy and comparison recurse once per nesting level, so a header of
// 100000 '[' would overflow the stack the first time an error message quoted it.
#pragma once
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace shrink {

// Deeper nesting than this is refused at parse time; no file we read needs more than 3.
constexpr int kMaxJsonDepth = 64;

// Parses `text`. Malformed JSON or nesting deeper than kMaxJsonDepth throws shrink::Error
// "<what>: bad JSON (...)" / "<what>: JSON nested deeper than 64 levels", where `what`
// names the file and the part of it (e.g. "load_safetensors: m.safetensors: header").
nlohmann::json parse_outside_json(const std::string& text, const std::string& what);

// j's compact text cut to at most about `max_chars` characters ("..." marks a cut, and
// containers nested deeper than kMaxJsonDepth print as "..."): safe to put in any message,
// whatever the value's size or depth. Invalid UTF-8 in strings prints as U+FFFD.
std::string quote_json(const nlohmann::json& j, std::size_t max_chars = 200);

}  // namespace shrink
