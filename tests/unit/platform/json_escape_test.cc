// The project's one JSON string escaper: every escape it makes, runs copied
// through untouched, and that what it writes parses back (cJSON is not linked
// here, so the round trip is checked by an independent decoder below).
#include "platform/json_escape.h"

#include <gtest/gtest.h>

#include <string>

namespace edgespool::platform {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

// A strict decoder of the subset the escaper emits, for the round trip.
bool Decode(const std::string& lit, std::string* out) {
  if (lit.size() < 2 || lit.front() != '"' || lit.back() != '"') return false;
  out->clear();
  for (size_t i = 1; i + 1 < lit.size(); ++i) {
    auto c = static_cast<unsigned char>(lit[i]);
    if (c == '"' || c < 0x20 || c == 0x7f) return false;  // must have been escaped
    if (c != '\\') {
      out->push_back(static_cast<char>(c));
      continue;
    }
    if (++i + 1 >= lit.size()) return false;
    switch (lit[i]) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u':
        if (i + 5 >= lit.size()) return false;
        out->push_back(static_cast<char>(std::stoi(lit.substr(i + 1, 4), nullptr, 16)));
        i += 4;
        break;
      default:
        return false;
    }
  }
  return true;
}

TEST(JsonEscape, PlainTextIsQuotedAsIs) {
  EXPECT_EQ(Escape(""), "\"\"");
  EXPECT_EQ(Escape("sensors/temp-1"), "\"sensors/temp-1\"");
  EXPECT_EQ(Escape("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");  // UTF-8 kept
}

TEST(JsonEscape, ShortEscapes) {
  EXPECT_EQ(Escape("a\"b"), R"("a\"b")");
  EXPECT_EQ(Escape("a\\b"), R"("a\\b")");
  EXPECT_EQ(Escape("a\nb\rc\td"), R"("a\nb\rc\td")");
}

TEST(JsonEscape, OtherControlBytesAndDelAreUnicodeEscapes) {
  EXPECT_EQ(Escape(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(Escape("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(Escape("\x08\x0c"), R"("\u0008\u000c")");
  // DEL: optional in JSON, required in a TOML basic string (config show).
  EXPECT_EQ(Escape("a\x7f"), R"("a\u007f")");
  EXPECT_EQ(Escape(" ~"), "\" ~\"");
}

TEST(JsonEscape, AppendsToWhatIsThere) {
  std::string out = "{\"k\":";
  AppendJsonString(&out, "v\"");
  EXPECT_EQ(out, R"({"k":"v\"")");
}

TEST(JsonEscape, EveryByteRoundTrips) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string lit = Escape(all + "tail" + all);
  std::string back;
  ASSERT_TRUE(Decode(lit, &back)) << lit;
  EXPECT_EQ(back, all + "tail" + all);
}

}  // namespace
}  // namespace edgespool::platform
