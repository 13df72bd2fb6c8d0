// Fuzzes the parser of Lustre's `active_requests` text. A file that parses must give requests
// that print and parse back to themselves (with the kernel's data truncation applied).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "hsm/active_requests.h"

using namespace tierflow::hsm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto requests = ParseActiveRequests(text);
  if (!requests.ok()) {
    FUZZ_CHECK(requests.status().code() == tierflow::Code::kInvalidArgument);
    return 0;
  }
  for (ActiveRequest r : *requests) {
    FUZZ_CHECK(r.item.data.size() <= kActiveRequestDataBytes);
    std::string line = FormatActiveRequest(r);
    auto back = ParseActiveRequest(line);
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(*back == r);
  }
  return 0;
}
