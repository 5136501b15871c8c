#pragma once
// A sink `ref: {kind: Broker, name}` reached without HTTP: the dispatcher's request (binary content mode)
// is decoded back into its CloudEvent and published through the broker's ingress path, and the answer
// is the status the ingress would give (202 once the event is durable; 400, 404, 413, 429, 503 as the
// publish reports), so retries and dead letters behave as for an HTTP sink.

#include <functional>
#include <string>
#include <vector>

#include "core/cloud_event.hpp"
#include "core/result.hpp"
#include "trigger/dispatcher.hpp"

namespace sluice {

/// Publishes events to a broker and calls `done` once they are durable, from any thread.
using BrokerPublish = std::function<void(const std::string& broker, std::vector<CloudEvent> events,
                                         std::function<void(Result<std::uint64_t>)> done)>;

/// A SendFunction that publishes each request's event to `broker`.
SendFunction broker_sink(std::string broker, BrokerPublish publish);

}  // namespace sluice
