// Tests of the compact request row encoding: exact round trips and refusal of damaged input.
#include "store/request_codec.h"

#include <gtest/gtest.h>

#include "store/store_test_support.h"

namespace tierflow::store {
namespace {

using test_support::MakeRow;

RequestRow RoundTrip(const RequestRow& in) {
  std::string body;
  EncodeRequestBody(in, &body);
  RequestRow out;
  out.id = in.id;
  out.state = in.state;
  out.action = in.action;
  Status st = DecodeRequestBody(body, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(RequestCodecTest, RoundTripsOrdinaryDefaultAndExtremeRows) {
  EXPECT_EQ(RoundTrip(MakeRow(12345, RequestState::kFailed)), MakeRow(12345, RequestState::kFailed));
  EXPECT_EQ(RoundTrip(RequestRow{}), RequestRow{});

  RequestRow max;
  max.file.fid = {UINT64_MAX, UINT32_MAX, UINT32_MAX};
  max.archive_id = UINT32_MAX;
  max.flags = max.offset = max.epoch = UINT64_MAX;
  max.length = UINT64_MAX - 1;
  max.attempts = UINT32_MAX;
  max.error_code = INT32_MAX;
  max.created_us = INT64_MIN;
  max.changed_us = INT64_MAX;  // the delta from created_us wraps; it must still come back
  max.data = std::string("\0\xff\x80", 3);
  EXPECT_EQ(RoundTrip(max), max);

  RequestRow min = max;
  min.error_code = INT32_MIN;
  min.created_us = INT64_MAX;
  min.changed_us = INT64_MIN;
  min.length = 0;
  EXPECT_EQ(RoundTrip(min), min);
}

TEST(RequestCodecTest, DefaultFieldsTakeOneByteEach) {
  std::string body;
  EncodeRequestBody(RequestRow{}, &body);  // length defaults to UINT64_MAX ("to the end")
  EXPECT_EQ(body.size(), 1u + 19u);        // version byte + 18 fields + "no owner"
}

TEST(RequestCodecTest, RoundTripsTheOwnerAndReadsVersionOneRowsWithoutOne) {
  RequestRow owned = MakeRow(7, RequestState::kQueued);
  owned.has_owner = true;
  owned.owner_uid = 1001;
  owned.owner_gid = UINT32_MAX;
  owned.projid = 42;
  EXPECT_EQ(RoundTrip(owned), owned);

  // A version 1 row is the version 2 body without the owner flag.
  RequestRow plain = MakeRow(8, RequestState::kQueued);
  std::string body;
  EncodeRequestBody(plain, &body);
  ASSERT_EQ(body.back(), '\0');
  body.pop_back();
  body[0] = 1;
  RequestRow out;
  out.has_owner = true;
  out.owner_uid = 5;
  ASSERT_TRUE(DecodeRequestBody(body, &out).ok());
  EXPECT_FALSE(out.has_owner);
  EXPECT_EQ(out.owner_uid, 0u);
  EXPECT_EQ(out.path, plain.path);
}

TEST(RequestCodecTest, RefusesTruncatedTrailingAndUnknownVersions) {
  std::string body;
  EncodeRequestBody(MakeRow(99, RequestState::kAssigned), &body);
  RequestRow out;
  for (size_t n = 0; n < body.size(); ++n) {
    Status st = DecodeRequestBody(std::string_view(body).substr(0, n), &out);
    EXPECT_EQ(st.code(), Code::kCorrupt) << "prefix of " << n << " bytes";
  }
  EXPECT_EQ(DecodeRequestBody(body + "x", &out).code(), Code::kCorrupt);
  std::string v3 = body;
  v3[0] = 3;
  Status st = DecodeRequestBody(v3, &out);
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("version 3"), std::string::npos) << st.message();
  // A string length pointing past the end.
  EXPECT_EQ(DecodeRequestBody(std::string("\x01\xff\xff\xff\x0f", 5), &out).code(), Code::kCorrupt);
}

}  // namespace
}  // namespace tierflow::store
