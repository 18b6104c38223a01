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

namespace detail {

// nlohmann's message without its "[json.exception.type_error.302] " prefix, for a ValueError
// that names where it happened ("Dense 'd': type must be boolean, but is number").
inline std::string json_error_text(const Json::exception& e) {
  std::string what = e.what();
  const size_t end = what.find("] ");
  if (what.rfind("[json.exception.", 0) == 0 && end != std::string::npos) what.erase(0, end + 2);
  return what;
}

}  // namespace detail

}  // namespace lamina
