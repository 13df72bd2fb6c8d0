// `tierflow watch`: follows the coordinator's Events stream until interrupted or until the
// coordinator goes away (with --follow, through its restarts), printing each event as it comes.
#include "cli/watch_verb.h"

#include <fmt/format.h>

#include <cstdio>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <thread>

#include "cli/cli_app.h"
#include "cli/coordinator_client.h"
#include "cli/json_writer.h"
#include "cli/output.h"
#include "coordinator/report_writer.h"
#include "hsm/fid.h"
#include "wire/convert.h"

namespace tierflow::cli {

namespace {

std::string KindWord(v1::Event::Kind kind) {
  switch (kind) {
    case v1::Event::NEW:
      return "new";
    case v1::Event::ASSIGN:
      return "assign";
    case v1::Event::SENT:
      return "sent";
    case v1::Event::PROGRESS:
      return "progress";
    case v1::Event::DONE:
      return "done";
    case v1::Event::CANCEL:
      return "cancel";
    default:
      return "unknown";
  }
}

// "2025-06-01T10:00:00.123456Z".
std::string UtcTime(int64_t micros) {
  const time_t secs = static_cast<time_t>(micros / 1'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, micros % 1'000'000);
}

struct WatchArgs {
  std::string coordinator = DefaultCoordinator();
  std::string hint;
  std::vector<std::string> actions;
  std::string mover;
  bool json = false;
  bool follow = false;
};

const std::map<std::string, v1::Action> kActions = {
    {"archive", v1::ARCHIVE}, {"restore", v1::RESTORE}, {"remove", v1::REMOVE},
    {"cancel", v1::CANCEL}};

void PrintBatch(const v1::EventBatch& batch, bool json) {
  if (batch.dropped() > 0) {
    if (json) {
      std::printf("%s\n", FormatDroppedJson(batch.dropped()).c_str());
    } else {
      PrintError(fmt::format("{} events were dropped: this watcher read too slowly",
                             batch.dropped()));
    }
  }
  for (const v1::Event& e : batch.events()) {
    std::printf("%s\n", (json ? FormatEventJson(e) : FormatEventText(e)).c_str());
  }
  std::fflush(stdout);  // a pipe or file reader sees each event as it comes
}

int RunWatch(const WatchArgs& a) {
  v1::EventsRequest req;
  req.set_hint(a.hint);
  req.set_mover(a.mover);
  for (const std::string& name : a.actions) req.add_actions(kActions.at(name));
  CoordinatorClient client(a.coordinator);
  // With --follow, an unreachable coordinator (stopped, restarting) is waited for: 0.25 s
  // after a stream that was open, doubling to 5 s while it stays away.
  using std::chrono::milliseconds;
  milliseconds delay(250);
  bool said_waiting = false;
  for (;;) {
    bool opened = false;
    Status st = client.Events(
        req,
        [&] {
          opened = true;
          std::fprintf(stderr, "tierflow: watching the events of the coordinator at %s\n",
                       a.coordinator.c_str());
        },
        [&](const v1::EventBatch& batch) { PrintBatch(batch, a.json); });
    if (!a.follow || st.code() != Code::kUnavailable) {
      PrintError(st);
      return ExitCodeFor(st);
    }
    delay = opened ? milliseconds(250) : std::min(delay * 2, milliseconds(5000));
    if (opened) {
      PrintError(st.message() + "; reconnecting (events until then are not seen)");
      said_waiting = false;
    } else if (!said_waiting) {
      PrintError(st.message() + "; waiting for it");
      said_waiting = true;
    }
    std::this_thread::sleep_for(delay);  // waiting for the coordinator to come back
  }
}

}  // namespace

std::string FormatEventText(const v1::Event& e) {
  return fmt::format("{} {} {}", UtcTime(e.time_us()), e.id(), coordinator::ReportLine(e));
}

std::string FormatEventJson(const v1::Event& e) {
  const v1::FileRef& f = e.file();
  JsonWriter w;
  w.BeginObject();
  w.Key("time").String(UtcTime(e.time_us())).Key("time_us").Int(e.time_us());
  w.Key("kind").String(KindWord(e.kind())).Key("id").Uint(e.id());
  w.Key("action").String(ActionWord(e.action()));
  w.Key("fid").String(hsm::Fid{f.seq(), f.oid(), f.ver()}.ToString());
  w.Key("fsid").String(f.fsid()).Key("path").String(wire::PathFromProto(f));
  w.Key("mover").String(e.mover()).Key("host").String(e.host());
  w.Key("bytes_done").Uint(e.bytes_done()).Key("bytes_total").Uint(e.bytes_total());
  w.Key("status").Int(e.status()).Key("hint").String(e.hint());
  w.EndObject();
  return w.str();
}

std::string FormatDroppedJson(uint64_t dropped) {
  JsonWriter w;
  w.BeginObject().Key("kind").String("dropped").Key("dropped").Uint(dropped).EndObject();
  return w.str();
}

void AddWatchVerb(CLI::App& app, std::vector<Command>* commands) {
  auto a = std::make_shared<WatchArgs>();
  CLI::App* w = app.add_subcommand(
      "watch", "print request events (new, assign, sent, progress, done, cancel) as they happen");
  w->add_option("--coordinator", a->coordinator,
                "coordinator HOST:PORT (default $TIERFLOW_COORDINATOR or localhost:7420)");
  w->add_option("--hint", a->hint,
                "only requests whose reporting hint tag has this value (the report file's name)");
  w->add_option("--action", a->actions, "only these actions (repeatable or comma-separated)")
      ->check(CLI::IsMember({"archive", "restore", "remove", "cancel"}))
      ->delimiter(',');
  w->add_option("--mover", a->mover, "only events of this mover (new and cancel have none)");
  w->add_flag("--json", a->json, "one JSON object per event and line");
  w->add_flag("--follow", a->follow,
              "when the coordinator goes away, wait for it and watch again (for dashboards)");
  w->footer(
      "Runs until interrupted, or until the coordinator goes away (exit 3; with --follow it\n"
      "waits for the coordinator to come back). Events are not kept: a watcher sees what\n"
      "happens while it is connected.");
  commands->push_back({w, [a] { return RunWatch(*a); }});
}

}  // namespace tierflow::cli
