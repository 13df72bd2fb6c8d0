// A small JSON writer for the client's one-object-per-line outputs (`state --json`). Strings are
// escaped per RFC 8259; bytes that are not valid UTF-8 (possible in Linux file names) are written
// as \u00XX, i.e. read as Latin-1, so the output is always valid JSON. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tierflow::cli {

// `s` as a quoted JSON string.
std::string JsonQuote(std::string_view s);

// Builds one JSON value. Commas are placed automatically; the caller balances Begin/End.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  const std::string& str() const { return out_; }

 private:
  void Separate();

  std::string out_;
  bool need_comma_ = false;
};

}  // namespace tierflow::cli
