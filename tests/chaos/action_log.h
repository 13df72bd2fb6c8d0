// The movers' action logs (`tierflow mover --action-log FILE`), read back to find actions that
// ran twice. One line per finished action, written before its result is sent:
//   <wall_us> <mover_id> <request_id> <epoch> <ACTION> <fid> <errno>
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tierflow::chaos {

struct ActionLine {
  int64_t wall_us = 0;
  std::string mover;
  uint64_t request_id = 0;
  uint64_t epoch = 0;
  std::string action;  // ARCHIVE, RESTORE or REMOVE
  std::string fid;
  int error = 0;       // 0 = success
  std::string file;    // the log it was read from
  std::string source;  // file:line, for reports
};

struct ActionLog {
  std::map<uint64_t, std::vector<ActionLine>> successes;  // by request id
  uint64_t lines = 0;
  std::vector<std::string> malformed;  // file:line: text (a torn line is a finding too)
};

// Reads every file in `paths`; missing files are skipped (a mover that never started).
ActionLog ReadActionLogs(const std::vector<std::string>& paths);

}  // namespace tierflow::chaos
