#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common.h"

namespace runner {

namespace {

class Parser {
 public:
  explicit Parser(const std::string& t) : t_(t) {}

  Json document() {
    Json v = value(0);
    space();
    if (i_ != t_.size()) fail("text after the value");
    return v;
  }

 private:
  const std::string& t_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& why) const {
    throw Error("malformed JSON: " + why + " at offset " + std::to_string(i_));
  }
  void space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  bool word(const char* w) {
    size_t n = 0;
    while (w[n]) ++n;
    if (t_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting too deep");
    space();
    if (i_ >= t_.size()) fail("unexpected end");
    Json v;
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      v.type = Json::Type::Object;
      if (eat('}')) return v;
      do {
        space();
        std::string key = string();
        expect(':');
        v.members.emplace_back(std::move(key), value(depth + 1));
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.type = Json::Type::Array;
      if (eat(']')) return v;
      do {
        v.items.push_back(value(depth + 1));
      } while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.type = Json::Type::String;
      v.string = string();
    } else if (word("true")) {
      v.type = Json::Type::Bool;
      v.boolean = true;
    } else if (word("false")) {
      v.type = Json::Type::Bool;
    } else if (word("null")) {
      v.type = Json::Type::Null;
    } else {
      const size_t start = i_;
      while (i_ < t_.size() && std::string("+-0123456789.eE").find(t_[i_]) != std::string::npos) ++i_;
      const std::string num = t_.substr(start, i_ - start);
      char* end = nullptr;
      v.number = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0') fail("bad value");
      v.type = Json::Type::Number;
    }
    return v;
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }

  std::string string() {
    if (i_ >= t_.size() || t_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= t_.size()) fail("unterminated string");
      const char c = t_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= t_.size()) fail("unterminated string");
      const char e = t_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && t_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
};

const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}

[[noreturn]] void wrong(const char* what, const char* want, Json::Type got) {
  throw Error(std::string(what) + " is " + type_name(got) + ", not " + want);
}

}  // namespace

Json Json::parse(const std::string& text) { return Parser(text).document(); }

const Json* Json::find(const std::string& key) const {
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

const Json& Json::at(const std::string& key, const char* what) const {
  if (type != Type::Object) wrong(what, "an object", type);
  const Json* v = find(key);
  if (!v) throw Error(std::string(what) + " has no '" + key + "'");
  return *v;
}

double Json::num(const char* what) const {
  if (type != Type::Number) wrong(what, "a number", type);
  return number;
}

int64_t Json::integer(const char* what) const {
  const double v = num(what);
  if (v != std::floor(v) || std::fabs(v) > 9007199254740992.0) wrong(what, "an integer", type);
  return static_cast<int64_t>(v);
}

const std::string& Json::str(const char* what) const {
  if (type != Type::String) wrong(what, "a string", type);
  return string;
}

bool Json::flag(const char* what) const {
  if (type != Type::Bool) wrong(what, "a boolean", type);
  return boolean;
}

const std::vector<Json>& Json::array(const char* what) const {
  if (type != Type::Array) wrong(what, "an array", type);
  return items;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string json_string(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  return r + "\"";
}

JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  return add_raw(key, json_string(value));
}
JsonObject& JsonObject::add(const std::string& key, const char* value) {
  return value ? add_raw(key, json_string(value)) : add_null(key);
}
JsonObject& JsonObject::add(const std::string& key, double value) { return add_raw(key, json_number(value)); }
JsonObject& JsonObject::add(const std::string& key, int64_t value) { return add_raw(key, std::to_string(value)); }
JsonObject& JsonObject::add(const std::string& key, bool value) { return add_raw(key, value ? "true" : "false"); }
JsonObject& JsonObject::add(const std::string& key, const JsonObject& value) { return add_raw(key, value.str()); }
JsonObject& JsonObject::add(const std::string& key, const std::vector<int64_t>& value) {
  std::string r = "[";
  for (size_t i = 0; i < value.size(); ++i) r += (i ? ", " : "") + std::to_string(value[i]);
  return add_raw(key, r + "]");
}
JsonObject& JsonObject::add_null(const std::string& key) { return add_raw(key, "null"); }
JsonObject& JsonObject::add_raw(const std::string& key, const std::string& json) {
  members_.emplace_back(key, json);
  return *this;
}

std::string JsonObject::str(bool multiline) const {
  std::string r = "{";
  for (size_t i = 0; i < members_.size(); ++i) {
    r += i ? (multiline ? ",\n  " : ", ") : (multiline ? "\n  " : "");
    r += json_string(members_[i].first) + ": " + members_[i].second;
  }
  return r + (multiline ? "\n}" : "}");
}

}  // namespace runner
