#include "core/outside_json.h"

#include "core/error.h"

namespace shrink {

nlohmann::json parse_outside_json(const std::string& text, const std::string& what) {
  // The callback sees each container start with the number of containers around it,
  // before the parser builds it: refusing there keeps every value it built shallow.
  const nlohmann::json::parser_callback_t limit_depth =
      [&what](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if ((event == nlohmann::json::parse_event_t::object_start ||
             event == nlohmann::json::parse_event_t::array_start) &&
            depth >= kMaxJsonDepth)
          fail(what, ": JSON nested deeper than ", kMaxJsonDepth, " levels");
        return true;
      };
  try {
    return nlohmann::json::parse(text, limit_depth);
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": bad JSON (", e.what(), ")");
  }
}

namespace {

// Appends j's text to `out` until it holds `limit` characters; recursion stops at
// kMaxJsonDepth whatever built the value.
void append_bounded(const nlohmann::json& j, std::size_t limit, int depth, std::string& out) {
  if (out.size() >= limit) return;
  if (!j.is_structured()) {
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  if (depth >= kMaxJsonDepth) {
    out += "...";
    return;
  }
  const bool object = j.is_object();
  out += object ? '{' : '[';
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (out.size() >= limit) return;
    if (!first) out += ',';
    first = false;
    if (object) {
      out += nlohmann::json(it.key()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += ':';
    }
    append_bounded(*it, limit, depth + 1, out);
  }
  out += object ? '}' : ']';
}

}  // namespace

std::string quote_json(const nlohmann::json& j, std::size_t max_chars) {
  std::string out;
  append_bounded(j, max_chars + 1, 0, out);  // one more than fits tells a cut from a fit
  if (out.size() > max_chars) {
    out.resize(max_chars);
    out += "...";
  }
  return out;
}

}  // namespace shrink
