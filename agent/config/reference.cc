#include "agent/config/reference.h"

#include <cctype>
#include <map>
#include <sstream>

#include "agent/config/config.h"
#include "agent/config/schema.h"
#include "agent/config/units.h"
#include "agent/config/value.h"

namespace edgespool::agent {

namespace {

using config_detail::KeyDesc;
using config_detail::Kind;
using config_detail::SectionDesc;

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kString:
      return "string";
    case Kind::kEnum:
      return "string";
    case Kind::kInt:
      return "integer";
    case Kind::kBool:
      return "boolean";
    case Kind::kDuration:
      return "duration";
    case Kind::kSize:
      return "size";
    case Kind::kMode:
      return "file mode (octal string)";
    case Kind::kFraction:
      return "fraction, above 0 and at most 1";
    case Kind::kNumber:
      return "number, at least 0";
    case Kind::kWeights:
      return "three integers (high, normal, low)";
    case Kind::kFilterList:
      return "array of MQTT filters";
    case Kind::kStringList:
      return "array of strings";
    case Kind::kUrlList:
      return "string, or array of strings";
  }
  return "string";
}

std::string Bound(Kind k, int64_t v) {
  if (k == Kind::kDuration) return FormatDurationMs(v);
  if (k == Kind::kSize) return FormatSizeBytes(v);
  if (k == Kind::kMode && v != 0) {
    std::ostringstream o;
    o << "0" << std::oct << v;
    return o.str();
  }
  return std::to_string(v);
}

std::string Range(const KeyDesc& d) {
  switch (d.kind) {
    case Kind::kInt:
    case Kind::kDuration:
    case Kind::kSize:
    case Kind::kMode:
    case Kind::kWeights:
      break;
    default:
      return "";
  }
  if (d.min == 0 && d.max == INT64_MAX) return "";
  if (d.max == INT64_MAX) return "at least " + Bound(d.kind, d.min);
  return Bound(d.kind, d.min) + ".." + Bound(d.kind, d.max);
}

std::string Choices(const KeyDesc& d) {
  if (d.kind != Kind::kEnum || d.choices == nullptr) return "";
  std::string c = d.choices;
  std::string out;
  for (char ch : c) out += ch == '|' ? std::string(", ") : std::string(1, ch);
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() || l.empty() ? "" : " ") + l;
  return out;
}

// Where a value ends and its trailing comment starts: a '#' outside quotes
// (a filter's "#" inside a string is not one).
std::string TrailingComment(const std::string& value) {
  bool quoted = false;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\\' && quoted) {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '#' && !quoted &&
               (i == 0 || std::isspace(static_cast<unsigned char>(value[i - 1])))) {
      return Trim(value.substr(i + 1));
    }
  }
  return "";
}

struct KeyDoc {
  std::string block;        // the comment lines above it (or shared from the key above)
  std::string note;         // the comment after its value
  std::string shares_with;  // the key whose block it shares, if any
};

struct ExampleDocs {
  std::map<std::string, std::string> sections;  // section -> doc
  std::map<std::string, KeyDoc> keys;           // "section.key" -> doc
};

// Reads the comments of config.example.toml: a block of comment lines
// documents the key (or [section]) right below it; a comment after a value
// is a note on that key ("# (restart)"); a key right below another one, with
// no block of its own, shares that one's block (ca_file, ca_dir). A
// commented-out key ("# ttl = ...") counts as a key when the schema knows
// it, and neither shares nor lends a block (`# client_id = ...` above
// `username`).
ExampleDocs ReadExample(const std::string& text) {
  ExampleDocs docs;
  std::istringstream in(text);
  std::string raw, section;
  std::vector<std::string> block;
  std::string prev_key;  // the uncommented key on the line before, if any
  while (std::getline(in, raw)) {
    std::string t = Trim(raw);
    bool commented = !t.empty() && t[0] == '#';
    std::string body = commented ? Trim(t.substr(1)) : t;
    if (t.empty()) {
      block.clear();
      prev_key.clear();
      continue;
    }
    // [section] / [[section]], possibly commented out.
    if (body.size() > 2 && body[0] == '[' && body.back() == ']') {
      std::string name = body;
      while (!name.empty() && (name.front() == '[' || name.front() == ' ')) name.erase(0, 1);
      while (!name.empty() && (name.back() == ']' || name.back() == ' ')) name.pop_back();
      if (config_detail::FindSection(name) != nullptr) {
        section = name;
        if (!block.empty()) docs.sections[section] = Join(block);
        block.clear();
        prev_key.clear();
        continue;
      }
    }
    // key = value, possibly commented out.
    size_t eq = body.find('=');
    const SectionDesc* s = section.empty() ? nullptr : config_detail::FindSection(section);
    if (eq != std::string::npos && s != nullptr) {
      std::string key = Trim(body.substr(0, eq));
      if (config_detail::FindKey(*s, key) != nullptr) {
        KeyDoc d;
        d.block = Join(block);
        d.note = TrailingComment(body.substr(eq + 1));
        if (d.block.empty() && !commented && !prev_key.empty()) {
          const KeyDoc& above = docs.keys[section + "." + prev_key];
          d.block = above.block;
          d.shares_with = above.shares_with.empty() ? prev_key : above.shares_with;
          if (d.block.empty()) d.shares_with.clear();
        }
        docs.keys[section + "." + key] = d;
        prev_key = commented ? "" : key;
        block.clear();
        continue;
      }
    }
    if (commented) {
      block.push_back(body);
      prev_key.clear();
    }
  }
  return docs;
}

}  // namespace

std::vector<SectionReference> ConfigReference() {
  ExampleDocs docs = ReadExample(ConfigExampleText());
  Config defaults;
  std::vector<SectionReference> out;
  for (const SectionDesc& s : config_detail::Sections()) {
    SectionReference sec;
    sec.name = s.name;
    sec.is_array = s.is_array();
    sec.doc = docs.sections[s.name];
    void* owner = s.is_array() ? s.append(defaults, 0) : s.table(defaults);
    for (const KeyDesc& d : s) {
      KeyReference k;
      k.key = d.key;
      k.kind = KindName(d.kind);
      k.range = Range(d);
      k.choices = Choices(d);
      if (config_detail::IsShown(d, owner)) k.default_value = config_detail::RenderValue(d, owner);
      if (!s.is_array() && d.kind != Kind::kFilterList && d.kind != Kind::kStringList) {
        k.env = "EDGESPOOL_" + std::string(s.name) + "_" + d.key;
        for (char& c : k.env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      auto it = docs.keys.find(std::string(s.name) + "." + d.key);
      if (it != docs.keys.end()) {
        const KeyDoc& doc = it->second;
        k.doc = doc.block + (doc.block.empty() || doc.note.empty() ? "" : " ") + doc.note;
        k.note = doc.note;
        k.shares_doc_with = doc.shares_with;
      }
      k.secret = d.secret;
      k.live = d.live;
      sec.keys.push_back(std::move(k));
    }
    out.push_back(std::move(sec));
  }
  return out;
}

}  // namespace edgespool::agent
