// Typed option schemas: every option a method (or a program) takes is declared once, with
// its key, type, default, one-line doc and valid range or choices. From that one declaration
// come the defaults, the validation of a user's values (unknown keys, wrong types, values out
// of range: one error naming the key, the value and what is allowed), `--print-config`,
// `--help-config` and the option tables of the docs. A method reads its options only from
// the resolved object (every key present and checked), so no default is written twice.
//
//   OptionSchema s;
//   s.choice("schedule", "exp", {"linear", "sin", "exp"}, "temperature schedule (SLB Sec. 4.1)")
//    .number("t_start", 0.01, "T_s", 0.0, kInf, /*open_low=*/true);
//   json o = s.resolve({{"schedule", "sin"}}, "slb");   // {"schedule": "sin", "t_start": 0.01}
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace lowbit {
namespace io {

// "an integer", "a string", ...: a JSON value's type in an error message.
inline const char* json_type_name(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

enum class OptionType { Bool, Int, Number, String, IntList, NumberList };

inline const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::Bool: return "bool";
    case OptionType::Int: return "int";
    case OptionType::Number: return "number";
    case OptionType::String: return "string";
    case OptionType::IntList: return "list of int";
    case OptionType::NumberList: return "list of number";
  }
  return "?";
}

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::Number;
  nlohmann::json def;
  std::string doc;
  double lo = -std::numeric_limits<double>::infinity();  // numbers and ints: lo <= v <= hi
  double hi = std::numeric_limits<double>::infinity();
  bool open_lo = false;                                 // lo < v instead of lo <= v
  std::vector<std::string> choices;                     // strings: one of these (empty = any)

  // "0 <= v", "0 < v <= 1", "one of a | b"; empty when anything of the type goes.
  std::string range() const {
    if (!choices.empty()) {
      std::string s;
      for (auto& c : choices) s += (s.empty() ? "" : " | ") + c;
      return s;
    }
    if (type == OptionType::Bool || type == OptionType::String) return "";
    std::ostringstream os;
    const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    if (has_lo) os << lo << (open_lo ? " < " : " <= ");
    if (has_lo || has_hi) os << "v";
    if (has_hi) os << " <= " << hi;
    return os.str();
  }

  // Throws naming `where.key`, the value and what is expected; returns the value in the
  // option's own JSON type (an int given for a number becomes a double).
  nlohmann::json check(const nlohmann::json& v, const std::string& where) const {
    const std::string name = where.empty() ? key : where + "." + key;
    auto expected = [&]() {
      const std::string r = range();
      return std::string(option_type_name(type)) + (r.empty() ? "" : " (" + r + ")");
    };
    switch (type) {
      case OptionType::Bool:
        LOWBIT_CHECK(v.is_boolean(), "config key '", name, "' = ", v.dump(), ": expected true or false");
        return v;
      case OptionType::String: {
        LOWBIT_CHECK(v.is_string(), "config key '", name, "' = ", v.dump(), ": expected a ", expected());
        if (!choices.empty()) {
          bool ok = false;
          for (auto& c : choices) ok = ok || v.get<std::string>() == c;
          LOWBIT_CHECK(ok, "config key '", name, "' = ", v.dump(), ": expected one of ", range());
        }
        return v;
      }
      case OptionType::IntList: {
        bool ok = v.is_array();
        if (ok)
          for (auto& e : v) ok = ok && e.is_number_integer() && e.get<double>() >= lo && e.get<double>() <= hi;
        LOWBIT_CHECK(ok, "config key '", name, "' = ", v.dump(), ": expected a list of integers",
                     range().empty() ? "" : " (each " + range() + ")");
        return v;
      }
      case OptionType::NumberList: {
        bool ok = v.is_array() && v.size() <= 4096;
        nlohmann::json out = nlohmann::json::array();
        if (ok)
          for (auto& e : v) {
            ok = ok && e.is_number() && std::isfinite(e.get<double>()) &&
                 (open_lo ? e.get<double>() > lo : e.get<double>() >= lo) && e.get<double>() <= hi;
            if (ok) out.push_back(e.get<double>());
          }
        LOWBIT_CHECK(ok, "config key '", name, "' = ", v.dump(), ": expected a list of numbers",
                     range().empty() ? "" : " (each " + range() + ")");
        return out;
      }
      case OptionType::Int:
      case OptionType::Number: {
        const bool ok_type = type == OptionType::Int ? v.is_number_integer() : v.is_number();
        // An unsigned value above INT64_MAX would pass the double comparison below and wrap.
        LOWBIT_CHECK(!(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)), "config key '", name, "' = ",
                     v.dump(), ": expected ", range().empty() ? "a smaller integer" : range());
        LOWBIT_CHECK(ok_type, "config key '", name, "' = ", v.dump(), ": expected ",
                     type == OptionType::Int ? "an integer" : "a number", range().empty() ? "" : " (" + range() + ")");
        const double d = v.get<double>();
        const bool in = std::isfinite(d) && (open_lo ? d > lo : d >= lo) && d <= hi;
        LOWBIT_CHECK(in, "config key '", name, "' = ", v.dump(), ": expected ", range());
        return type == OptionType::Int ? nlohmann::json(v.get<int64_t>()) : nlohmann::json(d);
      }
    }
    return v;
  }
};

// Parses a config text (a file or a --set value) refusing what a config never needs and a
// hostile file could use: more than 1 MiB, nesting deeper than 32 (a 100,000-deep value once
// overflowed the stack), and a key repeated in one object (JSON would silently keep the
// last one). `what` names the source in the error.
inline nlohmann::json parse_config_text(const std::string& text, const std::string& what) {
  LOWBIT_CHECK(text.size() <= (1u << 20), what, ": ", text.size(), " bytes, more than a config's limit of 1 MiB");
  std::vector<std::vector<std::string>> keys;  // the keys seen so far in each open object
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    LOWBIT_CHECK(depth <= 32, what, ": nested deeper than 32 levels");
    if (ev == nlohmann::json::parse_event_t::object_start) keys.emplace_back();
    else if (ev == nlohmann::json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (ev == nlohmann::json::parse_event_t::key && !keys.empty()) {
      const std::string k = parsed.get<std::string>();
      for (auto& seen : keys.back()) LOWBIT_CHECK(seen != k, what, ": key '", k, "' appears twice in one object");
      keys.back().push_back(k);
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, cb);
  } catch (const nlohmann::json::exception& e) {
    lowbit::detail::fail(what, ": not valid JSON: ", e.what());
  }
}

class OptionSchema {
 public:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  OptionSchema& boolean(std::string key, bool def, std::string doc) {
    return add(spec(std::move(key), OptionType::Bool, def, std::move(doc)));
  }
  OptionSchema& integer(std::string key, int64_t def, std::string doc, double lo = -kInf, double hi = kInf) {
    OptionSpec s = spec(std::move(key), OptionType::Int, def, std::move(doc));
    s.lo = lo, s.hi = hi;
    return add(std::move(s));
  }
  OptionSchema& number(std::string key, double def, std::string doc, double lo = -kInf, double hi = kInf,
                       bool open_lo = false) {
    OptionSpec s = spec(std::move(key), OptionType::Number, def, std::move(doc));
    s.lo = lo, s.hi = hi, s.open_lo = open_lo;
    return add(std::move(s));
  }
  OptionSchema& int_list(std::string key, std::vector<int64_t> def, std::string doc, double lo = -kInf) {
    OptionSpec s = spec(std::move(key), OptionType::IntList, def, std::move(doc));
    s.lo = lo;
    return add(std::move(s));
  }
  OptionSchema& number_list(std::string key, std::vector<double> def, std::string doc, double lo = -kInf,
                            double hi = kInf, bool open_lo = false) {
    OptionSpec s = spec(std::move(key), OptionType::NumberList, def, std::move(doc));
    s.lo = lo, s.hi = hi, s.open_lo = open_lo;
    return add(std::move(s));
  }
  OptionSchema& text(std::string key, std::string def, std::string doc) {
    return add(spec(std::move(key), OptionType::String, std::move(def), std::move(doc)));
  }
  OptionSchema& choice(std::string key, std::string def, std::vector<std::string> choices, std::string doc) {
    OptionSpec s = spec(std::move(key), OptionType::String, def, std::move(doc));
    s.choices = std::move(choices);
    return add(std::move(s));
  }
  // Appends every option of another schema (e.g. the DoReFa/PACT activation options that
  // several methods share).
  OptionSchema& include(const OptionSchema& other) {
    for (auto& s : other.specs_) add(s);
    return *this;
  }

  const std::vector<OptionSpec>& specs() const { return specs_; }
  bool empty() const { return specs_.empty(); }
  const OptionSpec* find(const std::string& key) const {
    for (auto& s : specs_)
      if (s.key == key) return &s;
    return nullptr;
  }
  std::string keys() const {
    std::string k;
    for (auto& s : specs_) k += (k.empty() ? "" : ", ") + s.key;
    return k;
  }

  nlohmann::json defaults() const {
    nlohmann::json d = nlohmann::json::object();
    for (auto& s : specs_) d[s.key] = s.def;
    return d;
  }

  // `given` (an object, possibly partial) checked and completed with the defaults, in the
  // schema's order. `where` prefixes key names in errors ("slb" -> 'slb.t_start').
  nlohmann::json resolve(const nlohmann::json& given, const std::string& where) const {
    const std::string block = where.empty() ? "the config" : "config key '" + where + "'";
    LOWBIT_CHECK(given.is_object(), block, " must be a JSON object, got ", given.dump());
    for (auto it = given.begin(); it != given.end(); ++it)
      LOWBIT_CHECK(find(it.key()) != nullptr, "unknown config key '", where.empty() ? "" : where + ".", it.key(),
                   "' (valid keys", where.empty() ? "" : " of '" + where + "'", ": ", keys(), ")");
    nlohmann::json out = nlohmann::json::object();
    for (auto& s : specs_) out[s.key] = given.contains(s.key) ? s.check(given.at(s.key), where) : s.def;
    return out;
  }

  // One JSON object per option: key, type, default, doc, range (for --help-config).
  nlohmann::json help() const {
    nlohmann::json a = nlohmann::json::array();
    for (auto& s : specs_)
      a.push_back({{"key", s.key}, {"type", option_type_name(s.type)}, {"default", s.def}, {"doc", s.doc},
                   {"range", s.range()}});
    return a;
  }

  // A Markdown table of the options (docs pages are checked against it by tests/test_docs.cpp).
  std::string markdown(const std::string& prefix) const {
    auto cell = [](const std::string& x) {  // a '|' inside a cell would end it
      std::string o;
      for (char c : x) o += c == '|' ? std::string("\\|") : std::string(1, c);
      return o;
    };
    std::string t = "| key | type | default | valid | meaning |\n|---|---|---|---|---|\n";
    for (auto& s : specs_)
      t += "| `" + (prefix.empty() ? "" : prefix + ".") + s.key + "` | " + option_type_name(s.type) + " | `" +
           s.def.dump() + "` | " + cell(s.range()) + " | " + cell(s.doc) + " |\n";
    return t;
  }

 private:
  static OptionSpec spec(std::string key, OptionType type, nlohmann::json def, std::string doc) {
    OptionSpec s;
    s.key = std::move(key);
    s.type = type;
    s.def = std::move(def);
    s.doc = std::move(doc);
    return s;
  }
  OptionSchema& add(OptionSpec s) {
    LOWBIT_CHECK(find(s.key) == nullptr, "OptionSchema: option '", s.key, "' declared twice");
    s.check(s.def, "(default of)");  // a default outside its own range is a programming error
    specs_.push_back(std::move(s));
    return *this;
  }
  std::vector<OptionSpec> specs_;
};

}  // namespace io
}  // namespace lowbit
