// Lustre's `mdt.*.hsm.active_requests` text: one line per request the kernel coordinator has
// handed to a copytool. tierflow formats it (to show its own queue the way Lustre admins know)
// and parses it (to take over requests from a kernel coordinator). Pure functions; any thread.
//
// Line format (numbers printed like the kernel's %#llx, so zero is "0x0"):
//   fid=[SEQ:OID:VER] dfid=[SEQ:OID:VER] compound/cookie=0x0/0xCOOKIE action=ARCHIVE archive#=1
//   flags=0x0 extent=0xOFFSET-0xLENGTH gid=0x0 data=[HEX] canceled=0 uuid=AGENT done=BYTES
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "hsm/hal.h"

namespace tierflow::hsm {

// The kernel prints at most this many leading bytes of the request data.
inline constexpr size_t kActiveRequestDataBytes = 5;

struct ActiveRequest {
  // action (copytool value), fid, dfid, extent (offset and length, not end), cookie, gid.
  // data holds at most kActiveRequestDataBytes bytes: the text never carries more.
  ActionItem item;
  uint64_t compound_id = 0;
  uint32_t archive_id = 0;
  uint64_t flags = 0;  // kHalFlag*
  bool canceled = false;
  std::string agent_uuid;   // the copytool's uuid; empty when the kernel printed none
  uint64_t done_bytes = 0;  // "done=": bytes moved so far

  bool operator==(const ActiveRequest&) const = default;
};

// One line, without the trailing newline. Data beyond kActiveRequestDataBytes is dropped and
// the rest printed as uppercase hex, as the kernel does. agent_uuid must not contain spaces.
std::string FormatActiveRequest(const ActiveRequest& r);

// Parses one line. fid, dfid, compound/cookie, action, archive#, flags and extent are
// required; gid, data, canceled, uuid and done default to zero/empty when absent (older
// kernels print fewer fields); unknown keys are ignored; a repeated key is an error.
// Errors are kInvalidArgument and name the offending field.
Result<ActiveRequest> ParseActiveRequest(std::string_view line);

// Parses a whole file or `lctl get_param` output: blank lines are skipped, and so is an
// `mdt.NAME-MDT0000.hsm.active_requests=` header (a request printed on the header's own line,
// as lctl does for a single line, is parsed). Errors name the 1-based line number.
Result<std::vector<ActiveRequest>> ParseActiveRequests(std::string_view text);

}  // namespace tierflow::hsm
