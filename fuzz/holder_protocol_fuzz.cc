// Fuzzes the holder's socket protocol packets: a packet that decodes is exactly what the
// encoder writes for the decoded message (every field is fixed width or length-prefixed).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "watch/holder_protocol.h"

using namespace tierflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto msg = watch::DecodeMessage(bytes);
  if (msg.ok()) {
    FUZZ_CHECK(watch::EncodeMessage(*msg) == bytes);
  } else {
    FUZZ_CHECK(msg.status().code() == Code::kInvalidArgument);
  }

  // The socket address of a path from the bytes: fits sun_path with its NUL, or is refused.
  std::string path(bytes);
  auto addr = watch::HolderSocketAddress(path);
  if (addr.ok()) {
    FUZZ_CHECK(path.size() < sizeof(addr->sun_path));
    FUZZ_CHECK(std::memcmp(addr->sun_path, path.data(), path.size()) == 0);
    FUZZ_CHECK(addr->sun_path[path.size()] == '\0');
  } else {
    FUZZ_CHECK(path.size() >= sizeof(sockaddr_un{}.sun_path));
  }
  return 0;
}
