// Lamina speaks Keras' JSON (model configs, specs, reports) through nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

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

}  // namespace lamina
