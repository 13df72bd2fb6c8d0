// What the client verbs print: `state` lines (text like lfs hsm_state, or one JSON object per
// line), the `status` report, sizes, and the --wait progress bar. Pure formatting, except
// ProgressBar which writes to a FILE*.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "mover/fs/local_fs.h"
#include "tierflow.pb.h"

namespace tierflow::cli {

// "PATH: (0x0000000d) released exists archived, archive_id:1"; an unmanaged file (or one
// removed from its archive) prints "PATH: (0x00000000)". `states` are the bits to show (see
// EffectiveStates); the archive id shows while exists or archived is set.
std::string FormatStateLine(const std::string& path, uint32_t states, uint32_t archive_id);

// "PATH: last error: MESSAGE (errno N)", or "" when the record has no error.
std::string FormatLastErrorLine(const std::string& path, const mover::FileState& state);

// {"path":..., "fsid":..., "fid":"[..]", "states":[...], "state_bits":13, "archive_id":1,
//  "last_error":null|"..."} on one line.
std::string FormatStateJson(const std::string& path, const mover::FileState& state,
                            uint32_t states);

// How `status` shows its request listing: the overview (running, then queued requests) or,
// when the listing was asked for with filters or --after, one table in id order ending with
// the next-page hint ("more: --after N").
struct StatusListing {
  bool id_order = false;
  uint32_t limit = 0;  // the limit asked for: a full overview says how to see the rest
};

// The `status` report for people. `coordinator` is the address it came from.
std::string FormatStatus(const v1::StatusReply& status, const std::string& coordinator,
                         const StatusListing& listing = {});

// The report as one JSON document (protobuf's JSON mapping, field names as in the proto). A
// request's file whose path is not UTF-8 has it exact in raw_path (base64) and, readable, with
// each bad byte as \xNN, in path.
std::string FormatStatusJson(const v1::StatusReply& status);

// Any reply as one JSON line, in the same mapping as FormatStatusJson.
std::string ProtoJson(const google::protobuf::Message& message);

// A mover's running actions against its capacities, per kind: "A 3/8 R 1/4 D 0/*" (archive,
// restore, remove; * = unlimited), then " T 4/10" when a total bound is set.
std::string FormatRunning(const v1::MoverInfo& mover);

// What `tierflow capacity` prints once the coordinator has applied a change.
std::string FormatCapacityChange(const v1::MoverInfo& mover);

// Warnings to show: the coordinator's own, plus one per archive id that has queued requests
// and no connected mover serving it (unless the coordinator already names that archive id).
std::vector<std::string> StatusWarnings(const v1::StatusReply& status);

// "0 B", "1.5 KiB", "3.2 GiB".
std::string HumanBytes(uint64_t bytes);

// "archive", "restore", "remove", "cancel" for a wire action.
std::string ActionWord(v1::Action action);
// "queued", "assigned", "succeeded", "failed", "canceled" for a wire state.
std::string StateWord(v1::RequestState state);

// A one-line progress bar redrawn in place on a terminal. Not thread-safe.
class ProgressBar {
 public:
  ProgressBar(FILE* out, std::string verb, uint64_t files_total, uint64_t bytes_total);
  // `bytes_done` were moved; `bytes_settled` (>= bytes_done) also counts the sizes of files
  // that ended without moving them (failed, canceled) and fills the bar.
  // Redraws at most every 100 ms unless `force`.
  void Update(uint64_t files_done, uint64_t bytes_done, uint64_t bytes_settled, bool force = false);
  // Clears the line so that other output can be printed.
  void Clear();
  // Final redraw and newline.
  void Finish(uint64_t files_done, uint64_t bytes_done, uint64_t bytes_settled);

  static std::string Render(const std::string& verb, uint64_t files_done, uint64_t files_total,
                            uint64_t bytes_done, uint64_t bytes_settled, uint64_t bytes_total,
                            int width);

 private:
  FILE* out_;
  std::string verb_;
  uint64_t files_total_;
  uint64_t bytes_total_;
  int64_t last_draw_ms_ = 0;
  size_t last_len_ = 0;
};

}  // namespace tierflow::cli
