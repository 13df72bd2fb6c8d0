// Fuzzes the per-file HSM record (the trusted.tierflow.hsm xattr). The bytes are decoded as
// they are, and again with their last 8 bytes replaced by the right XXH3, so that mutations
// reach the field decoder behind the checksum. A record that decodes re-encodes to the same
// bytes.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "mover/fs/hsm_record.h"

using namespace tierflow;

namespace {

void Check(std::string_view bytes) {
  auto rec = mover::DecodeRecord(bytes);
  if (!rec.ok()) {
    FUZZ_CHECK(rec.status().code() == Code::kCorrupt ||
               rec.status().code() == Code::kFailedPrecondition);
    return;
  }
  FUZZ_CHECK(mover::EncodeRecord(*rec) == bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Check(bytes);
  if (size < 8) return 0;
  std::string fixed(bytes.substr(0, size - 8));
  uint64_t sum = XXH3_64bits(fixed.data(), fixed.size());
  for (int i = 0; i < 8; ++i) fixed.push_back(static_cast<char>(sum >> (8 * i)));
  Check(fixed);
  return 0;
}
