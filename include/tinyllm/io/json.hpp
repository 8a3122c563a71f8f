// Typed reads from nlohmann::json with errors that name the file and the field.
// Depends on error.hpp and nlohmann/json only.
#pragma once

#include <cmath>    // std::isfinite
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <limits>   // std::numeric_limits
#include <string>   // std::string

#include <nlohmann/json.hpp>  // nlohmann::json

#include "../error.hpp"

namespace tinyllm::detail {

using json = nlohmann::json;

// How deeply the JSON files of a model folder may nest arrays and objects (GPT-2's nest 3 deep).
// nlohmann::json parses any depth, but printing a value (as error messages do) recurses once per
// level: a hostile file nested a million deep would overflow the stack.
inline constexpr int max_json_depth = 64;

// Throws an Error naming `file` when `text` nests deeper than max_json_depth (strings skipped).
inline void check_json_depth(const std::string& text, const std::string& file) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_json_depth)
        fail(file, "JSON nests arrays and objects more than " + std::to_string(max_json_depth) +
                       " levels deep (detail::max_json_depth)");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// Parses `text`; a syntax error becomes an Error naming `file`.
inline json parse_json(const std::string& text, const std::string& file) {
  check_json_depth(text, file);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(file, std::string("invalid JSON: ") + e.what());
  }
}

inline const char* json_type_name(const json& j) { return j.type_name(); }

// An integer field in [lo, hi]; `fallback` is used when the key is absent (or null, when null_ok).
inline std::int64_t json_int(const json& obj, const std::string& key, const std::string& file,
                             std::int64_t lo, std::int64_t hi, const std::int64_t* fallback = nullptr) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (fallback) return *fallback;
    fail(file, "missing field '" + key + "'");
  }
  std::int64_t v = 0;
  if (it->is_number_integer()) {
    v = it->get<std::int64_t>();
  } else if (it->is_number_float() && std::isfinite(it->get<double>()) &&
             it->get<double>() == static_cast<double>(static_cast<std::int64_t>(it->get<double>()))) {
    v = static_cast<std::int64_t>(it->get<double>());  // 768.0 is fine
  } else {
    fail(file, "field '" + key + "' must be an integer, got " + std::string(json_type_name(*it)) + " " + it->dump());
  }
  if (v < lo || v > hi)
    fail(file, "field '" + key + "' is " + std::to_string(v) + ", must be in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  return v;
}

inline double json_number(const json& obj, const std::string& key, const std::string& file, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(file, "field '" + key + "' must be a number, got " + it->dump());
  return it->get<double>();
}

inline bool json_bool(const json& obj, const std::string& key, const std::string& file, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(file, "field '" + key + "' must be true or false, got " + it->dump());
  return it->get<bool>();
}

inline std::string json_string(const json& obj, const std::string& key, const std::string& file,
                               const std::string& fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(file, "field '" + key + "' must be a string, got " + it->dump());
  return it->get<std::string>();
}

}  // namespace tinyllm::detail
