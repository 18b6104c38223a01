// Lamina speaks Keras' JSON (model configs, specs, reports) through nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lamina/error.hpp"

namespace lamina {

using Json = nlohmann::json;

// Keras serializes an object (initializer, optimizer, loss) as a bare name or as
// {"class_name": ..., "config": {...}} (Keras 3 adds "module" and "registered_name").
// Returns the name and the config ({} when absent); ValueError naming `what` otherwise.
inline std::pair<std::string, Json> keras_object(const Json& j, const char* what) {
  if (j.is_string()) return {j.get<std::string>(), Json::object()};
  if (j.is_object() && j.contains("class_name") && j["class_name"].is_string()) {
    const Json config = j.contains("config") && j["config"].is_object() ? j["config"] : Json::object();
    return {j["class_name"].get<std::string>(), config};
  }
  throw ValueError(std::string(what) + ": expected a name or {\"class_name\": ..., \"config\": ...}, got " + j.dump());
}

// An nlohmann exception's message without its "[json.exception.parse_error.101] " tag:
// "parse error at line 3, column 5: syntax error while parsing ...".
inline std::string json_error_text(const std::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0)
    if (const auto end = what.find("] "); end != std::string::npos) what.erase(0, end + 2);
  return what;
}

// How deep JSON may nest: objects and arrays inside each other. nlohmann's copy, comparison and
// dump recurse once per level, so a hostile file of 100,000 '[' would overflow the stack; a Keras
// model config needs about a dozen levels per nested model. Every JSON Lamina reads is held to this.
inline constexpr int kMaxJsonDepth = 256;

// The 1-based line and column of text[pos].
inline std::pair<size_t, size_t> json_line_column(std::string_view text, size_t pos) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// Where JSON text first nests deeper than kMaxJsonDepth, as "line L, column C", or "" if it never
// does. One pass, no recursion; brackets inside strings don't count.
inline std::string json_too_deep_at(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        const auto [line, column] = json_line_column(text, i);
        return "line " + std::to_string(line) + ", column " + std::to_string(column);
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return "";
}

inline std::string json_depth_message(const std::string& at) {
  return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels at " + at +
         "; refused (a model config needs a few dozen at most)";
}

// Parses JSON text. Every error becomes an E (ValueError, IoError) whose message is
// context + ": " + what went wrong, with the line and column: a syntax error, a number past
// double (1e309), or nesting deeper than kMaxJsonDepth.
//   Json j = parse_json<IoError>(text, path + ": header is not valid JSON");
template <class E = ValueError, class J = Json>
J parse_json(std::string_view text, const std::string& context, bool comments = false,
             typename J::parser_callback_t callback = nullptr) {
  if (const std::string at = json_too_deep_at(text); !at.empty()) throw E(context + ": " + json_depth_message(at));
  try {
    return J::parse(text, std::move(callback), /*allow_exceptions=*/true, comments);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e309)
    throw E(context + ": " + json_error_text(e));
  }
}

// The same limit for JSON built in memory and handed to the API (Sequential::from_json): an
// iterative walk, so that the check itself cannot overflow. Throws ValueError naming `what`.
inline void check_json_depth(const Json& j, const std::string& what) {
  std::vector<std::pair<const Json*, int>> todo{{&j, 1}};
  while (!todo.empty()) {
    const auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    if (depth > kMaxJsonDepth)
      throw ValueError(what + ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                       " levels; refused (a model config needs a few dozen at most)");
    for (const Json& child : *node) todo.emplace_back(&child, depth + 1);
  }
}

}  // namespace lamina
