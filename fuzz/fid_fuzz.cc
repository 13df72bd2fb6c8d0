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
    wire::FileRefToProto(file, ref.path(), &out);
    FUZZ_CHECK(out.fsid() == ref.fsid() && out.path() == ref.path());
    FUZZ_CHECK(wire::FileIdFromProto(out) == file);
    FUZZ_CHECK(hsm::FileIdHash()(file) == hsm::FileIdHash()(wire::FileIdFromProto(out)));
    auto printed = file.ToString();
    FUZZ_CHECK(printed.size() > file.fsid.size());
  }

  auto a = wire::ActionFromProto(static_cast<v1::Action>(action));
  if (a) FUZZ_CHECK(wire::ActionToProto(*a) == static_cast<v1::Action>(action));
  return 0;
}
