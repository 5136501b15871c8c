// libFuzzer target: replay of the cursor journal. The input is the journal file; CursorStore::open()
// replays it. Aborts when open fails, when a cursor is loaded that no whole commit record of the input
// holds, when a journal of whole records followed by nothing whole loads other cursors than those
// records say, or when a commit made after the replay (and the cursors loaded by it) are not there after
// the store is opened again.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "broker/cursor_store.hpp"
#include "core/crc32c.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "fuzz/work_dir.hpp"

namespace {

using sluice::CursorStore;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "cursor_journal_fuzz: %s\n", what.c_str());
  std::abort();
}

// The journal's record format (broker/cursor_store.hpp), written out again so that the target checks the
// store against the format rather than against itself.
constexpr std::size_t kHeader = 8;
constexpr std::size_t kFixed = 9;
constexpr std::size_t kMaxName = 64 << 10;

std::string record(char op, const std::string& name, std::uint64_t offset) {
  std::string out(kHeader + kFixed + name.size(), '\0');
  const auto length = static_cast<std::uint32_t>(kFixed + name.size());
  std::memcpy(out.data(), &length, 4);
  out[8] = op;
  std::memcpy(out.data() + 9, &offset, 8);
  std::memcpy(out.data() + 17, name.data(), name.size());
  const std::uint32_t crc = sluice::crc32c(out.data() + kHeader, std::size_t{length});
  std::memcpy(out.data() + 4, &crc, 4);
  return out;
}

/// The size of the whole record at `pos`, 0 when there is none.
std::size_t whole_at(std::string_view bytes, std::size_t pos) {
  if (bytes.size() - pos < kHeader) return 0;
  std::uint32_t length;
  std::uint32_t crc;
  std::memcpy(&length, bytes.data() + pos, 4);
  std::memcpy(&crc, bytes.data() + pos + 4, 4);
  if (length < kFixed || length > kFixed + kMaxName || bytes.size() - pos - kHeader < length) return 0;
  const char* body = bytes.data() + pos + kHeader;
  if (sluice::crc32c(body, std::size_t{length}) != crc || (body[0] != 'C' && body[0] != 'E')) return 0;
  return kHeader + length;
}

CursorStore& open_store(const std::string& path, std::unique_ptr<CursorStore>& holder) {
  sluice::CursorStoreOptions options;
  options.sync_interval = std::chrono::milliseconds(0);
  options.compact_min_bytes = 256;
  options.compact_ratio = 2;
  auto store = CursorStore::open(path, options);
  if (!store) fail("open failed: " + store.error().to_string());
  holder = std::move(store).value();
  return *holder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    sluice::log::set_level("off");
    return sluice::fuzz::work_dir("cursor-journal-fuzz") + "/journal/cursors.journal";
  }();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::error_code ec;
  std::filesystem::remove_all(sluice::parent_dir(path), ec);
  std::filesystem::create_directories(sluice::parent_dir(path));
  if (!sluice::write_file_atomic(path, input)) fail("cannot write the journal");

  // What the journal says when it is whole records from its start, then nothing whole.
  std::map<std::string, std::uint64_t> expected;
  std::size_t pos = 0;
  for (std::size_t n; (n = whole_at(input, pos)) > 0; pos += n) {
    std::string name(input.data() + pos + kHeader + kFixed, n - kHeader - kFixed);
    std::uint64_t offset;
    std::memcpy(&offset, input.data() + pos + kHeader + 1, 8);
    if (input[pos + kHeader] == 'C')
      expected[name] = offset;
    else
      expected.erase(name);
  }
  bool whole_after = false;
  for (std::size_t at = pos + 1; at < input.size() && !whole_after; ++at)
    whole_after = whole_at(input, at) > 0;

  std::map<std::string, std::uint64_t> loaded;
  {
    std::unique_ptr<CursorStore> holder;
    auto& store = open_store(path, holder);
    loaded = store.all();
    for (const auto& [name, offset] : loaded) {
      if (input.find(record('C', name, offset)) == std::string_view::npos)
        fail("loaded a cursor (" + std::to_string(offset) + ") that no whole record holds");
    }
    if (!whole_after && loaded != expected) fail("the cursors loaded are not those of the whole records");
    if (!store.commit("fuzz-after-replay", 42)) fail("commit after the replay failed");
  }
  std::unique_ptr<CursorStore> holder;
  auto& store = open_store(path, holder);
  auto again = store.all();
  loaded["fuzz-after-replay"] = 42;
  if (again != loaded) fail("reopened store holds other cursors than were loaded and committed");
  return 0;
}
