#pragma once
// The dashboard's files (server/ui/), compiled into the binary by cmake/embed_files.cmake.

#include <string_view>

namespace sluice::ui {

struct Asset {
  std::string_view name;  // the path under /ui/, e.g. "app.js"
  std::string_view content_type;
  std::string_view content;
};

/// The file called `name`, or null.
const Asset* find_asset(std::string_view name);

}  // namespace sluice::ui
