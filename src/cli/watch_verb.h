// `tierflow watch`: the coordinator's request events as they happen, one line each, in the
// words of the report files, or one JSON object per line for scripts.
#pragma once

#include <cstdint>
#include <string>

#include "tierflow.pb.h"

namespace tierflow::cli {

// "2025-06-01T10:00:00.123456Z 17 assign [0x200000401:0x1:0x0] host1": UTC time, request id,
// then the report file's line (coordinator/report_writer.h).
std::string FormatEventText(const v1::Event& event);

// {"time":"...","time_us":N,"kind":"assign","id":17,"action":"archive","fid":"[...]",
//  "fsid":"...","path":"...","mover":"...","host":"...","bytes_done":0,"bytes_total":0,
//  "status":0,"hint":"..."} on one line.
std::string FormatEventJson(const v1::Event& event);

// {"kind":"dropped","dropped":N}: events this watcher lost by reading too slowly.
std::string FormatDroppedJson(uint64_t dropped);

}  // namespace tierflow::cli
