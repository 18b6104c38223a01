// Lamina speaks Keras' JSON (model configs, specs, reports) through nlohmann::json.
#pragma once

#include <nlohmann/json.hpp>

namespace lamina {
using Json = nlohmann::json;
}  // namespace lamina
