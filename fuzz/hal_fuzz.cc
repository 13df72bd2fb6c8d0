// Fuzzes the Lustre binary action list (hal/hai) and the kuc header decoder: whatever the bytes,
// decoding must stay inside the buffer, and a list that decodes must survive encode/decode.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "hsm/hal.h"

namespace {

using namespace tierflow::hsm;

void CheckActionList(std::string_view buf) {
  auto hal = DecodeActionList(buf);
  if (!hal.ok()) return;
  FUZZ_CHECK(hal->version == kHalVersion);
  FUZZ_CHECK(hal->fsname.find('\0') == std::string::npos);
  // Only the last item's padding may be missing from the buffer.
  FUZZ_CHECK(ActionListSize(*hal) <= buf.size() + 7);
  FUZZ_CHECK(ValidateActionList(*hal).ok());
  std::string again = EncodeActionList(*hal);
  FUZZ_CHECK(again.size() == ActionListSize(*hal));
  auto back = DecodeActionList(again);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == *hal);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  CheckActionList(buf);

  // A copytool reads a kuc message: header, then a HAL payload of msglen - 8 bytes.
  auto kuc = DecodeKucHeader(buf);
  if (!kuc.ok()) return 0;
  FUZZ_CHECK(kuc->magic == kKucMagic);
  FUZZ_CHECK(kuc->msglen >= kKucHeaderSize && kuc->msglen <= buf.size());
  FUZZ_CHECK(EncodeKucHeader(*kuc) == buf.substr(0, kKucHeaderSize));
  std::string_view payload = buf.substr(kKucHeaderSize, kuc->msglen - kKucHeaderSize);
  CheckActionList(payload);
  auto message = EncodeKucMessage(kuc->msgtype, payload);
  FUZZ_CHECK(message.ok());
  auto header = DecodeKucHeader(*message);
  FUZZ_CHECK(header.ok());
  FUZZ_CHECK(header->msgtype == kuc->msgtype && header->msglen == kuc->msglen);
  FUZZ_CHECK(std::string_view(*message).substr(kKucHeaderSize) == payload);
  return 0;
}
