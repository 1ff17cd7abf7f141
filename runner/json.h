// JSON in and out: a small parser for the tiling plan the exporter stores in the model
// (runtime/tileplan.py), and an ordered object builder for the runner's report.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace runner {

// A parsed JSON value. Objects keep their keys in order.
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Json> items;                            // Array
  std::vector<std::pair<std::string, Json>> members;  // Object

  static Json parse(const std::string& text);  // throws Error("... at offset N")

  bool is_null() const { return type == Type::Null; }
  // Checked access: Error naming `what` (e.g. "tiling plan") and the key on a missing key or a
  // value of the wrong type.
  const Json& at(const std::string& key, const char* what) const;
  const Json* find(const std::string& key) const;
  double num(const char* what) const;
  int64_t integer(const char* what) const;
  const std::string& str(const char* what) const;
  bool flag(const char* what) const;
  const std::vector<Json>& array(const char* what) const;
};

// JSON text of a number: the shortest form that reads back exactly (as Python's repr), null if
// not finite.
std::string json_number(double v);
std::string json_string(const std::string& s);

// Builds a JSON object field by field, in order: report.add("median_ms", 12.5).
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value);
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, int64_t value);
  JsonObject& add(const std::string& key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add(const std::string& key, const JsonObject& value);
  JsonObject& add(const std::string& key, const std::vector<int64_t>& value);
  JsonObject& add_null(const std::string& key);
  JsonObject& add_raw(const std::string& key, const std::string& json);  // already JSON text
  // {"a": 1, "b": 2}; with `multiline`, one member per line (the report's top level).
  std::string str(bool multiline = false) const;

 private:
  std::vector<std::pair<std::string, std::string>> members_;
};

}  // namespace runner
