#include "core/manifest.hpp"

#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace sluice {
namespace {

// Plain (unquoted) YAML scalars get YAML 1.2 core-schema types; quoted ones stay strings.
nlohmann::json scalar_to_json(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() != "?") return text;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text == "null" || text == "Null" || text == "NULL" || text == "~" || text.empty()) return nullptr;
  if (!text.empty()) {
    std::size_t pos = 0;
    bool negative = text[0] == '-' || text[0] == '+';
    if (negative) pos = 1;
    bool integer = pos < text.size();
    for (std::size_t i = pos; i < text.size(); ++i)
      if (text[i] < '0' || text[i] > '9') integer = false;
    if (integer && text.size() - pos <= 18) return std::stoll(text);
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    bool looks_numeric = text.find_first_not_of("+-0123456789.eE") == std::string::npos;
    if (looks_numeric && end && *end == '\0' && text.find_first_of("0123456789") != std::string::npos)
      return d;
  }
  return text;
}

/// Bounds on one manifest file: aliases can make a small YAML text expand exponentially ("billion
/// laughs"), and deep nesting exhausts the stack.
constexpr std::size_t kMaxNodes = 200000;
constexpr int kMaxDepth = 64;

struct TooLarge {
  std::string why;
};

/// A key given twice in one mapping. yaml-cpp and nlohmann::json keep the last silently; kubectl refuses
/// such a manifest, and so do we.
struct DuplicateKey {
  std::string path;  // "spec.broker"
  int line = -1;     // 0-based; -1 when unknown (JSON)
};

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

/// yaml-cpp 0.7 reads some malformed flow collections as endless (a document whose top-level value is
/// followed by a comma: "{a},b", "'s',b"; manifest_parse_fuzz found several spellings): YAML::LoadAll never
/// returns and allocates until memory runs out. Its event parser yields the same endless stream of
/// events, so every text goes through the event parser first with a budget, and is loaded as nodes only
/// when it ends within it.
constexpr std::size_t kMaxEvents = 2 * kMaxNodes + 64;

struct Endless {
  YAML::Mark mark;
};

class EventBudget : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { count(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    count(mark);
  }
  void OnMapEnd() override {}

 private:
  void count(const YAML::Mark& mark) {
    if (++events_ > kMaxEvents) throw Endless{mark};
  }
  std::size_t events_ = 0;
};

/// Throws Endless when yaml-cpp would not return from loading `text`, YAML::Exception when it is invalid.
void check_ends(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  EventBudget budget;
  while (parser.HandleNextDocument(budget)) {
  }
}

nlohmann::json yaml_to_json(const YAML::Node& node, std::size_t& budget, int depth, const std::string& path) {
  if (budget == 0) throw TooLarge{"more than " + std::to_string(kMaxNodes) + " values (aliases expand)"};
  --budget;
  if (depth > kMaxDepth) throw TooLarge{"nested deeper than " + std::to_string(kMaxDepth) + " levels"};
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      auto array = nlohmann::json::array();
      for (const auto& item : node)
        array.push_back(
            yaml_to_json(item, budget, depth + 1, path + "[" + std::to_string(array.size()) + "]"));
      return array;
    }
    case YAML::NodeType::Map: {
      auto object = nlohmann::json::object();
      for (const auto& kv : node) {
        const auto key = kv.first.as<std::string>();
        if (object.contains(key)) throw DuplicateKey{child_path(path, key), kv.first.Mark().line};
        object[key] = yaml_to_json(kv.second, budget, depth + 1, child_path(path, key));
      }
      return object;
    }
  }
  return nullptr;
}

void emit(YAML::Emitter& out, const nlohmann::json& value) {
  if (value.is_object()) {
    out << YAML::BeginMap;
    for (auto it = value.begin(); it != value.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : value) emit(out, item);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    // Quote strings that would otherwise read back as another type (or not read back at all).
    bool plain = !s.empty();
    if (plain) {
      try {
        auto reread = scalar_to_json(YAML::Load(s));
        plain = reread.is_string() && reread.get<std::string>() == s;
      } catch (const YAML::Exception&) {
        plain = false;
      }
    }
    if (!plain)
      out << YAML::DoubleQuoted << s;
    else
      out << s;
  } else if (value.is_boolean()) {
    out << (value.get<bool>() ? "true" : "false");
  } else if (value.is_null()) {
    out << YAML::Null;
  } else {
    out << value.dump();
  }
}

void add_document(std::vector<nlohmann::json>& out, nlohmann::json doc, std::size_t index) {
  if (doc.is_null()) return;
  if (doc.is_array()) {
    for (auto& item : doc) add_document(out, std::move(item), index);
    return;
  }
  // `kind: List`, or `<Kind>List` as `sluice get` (and kubectl) print a listing.
  const auto kind = doc.is_object() ? doc.find("kind") : doc.end();
  const bool list = kind != doc.end() && kind->is_string() &&
                    kind->get_ref<const std::string&>().size() >= 4 &&
                    kind->get_ref<const std::string&>().ends_with("List");
  if (list && doc.contains("items") && doc["items"].is_array()) {
    for (auto& item : doc["items"]) add_document(out, std::move(item), index);
    return;
  }
  (void)index;
  out.push_back(std::move(doc));
}

}  // namespace

Result<std::vector<nlohmann::json>> parse_manifests(std::string_view text) {
  std::vector<nlohmann::json> out;
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    nlohmann::json parsed;
    // The path of each open object or array, for naming a duplicated key.
    struct Frame {
      bool object;
      std::string path;
      std::set<std::string> keys;
      std::string last_key;
      std::size_t index = 0;
    };
    std::vector<Frame> open;
    auto next_path = [&open]() -> std::string {
      if (open.empty()) return "";
      const auto& f = open.back();
      return f.object ? child_path(f.path, f.last_key) : f.path + "[" + std::to_string(f.index) + "]";
    };
    auto element_done = [&open] {
      if (!open.empty() && !open.back().object) ++open.back().index;
    };
    try {
      parsed = nlohmann::json::parse(
          text,
          [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& value) {
            if (depth > kMaxDepth)
              throw TooLarge{"nested deeper than " + std::to_string(kMaxDepth) + " levels"};
            using Event = nlohmann::json::parse_event_t;
            switch (event) {
              case Event::object_start:
              case Event::array_start:
                open.push_back({event == Event::object_start, next_path(), {}, {}, 0});
                break;
              case Event::key: {
                auto& f = open.back();
                f.last_key = value.get<std::string>();
                if (!f.keys.insert(f.last_key).second) throw DuplicateKey{child_path(f.path, f.last_key)};
                break;
              }
              case Event::object_end:
              case Event::array_end:
                if (!open.empty()) open.pop_back();
                element_done();
                break;
              case Event::value:
                element_done();
                break;
            }
            return true;
          },
          false);
    } catch (const TooLarge& e) {
      return make_error("manifest", "too large: " + e.why, 400);
    } catch (const DuplicateKey& e) {
      return make_error("manifest", "duplicate key " + e.path + " (each key may appear once in an object)",
                        400);
    }
    if (!parsed.is_discarded()) {
      add_document(out, std::move(parsed), 1);
      return out;
    }
    // Fall through: YAML is a superset of JSON and gives better positions.
  }
  try {
    const std::string copy(text);
    check_ends(copy);
    auto docs = YAML::LoadAll(copy);
    std::size_t budget = kMaxNodes;
    for (std::size_t i = 0; i < docs.size(); ++i) {
      try {
        add_document(out, yaml_to_json(docs[i], budget, 0, ""), i + 1);
      } catch (const DuplicateKey& e) {
        return make_error(docs.size() > 1 ? "document " + std::to_string(i + 1) : std::string("manifest"),
                          "duplicate key " + e.path + " at line " + std::to_string(e.line + 1) +
                              " (each key may appear once in a mapping)",
                          400);
      }
    }
  } catch (const TooLarge& e) {
    return make_error("manifest", "too large: " + e.why, 400);
  } catch (const Endless& e) {
    return make_error(
        "manifest",
        "invalid YAML at line " + std::to_string(e.mark.line + 1) + ": it does not end within " +
            std::to_string(kMaxEvents) +
            " values (is a document's top-level value followed by ','? a list needs [ ] or - items)",
        400);
  } catch (const YAML::Exception& e) {
    return make_error("manifest",
                      "invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                          std::to_string(e.mark.column + 1) + ": " + e.msg,
                      400);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].is_object())
      return make_error("document " + std::to_string(i + 1),
                        "a manifest must be a mapping with kind and metadata", 400);
  }
  return out;
}

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

bool is_valid_resource_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name)
    if (!alnum(c) && c != '-') return false;
  return true;
}

Result<std::string> manifest_name(const nlohmann::json& manifest) {
  if (!manifest.contains("metadata") || !manifest["metadata"].is_object())
    return make_error("metadata", "is required (an object with a name)", 400);
  const auto& metadata = manifest["metadata"];
  if (!metadata.contains("name") || !metadata["name"].is_string())
    return make_error("metadata.name", "is required (a string)", 400);
  auto name = metadata["name"].get<std::string>();
  if (!is_valid_resource_name(name))
    return make_error("metadata.name",
                      "\"" + name +
                          "\" is not a valid name: use 1-63 lowercase letters, digits and '-', "
                          "starting and ending with a letter or digit",
                      400);
  return name;
}

}  // namespace sluice
