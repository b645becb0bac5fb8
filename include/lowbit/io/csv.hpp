// metrics.csv: the same per-epoch records as metrics.jsonl, as one CSV table for
// spreadsheets and pandas.read_csv. Columns are the keys of the first record (in
// nlohmann::json's order: sorted by name), then each key a later record adds (a method's
// log that starts later) in the same order; rows without a key leave its cell empty.
// Numbers are written as in metrics.jsonl (the shortest text that reads back exactly),
// strings quoted when they need it (RFC 4180), nested values as their JSON text, quoted.
#pragma once
#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "atomic_write.hpp"

namespace lowbit {
namespace io {

// One CSV cell for a JSON value.
inline std::string csv_cell(const nlohmann::json& v) {
  std::string s;
  if (v.is_null()) return "";
  if (v.is_string()) s = v.get<std::string>();
  else s = v.dump();
  if (!v.is_string() && !v.is_object() && !v.is_array()) return s;  // integers and booleans
  if (s.find_first_of(",\"\n\r") == std::string::npos && !v.is_object() && !v.is_array()) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The CSV text of JSON-lines text (one object per non-empty line). `what` names the source.
inline std::string jsonl_to_csv(const std::string& jsonl, const std::string& what) {
  std::vector<nlohmann::json> rows;
  std::vector<std::string> columns;
  size_t start = 0, line = 0;
  while (start < jsonl.size()) {
    size_t end = jsonl.find('\n', start);
    if (end == std::string::npos) end = jsonl.size();
    ++line;
    const std::string text = jsonl.substr(start, end - start);
    start = end + 1;
    if (text.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail(what, ": line ", line, " is not JSON (", e.what(), ")");
    }
    LOWBIT_CHECK(j.is_object(), what, ": line ", line, " is ", j.dump(), ", expected a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it)  // nlohmann::json sorts keys: stable column order
      if (std::find(columns.begin(), columns.end(), it.key()) == columns.end()) columns.push_back(it.key());
    rows.push_back(std::move(j));
  }
  std::string out;
  for (size_t c = 0; c < columns.size(); ++c) out += (c ? "," : "") + csv_cell(columns[c]);
  out += "\n";
  for (auto& r : rows) {
    for (size_t c = 0; c < columns.size(); ++c)
      out += (c ? "," : "") + (r.contains(columns[c]) ? csv_cell(r.at(columns[c])) : std::string());
    out += "\n";
  }
  return out;
}

// Rewrites `csv_path` (atomically) from the JSON-lines file `jsonl_path`.
inline void write_csv_from_jsonl(const std::string& jsonl_path, const std::string& csv_path) {
  std::ifstream in(jsonl_path, std::ios::binary);
  LOWBIT_CHECK(in.good(), "cannot read '", jsonl_path, "' to write '", csv_path, "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_file_atomic(csv_path, jsonl_to_csv(text, "'" + jsonl_path + "'"), "metrics.csv");
}

}  // namespace io
}  // namespace lowbit
