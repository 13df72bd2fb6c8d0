// Fuzzes FID text parsing and the FileRef/Action wire conversions: a FID that parses prints
// and parses back to itself in both forms; a FileRef from any bytes converts to a FileId and
// back without loss.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "hsm/fid.h"
#include "wire/convert.h"

using namespace tierflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  int action = in.ConsumeIntegral<int>();
  std::string text = in.ConsumeRandomLengthString(96);
  std::string ref_bytes = in.ConsumeRemainingBytesAsString();

  auto fid = hsm::Fid::Parse(text);
  if (fid.ok()) {
    auto bracketed = hsm::Fid::Parse(fid->ToString());
    FUZZ_CHECK(bracketed.ok() && *bracketed == *fid);
    auto bare = hsm::Fid::Parse(fid->ToBareString());
    FUZZ_CHECK(bare.ok() && *bare == *fid);
    FUZZ_CHECK(hsm::FidHash()(*fid) == hsm::FidHash()(*bracketed));
  } else {
    FUZZ_CHECK(fid.status().code() == Code::kInvalidArgument);
  }

  v1::FileRef ref;
  if (ref.ParseFromString(ref_bytes)) {
    hsm::FileId file = wire::FileIdFromProto(ref);
    v1::FileRef out;
    const std::string& path = wire::PathFromProto(ref);
    wire::FileRefToProto(file, path, &out);
    FUZZ_CHECK(out.fsid() == ref.fsid() && wire::PathFromProto(out) == path);
    // Whatever the bytes of the path, the message parses back (a string field must be UTF-8).
    v1::FileRef again;
    FUZZ_CHECK(again.ParseFromString(out.SerializeAsString()) && wire::PathFromProto(again) == path);
    FUZZ_CHECK(wire::FileIdFromProto(out) == file);
    FUZZ_CHECK(hsm::FileIdHash()(file) == hsm::FileIdHash()(wire::FileIdFromProto(out)));
    auto printed = file.ToString();
    FUZZ_CHECK(printed.size() > file.fsid.size());
  }

  const std::string shown = wire::DisplayText(ref_bytes);
  FUZZ_CHECK(wire::IsUtf8(shown));
  FUZZ_CHECK(wire::IsUtf8(ref_bytes) == (shown == ref_bytes));

  auto a = wire::ActionFromProto(static_cast<v1::Action>(action));
  if (a) FUZZ_CHECK(wire::ActionToProto(*a) == static_cast<v1::Action>(action));
  return 0;
}
