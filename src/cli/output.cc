// Client output formatting: state lines, status report, sizes, progress bar.
#include "cli/output.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <set>

#include "cli/json_writer.h"
#include "hsm/hsm_state.h"
#include "wire/convert.h"

namespace tierflow::cli {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Capacity(int32_t n) { return n < 0 ? "*" : std::to_string(n); }

std::string LockName(uint32_t lock) {
  switch (lock) {
    case 0:
      return "unlocked";
    case 1:
      return "locked: accepting requests, dispatching none ('tierflow unlock' resumes)";
    case 2:
      return "locked and quitting: finishing running actions, then exiting";
    default:
      return "lock state " + std::to_string(lock);
  }
}

void AppendCounters(const v1::StatusReply& s, std::string* out) {
  *out += fmt::format("\n{:<10} {:>9} {:>9} {:>10} {:>9} {:>9}\n", "requests", "queued", "assigned",
                      "succeeded", "failed", "canceled");
  for (const v1::ActionCounters& c : s.counters()) {
    *out += fmt::format("  {:<8} {:>9} {:>9} {:>10} {:>9} {:>9}\n", ActionWord(c.action()),
                        c.queued(), c.assigned(), c.succeeded(), c.failed(), c.canceled());
  }
}

std::string Seconds(int64_t us) { return fmt::format("{} s", us / 1'000'000); }

// "    slots: proj=a 2 running, 14 taken, held 35 s, idle 1 s; ..." or "" without slots.
std::string SlotsLine(const v1::MoverInfo& m) {
  if (m.slots().empty()) return "";
  std::string line = "    slots:";
  for (int i = 0; i < m.slots_size(); ++i) {
    const v1::BatchSlot& b = m.slots(i);
    line += fmt::format("{} {} {} running, {} taken, held {}, idle {}", i == 0 ? "" : ";",
                        b.value(), b.running(), b.taken(), Seconds(b.held_us()),
                        Seconds(b.idle_us()));
  }
  return line + "\n";
}

void AppendMovers(const v1::StatusReply& s, const std::string& coordinator, std::string* out) {
  if (s.movers().empty()) {
    *out += fmt::format(
        "\nmovers: none; start one with 'tierflow mover --coordinator {} "
        "--posix-root DIR'\n",
        coordinator);
    return;
  }
  constexpr std::string_view kRow = "  {:<16} {:<16} {:<11} {:<24} {:>9} {:>8} {:>7} {:>7}  {}\n";
  *out += "\nmovers\n" + fmt::format(kRow, "ID", "HOST", "ARCHIVE IDS", "RUNNING/CAPACITY",
                                      "MAX BYTES", "DONE", "FAILED", "BATCHES", "STATE");
  for (const v1::MoverInfo& m : s.movers()) {
    const v1::Capacities& c = m.capacities();
    std::string max_bytes = c.max_bytes() == 0 ? "-" : HumanBytes(c.max_bytes());
    std::string state = !m.connected()        ? "disconnected"
                        : m.silent_us() > 0   ? fmt::format("silent {} s", m.silent_us() / 1'000'000)
                        : m.draining()        ? "drained"
                                              : "connected";
    if (!m.connected() && m.draining()) state += ", drained";
    if (m.capacity_override()) state += ", capacity set by 'tierflow capacity'";
    *out += fmt::format(kRow, m.id(), m.host(), fmt::format("{}", fmt::join(m.archive_ids(), ",")),
                        FormatRunning(m), max_bytes, m.done(), m.failed(), m.batches(), state);
    *out += SlotsLine(m);
  }
}

void AppendRequests(const v1::StatusReply& s, std::string* out) {
  std::string queued, running;
  for (const v1::RequestInfo& r : s.requests()) {
    if (r.state() == v1::QUEUED) {
      queued += fmt::format("  {:<8} {:<8} {:>7}  {}  ({})\n", r.id(), ActionWord(r.action()),
                            r.archive_id(), wire::PathFromProto(r.file()),
                            r.waiting_reason().empty() ? "waiting" : r.waiting_reason());
    } else if (r.state() == v1::ASSIGNED) {
      std::string bytes = r.bytes_total() == 0 ? ""
                                               : fmt::format(" {}/{}", HumanBytes(r.bytes_done()),
                                                             HumanBytes(r.bytes_total()));
      running += fmt::format("  {:<8} {:<8} {:>7}  {}  on {}{}\n", r.id(), ActionWord(r.action()),
                             r.archive_id(), wire::PathFromProto(r.file()), r.mover(), bytes);
    }
  }
  if (!running.empty()) *out += "\nrunning\n  ID       ACTION   ARCHIVE  PATH\n" + running;
  if (!queued.empty())
    *out += "\nqueued requests\n  ID       ACTION   ARCHIVE  PATH  (WAITING FOR)\n" + queued;
}

uint64_t KnownRequests(const v1::StatusReply& s) {
  uint64_t n = 0;
  for (const v1::ActionCounters& c : s.counters()) {
    n += c.queued() + c.assigned() + c.succeeded() + c.failed() + c.canceled();
  }
  return n;
}

// The overview lists at most the limit; says how to see the rest when it was cut.
void AppendOverviewHint(const v1::StatusReply& s, const StatusListing& listing, std::string* out) {
  const uint64_t listed = static_cast<uint64_t>(s.requests_size());
  const uint64_t known = KnownRequests(s);
  if (listing.limit == 0 || listed < listing.limit || known <= listed) return;
  *out += fmt::format(
      "\nlisted {} of {} requests; see them all in id order with --after 0 (pages of --limit), "
      "or filter with --action, --state, --mover, --tag or --user\n",
      listed, known);
}

// What the id-ordered table says after the path: why a queued request waits, how far a running
// one is, why a failed one failed.
std::string Detail(const v1::RequestInfo& r) {
  switch (r.state()) {
    case v1::QUEUED:
      return r.waiting_reason();
    case v1::ASSIGNED:
      if (r.bytes_total() == 0) return "";
      return fmt::format("{}/{}", HumanBytes(r.bytes_done()), HumanBytes(r.bytes_total()));
    case v1::FAILED:
      return r.error().empty() ? fmt::format("errno {}", r.error_code()) : r.error();
    default:
      return "";
  }
}

void AppendIdOrder(const v1::StatusReply& s, std::string* out) {
  if (s.requests().empty()) {
    *out += "\nrequests: none match\n";
    return;
  }
  constexpr std::string_view kRow = "  {:<8} {:<8} {:<9} {:>7}  {:<16} {:<12} {}\n";
  *out += "\nrequests\n" + fmt::format(kRow, "ID", "ACTION", "STATE", "ARCHIVE", "MOVER", "USER",
                                        "PATH  [DATA]  (DETAIL)");
  for (const v1::RequestInfo& r : s.requests()) {
    std::string path = wire::PathFromProto(r.file());
    if (!r.data().empty()) path += "  [" + r.data() + "]";
    std::string detail = Detail(r);
    if (!detail.empty()) path += "  (" + detail + ")";
    *out += fmt::format(kRow, r.id(), ActionWord(r.action()), StateWord(r.state()), r.archive_id(),
                        r.mover().empty() ? "-" : r.mover(), r.user().empty() ? "-" : r.user(),
                        path);
  }
  if (s.next_after_id() != 0) *out += fmt::format("more: --after {}\n", s.next_after_id());
}

}  // namespace

std::string ActionWord(v1::Action action) {
  switch (action) {
    case v1::ARCHIVE:
      return "archive";
    case v1::RESTORE:
      return "restore";
    case v1::REMOVE:
      return "remove";
    case v1::CANCEL:
      return "cancel";
    default:
      return "unknown";
  }
}

std::string StateWord(v1::RequestState state) {
  switch (state) {
    case v1::QUEUED:
      return "queued";
    case v1::ASSIGNED:
      return "assigned";
    case v1::SUCCEEDED:
      return "succeeded";
    case v1::FAILED:
      return "failed";
    case v1::CANCELED:
      return "canceled";
    default:
      return "unknown";
  }
}

std::string FormatRunning(const v1::MoverInfo& m) {
  const v1::Capacities& c = m.capacities();
  std::string text = fmt::format("A {}/{} R {}/{} D {}/{}", m.running_archive(),
                                 Capacity(c.max_archive()), m.running_restore(),
                                 Capacity(c.max_restore()), m.running_remove(),
                                 Capacity(c.max_remove()));
  if (c.max_total() > 0) text += fmt::format(" T {}/{}", m.running(), c.max_total());
  return text;
}

std::string FormatCapacityChange(const v1::MoverInfo& m) {
  const v1::Capacities& c = m.capacities();
  auto n = [](int32_t v) { return v < 0 ? std::string("unlimited") : std::to_string(v); };
  std::string text = fmt::format("mover {} capacities: archive {}, restore {}, remove {}", m.id(),
                                 n(c.max_archive()), n(c.max_restore()), n(c.max_remove()));
  text += c.max_total() > 0 ? fmt::format(", total {}", c.max_total()) : ", no total bound";
  text += m.capacity_override()
              ? fmt::format(" (set here; they stay until 'tierflow capacity {} --reset')", m.id())
              : " (the mover's own)";
  text += fmt::format("\nrunning now: {}", FormatRunning(m));
  bool over = false;
  for (auto [running, cap] : {std::pair<uint64_t, int32_t>{m.running_archive(), c.max_archive()},
                              {m.running_restore(), c.max_restore()},
                              {m.running_remove(), c.max_remove()}}) {
    over |= cap >= 0 && running > static_cast<uint64_t>(cap);
  }
  if (c.max_total() > 0 && m.running() > c.max_total()) over = true;
  if (over) text += "; it keeps what it holds and is given nothing new until under its bounds";
  if (!m.connected()) text += "\nthe mover is not connected; the change applies when it is";
  return text + "\n";
}

std::string FormatStateLine(const std::string& path, uint32_t states, uint32_t archive_id) {
  std::string line = fmt::format("{}: (0x{:08x})", path, states);
  for (const std::string& name : hsm::StateNames(states)) line += " " + name;
  // Like lfs, the archive id only while the file is in an archive (not after a remove).
  if (archive_id != 0 && (states & (hsm::kStateExists | hsm::kStateArchived)))
    line += fmt::format(", archive_id:{}", archive_id);
  return line;
}

std::string FormatLastErrorLine(const std::string& path, const mover::FileState& state) {
  const mover::HsmRecord& r = state.record;
  if (!state.has_record || (r.last_error_code == 0 && r.last_error.empty())) return "";
  std::string line = path + ": last error: " + (r.last_error.empty() ? "unknown" : r.last_error);
  if (r.last_error_code != 0) line += fmt::format(" (errno {})", r.last_error_code);
  return line;
}

std::string FormatStateJson(const std::string& path, const mover::FileState& state,
                            uint32_t states) {
  const mover::HsmRecord& r = state.record;
  JsonWriter w;
  w.BeginObject();
  w.Key("path").String(path);
  w.Key("fsid").String(state.id.fsid);
  w.Key("fid").String(state.id.fid.ToString());
  w.Key("states").BeginArray();
  for (const std::string& name : hsm::StateNames(states)) w.String(name);
  w.EndArray();
  w.Key("state_bits").Uint(states);
  w.Key("archive_id").Uint(state.has_record ? r.archive_id : 0);
  w.Key("last_error");
  if (state.has_record && !r.last_error.empty())
    w.String(r.last_error);
  else
    w.Null();
  w.Key("last_error_code").Int(state.has_record ? r.last_error_code : 0);
  w.EndObject();
  return w.str();
}

std::vector<std::string> StatusWarnings(const v1::StatusReply& s) {
  std::vector<std::string> out(s.warnings().begin(), s.warnings().end());
  std::set<uint32_t> served;
  for (const v1::MoverInfo& m : s.movers()) {
    if (m.connected()) served.insert(m.archive_ids().begin(), m.archive_ids().end());
  }
  std::set<uint32_t> missing;
  for (const v1::RequestInfo& r : s.requests()) {
    if (r.state() == v1::QUEUED && r.archive_id() != 0 && !served.count(r.archive_id()))
      missing.insert(r.archive_id());
  }
  for (uint32_t a : missing) {
    const std::string name = fmt::format("archive id {} ", a);
    bool named = false;
    for (const std::string& w : s.warnings()) named |= w.find(name) != std::string::npos;
    if (!named) {
      out.push_back(
          fmt::format("archive id {} is not served by any connected mover; start a "
                      "mover with --archive-id {}",
                      a, a));
    }
  }
  return out;
}

std::string FormatStatus(const v1::StatusReply& s, const std::string& coordinator,
                         const StatusListing& listing) {
  std::string out = fmt::format("coordinator {}: {}\n", coordinator, LockName(s.lock()));
  AppendCounters(s, &out);
  AppendMovers(s, coordinator, &out);
  std::vector<std::string> warnings = StatusWarnings(s);
  if (!warnings.empty()) {
    out += "\nwarnings\n";
    for (const std::string& w : warnings) out += "  " + w + "\n";
  }
  if (listing.id_order) {
    AppendIdOrder(s, &out);
  } else {
    AppendRequests(s, &out);
    AppendOverviewHint(s, listing, &out);
  }
  return out;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, opts);
  return json;
}

std::string FormatStatusJson(const v1::StatusReply& s) {
  v1::StatusReply copy = s;
  copy.clear_warnings();
  for (const std::string& w : StatusWarnings(s)) copy.add_warnings(w);
  // A path that is not UTF-8 travels as bytes (raw_path, base64 in JSON): path shows it as
  // text too, its bad bytes as \xNN, so a reader sees the name and a script has it exact.
  for (v1::RequestInfo& r : *copy.mutable_requests()) {
    if (!r.file().raw_path().empty()) {
      r.mutable_file()->set_path(wire::DisplayText(r.file().raw_path()));
    }
  }
  return ProtoJson(copy);
}

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

ProgressBar::ProgressBar(FILE* out, std::string verb, uint64_t files_total, uint64_t bytes_total)
    : out_(out), verb_(std::move(verb)), files_total_(files_total), bytes_total_(bytes_total) {}

std::string ProgressBar::Render(const std::string& verb, uint64_t files_done, uint64_t files_total,
                                uint64_t bytes_done, uint64_t bytes_settled, uint64_t bytes_total,
                                int width) {
  double frac = bytes_total > 0   ? static_cast<double>(bytes_settled) / bytes_total
                : files_total > 0 ? static_cast<double>(files_done) / files_total
                                  : 1.0;
  frac = std::min(1.0, std::max(0.0, frac));
  int fill = static_cast<int>(frac * width);
  return fmt::format("{} [{}{}] {}/{} files, {} / {}", verb, std::string(fill, '#'),
                     std::string(width - fill, '.'), files_done, files_total,
                     HumanBytes(bytes_done), HumanBytes(bytes_total));
}

void ProgressBar::Update(uint64_t files_done, uint64_t bytes_done, uint64_t bytes_settled,
                         bool force) {
  const int64_t now = NowMs();
  if (!force && now - last_draw_ms_ < 100) return;
  last_draw_ms_ = now;
  std::string line =
      Render(verb_, files_done, files_total_, bytes_done, bytes_settled, bytes_total_, 30);
  std::string pad = line.size() < last_len_ ? std::string(last_len_ - line.size(), ' ') : "";
  std::fprintf(out_, "\r%s%s", line.c_str(), pad.c_str());
  std::fflush(out_);
  last_len_ = line.size();
}

void ProgressBar::Clear() {
  if (last_len_ == 0) return;
  std::fprintf(out_, "\r%s\r", std::string(last_len_, ' ').c_str());
  std::fflush(out_);
  last_len_ = 0;
  last_draw_ms_ = 0;
}

void ProgressBar::Finish(uint64_t files_done, uint64_t bytes_done, uint64_t bytes_settled) {
  Update(files_done, bytes_done, bytes_settled, true);
  std::fprintf(out_, "\n");
  std::fflush(out_);
  last_len_ = 0;
}

}  // namespace tierflow::cli
