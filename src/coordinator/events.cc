// Placeholder until the event hub lands: nothing listens.
#include "coordinator/events.h"

namespace tierflow::coordinator {

class ReportWriter {};
struct EventHub::Subscriber {};

EventHub::EventHub(const ReportingOptions& reporting, Clock* clock)
    : reporting_(reporting), clock_(clock) {}
EventHub::~EventHub() = default;

Result<std::unique_ptr<EventHub>> EventHub::Create(const ReportingOptions& reporting, Clock* clock) {
  return std::unique_ptr<EventHub>(new EventHub(reporting, clock));
}
EventHub::SubscriberId EventHub::Subscribe(EventFilter, std::shared_ptr<EventChannel>) { return 0; }
void EventHub::Unsubscribe(SubscriberId) {}
void EventHub::Emit(v1::Event::Kind, const store::RequestRow&, const std::string&, uint64_t,
                    uint64_t, int32_t) {}
void EventHub::Flush() {}
void EventHub::Close(const Status&) {}

}  // namespace tierflow::coordinator
