#include "trigger/dead_letter_journal.hpp"

#include <algorithm>

#include "core/cloud_event.hpp"

namespace sluice {

DeadLetterJournal& DeadLetterJournal::global() {
  static DeadLetterJournal journal;
  return journal;
}

void DeadLetterJournal::record(DeadLetterRecord record) {
  // The response body is whatever the subscriber sent: keep it printable, so that JSON can carry it.
  for (char& c : record.error_data)
    if (static_cast<unsigned char>(c) < 0x20 ? c != '\n' && c != '\t' : static_cast<unsigned char>(c) > 0x7e)
      c = '?';
  std::lock_guard lock(mu_);
  records_.push_back(std::move(record));
  while (records_.size() > capacity_) records_.pop_front();
}

std::vector<DeadLetterRecord> DeadLetterJournal::recent() const {
  std::lock_guard lock(mu_);
  return {records_.rbegin(), records_.rend()};
}

void DeadLetterJournal::forget(const std::string& broker, const std::string& trigger) {
  std::lock_guard lock(mu_);
  std::erase_if(records_,
                [&](const DeadLetterRecord& r) { return r.broker == broker && r.trigger == trigger; });
}

nlohmann::json DeadLetterJournal::to_json(const DeadLetterRecord& r) {
  nlohmann::json out = {{"time", format_rfc3339(r.unix_millis)},
                        {"broker", r.broker},
                        {"trigger", r.trigger},
                        {"outcome", r.outcome},
                        {"id", r.id},
                        {"type", r.type},
                        {"source", r.source},
                        {"error", r.error},
                        {"knativeerrordest", r.error_dest}};
  if (!r.sink.empty()) out["sink"] = r.sink;
  if (r.error_code != 0) out["knativeerrorcode"] = r.error_code;
  if (!r.error_data.empty()) out["knativeerrordata"] = r.error_data;
  return out;
}

}  // namespace sluice
