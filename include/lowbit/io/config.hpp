// Typed JSON configs: a program declares its defaults as a JSON object; a config file and
// `--set key=value` overrides may only change keys that exist, and only with a value of the
// same type. Typos and wrong types are errors that name the key, the value and the type
// expected — not silently ignored settings.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"

namespace lowbit {
namespace io {

inline const char* json_type_name(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// Sets cfg[key] = value after checking the key exists and the type matches (an integer is
// accepted where a number is expected). `origin` names where the value came from.
inline void set_checked(nlohmann::json& cfg, const std::string& key, const nlohmann::json& value,
                        const std::string& origin) {
  LOWBIT_CHECK(cfg.contains(key), origin, ": unknown config key '", key, "'");
  const nlohmann::json& cur = cfg.at(key);
  const bool ok = (cur.is_boolean() && value.is_boolean()) ||
                  (cur.is_number_integer() && value.is_number_integer()) ||
                  (cur.is_number_float() && value.is_number()) || (cur.is_string() && value.is_string()) ||
                  (cur.is_array() && value.is_array()) || (cur.is_object() && value.is_object());
  LOWBIT_CHECK(ok, origin, ": config key '", key, "' expects ", json_type_name(cur), ", got ", value.dump());
  cfg[key] = cur.is_number_float() ? nlohmann::json(value.get<double>()) : value;
}

// Applies every key of a JSON config file.
inline void apply_config_file(nlohmann::json& cfg, const std::string& path) {
  std::ifstream f(path);
  LOWBIT_CHECK(f.good(), "--config: cannot open '", path, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    detail::fail("--config: '", path, "' is not valid JSON: ", e.what());
  }
  LOWBIT_CHECK(j.is_object(), "--config: '", path, "' must hold a JSON object, got ", json_type_name(j));
  for (auto it = j.begin(); it != j.end(); ++it) set_checked(cfg, it.key(), it.value(), path);
}

// "key=value": the value is parsed as JSON when it parses (numbers, true/false, [1,2]) and
// taken as a plain string otherwise (so --set model=resnet20 needs no quotes).
inline void apply_override(nlohmann::json& cfg, const std::string& kv) {
  const auto eq = kv.find('=');
  LOWBIT_CHECK(eq != std::string::npos && eq > 0, "--set: expected key=value, got '", kv, "'");
  const std::string key = kv.substr(0, eq), text = kv.substr(eq + 1);
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    value = text;
  }
  // A string key given a bare number-looking value (e.g. out=2024) stays a string.
  if (cfg.contains(key) && cfg.at(key).is_string() && !value.is_string()) value = text;
  set_checked(cfg, key, value, "--set " + kv);
}

}  // namespace io
}  // namespace lowbit
