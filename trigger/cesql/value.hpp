#pragma once
// CESQL values (CloudEvents SQL Expression Language v1, section 3.1 "Type system").

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::cesql {

/// The three primitive CESQL types (spec 3.1). URI, URI-reference, Timestamp and Binary attributes are
/// represented as String (spec 3.2).
enum class Type : std::uint8_t { Boolean, Integer, String };

/// "Boolean", "Integer" or "String".
std::string_view to_string(Type type);

/// The primary output of an evaluation: a Boolean, a 32-bit signed Integer or a String. A
/// default-constructed Value is Boolean false, the result of an expression whose type cannot be determined
/// (spec 3.2).
class Value {
 public:
  Value() = default;

  static Value boolean(bool b) {
    Value v;
    v.boolean_ = b;
    return v;
  }
  static Value integer(std::int32_t i) {
    Value v;
    v.type_ = Type::Integer;
    v.integer_ = i;
    return v;
  }
  static Value string(std::string s) {
    Value v;
    v.type_ = Type::String;
    v.string_ = std::move(s);
    return v;
  }

  /// The zero value of a type (spec 3.1): false, 0 or "".
  static Value zero(Type type);

  Type type() const { return type_; }
  bool is_boolean() const { return type_ == Type::Boolean; }
  bool is_integer() const { return type_ == Type::Integer; }
  bool is_string() const { return type_ == Type::String; }

  /// The payload of the matching type; the other accessors return that type's zero value.
  bool as_boolean() const { return type_ == Type::Boolean && boolean_; }
  std::int32_t as_integer() const { return type_ == Type::Integer ? integer_ : 0; }
  const std::string& as_string() const { return string_; }

  /// JSON encoding: true/false, a number, or a quoted and escaped string.
  std::string to_json() const;

  bool operator==(const Value& other) const = default;

 private:
  Type type_ = Type::Boolean;
  bool boolean_ = false;
  std::int32_t integer_ = 0;
  std::string string_;
};

}  // namespace sluice::cesql
