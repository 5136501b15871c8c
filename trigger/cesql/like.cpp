#include "trigger/cesql/like.hpp"

#include "trigger/cesql/utf8.hpp"

namespace sluice::cesql::detail {

LikePattern LikePattern::compile(std::string_view pattern) {
  LikePattern p;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    // Spec 3.4.3: "Both % and _ can be escaped with \, in order to be matched literally."
    if (c == '\\' && i + 1 < pattern.size() && (pattern[i + 1] == '%' || pattern[i + 1] == '_')) {
      p.elements_.push_back({Kind::Byte, pattern[++i]});
    } else if (c == '%') {
      // Consecutive `%` are equivalent to one.
      if (p.elements_.empty() || p.elements_.back().kind != Kind::AnyRun)
        p.elements_.push_back({Kind::AnyRun, 0});
    } else if (c == '_') {
      p.elements_.push_back({Kind::AnyOne, 0});
    } else {
      p.elements_.push_back({Kind::Byte, c});
    }
  }

  // Recognise the shapes that filters use most, so that they run as one comparison or search.
  std::size_t runs = 0, ones = 0;
  for (const auto& e : p.elements_) {
    runs += e.kind == Kind::AnyRun;
    ones += e.kind == Kind::AnyOne;
  }
  const auto literal_between = [&](std::size_t from, std::size_t to) {
    std::string s;
    for (std::size_t i = from; i < to; ++i) s.push_back(p.elements_[i].byte);
    return s;
  };
  const std::size_t n = p.elements_.size();
  if (ones == 0 && runs == 0) {
    p.shape_ = Shape::Exact;
    p.literal_ = literal_between(0, n);
  } else if (ones == 0 && runs == 1 && p.elements_.back().kind == Kind::AnyRun) {
    p.shape_ = Shape::Prefix;
    p.literal_ = literal_between(0, n - 1);
  } else if (ones == 0 && runs == 1 && p.elements_.front().kind == Kind::AnyRun) {
    p.shape_ = Shape::Suffix;
    p.literal_ = literal_between(1, n);
  } else if (ones == 0 && runs == 2 && n >= 2 && p.elements_.front().kind == Kind::AnyRun &&
             p.elements_.back().kind == Kind::AnyRun) {
    p.shape_ = Shape::Infix;
    p.literal_ = literal_between(1, n - 1);
  } else {
    p.shape_ = Shape::General;
  }
  return p;
}

bool LikePattern::matches(std::string_view text) const {
  switch (shape_) {
    case Shape::Exact:
      return text == literal_;
    case Shape::Prefix:
      return text.starts_with(literal_);
    case Shape::Suffix:
      return text.ends_with(literal_);
    case Shape::Infix:
      return text.find(literal_) != std::string_view::npos;
    case Shape::General:
      break;
  }
  return matches_general(text);
}

// Iterative wildcard matching with backtracking to the last `%`: each `%` only ever needs to grow, so
// remembering the most recent one is enough.
bool LikePattern::matches_general(std::string_view text) const {
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t p = 0, t = 0;
  std::size_t run_p = kNone, run_t = 0;
  const std::size_t n = elements_.size();
  while (t < text.size()) {
    if (p < n && elements_[p].kind == Kind::Byte && elements_[p].byte == text[t]) {
      ++p;
      ++t;
    } else if (p < n && elements_[p].kind == Kind::AnyOne) {
      ++p;
      t += utf8_char_length(text, t);
    } else if (p < n && elements_[p].kind == Kind::AnyRun) {
      run_p = p++;
      run_t = t;
    } else if (run_p != kNone) {
      p = run_p + 1;
      run_t += utf8_char_length(text, run_t);
      t = run_t;
    } else {
      return false;
    }
  }
  while (p < n && elements_[p].kind == Kind::AnyRun) ++p;
  return p == n;
}

}  // namespace sluice::cesql::detail
