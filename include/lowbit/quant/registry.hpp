// The method registry: name -> Method descriptor (quant/method.hpp). Each method's folder
// ends in a descriptor and one line that registers it:
//
//   inline const bool registered = quant::register_method(std::make_shared<SlbMethod>());
//
// (an inline variable, initialized once before main in any program that includes the
// header), and a user's own method registers the same way from their own .cpp; nothing in
// lowbit has to change (tests/test_registry.cpp registers a ternary TWN method). The
// registry is the library's one piece of global mutable state besides the documented
// thread-local guards: it is filled during static initialization and only read afterwards.
//
// resolve() turns a QuantSpec as a user wrote it into one the factory can build: the
// method's options checked against its schema and completed with defaults, then the
// method's own checks (bits it accepts, options that depend on each other).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "method.hpp"
#include "spec.hpp"

namespace lowbit {
namespace quant {

namespace detail {
inline std::map<std::string, std::shared_ptr<const Method>>& registry() {
  static std::map<std::string, std::shared_ptr<const Method>> r;
  return r;
}
}  // namespace detail

// Registers `m` under m->name(); a second method of the same name is an error (two
// headers, or a user's method, claiming one name). Returns true, for the inline variable.
inline bool register_method(std::shared_ptr<const Method> m) {
  LOWBIT_CHECK(m != nullptr, "register_method: null method");
  const std::string n = m->name();
  LOWBIT_CHECK(!n.empty() && n.find_first_of(".= ") == std::string::npos, "register_method: bad method name '", n,
               "' (no '.', '=' or spaces: it is a config key)");
  LOWBIT_CHECK(!detail::registry().count(n), "register_method: a method named '", n, "' is already registered");
  detail::registry().emplace(n, std::move(m));
  return true;
}

// The registered names, sorted.
inline std::vector<std::string> method_names() {
  std::vector<std::string> v;
  for (auto& kv : detail::registry()) v.push_back(kv.first);
  return v;
}
inline std::string method_list() {
  std::string s;
  for (auto& n : method_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}
inline bool has_method(const std::string& name) { return detail::registry().count(name) > 0; }

inline std::shared_ptr<const Method> find_method_ptr(const std::string& name) {
  auto it = detail::registry().find(name);
  LOWBIT_CHECK(it != detail::registry().end(), "config key 'method': unknown method '", name, "' (expected one of ",
               method_list(), ")");
  return it->second;
}
inline const Method& find_method(const std::string& name) { return *find_method_ptr(name); }

// The spec with its options resolved against the method's schema and checked by the method.
inline QuantSpec resolve(QuantSpec spec) {
  const Method& m = find_method(spec.method);
  spec.options = m.options().resolve(spec.options.is_null() ? nlohmann::json::object() : spec.options, spec.method);
  m.validate(spec);
  return spec;
}

}  // namespace quant
}  // namespace lowbit
