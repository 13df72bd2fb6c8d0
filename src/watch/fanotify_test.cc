// Tests for the pre-content wrappers: the event parser on hand-built buffers, and the real
// kernel interface on a loop-mounted ext4 image (filesystem mark, answers, ignore marks).
#include "watch/fanotify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "watch/watch_test_support.h"

namespace tierflow::watch {
namespace {

using namespace testing;  // NOLINT: test helpers

// One event as the kernel lays it out: metadata, then info records.
std::string Event(int fd, uint64_t mask, int pid, const std::string& info = "") {
  fanotify_event_metadata m{};
  m.event_len = static_cast<uint32_t>(sizeof(m) + info.size());
  m.vers = FANOTIFY_METADATA_VERSION;
  m.metadata_len = sizeof(m);
  m.mask = mask;
  m.fd = fd;
  m.pid = pid;
  std::string s(reinterpret_cast<const char*>(&m), sizeof(m));
  return s + info;
}

std::string Range(uint64_t offset, uint64_t count) {
  std::string s(24, '\0');
  s[0] = static_cast<char>(kFanEventInfoTypeRange);
  uint16_t len = 24;
  std::memcpy(s.data() + 2, &len, 2);
  std::memcpy(s.data() + 8, &offset, 8);
  std::memcpy(s.data() + 16, &count, 8);
  return s;
}

std::string Info(uint8_t type, uint16_t len) {
  std::string s(len, '\x7f');
  s[0] = static_cast<char>(type);
  s[1] = 0;
  std::memcpy(s.data() + 2, &len, 2);
  return s;
}

int DevNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }
bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(ParsePermissionEventsTest, ReadsMetadataAndTheRange) {
  int fd = DevNull();
  auto events = ParsePermissionEvents(Event(fd, kFanPreAccess, 42, Range(4096, 8192)));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  const PermissionEvent& e = (*events)[0];
  EXPECT_EQ(e.fd.get(), fd);
  EXPECT_EQ(e.mask, kFanPreAccess);
  EXPECT_EQ(e.pid, 42);
  EXPECT_TRUE(e.has_range);
  EXPECT_EQ(e.offset, 4096u);
  EXPECT_EQ(e.count, 8192u);
  events = Result<std::vector<PermissionEvent>>(Status(Code::kInternal, "drop"));
  EXPECT_FALSE(IsOpen(fd)) << "the parsed event owns its descriptor";
}

TEST(ParsePermissionEventsTest, SkipsUnknownRecordsAndReadsSeveralEvents) {
  int a = DevNull(), b = DevNull();
  std::string buf = Event(a, kFanPreAccess, 1, Info(99, 12) + Range(0, 0)) +
                    Event(b, kFanPreAccess, 2) + Event(FAN_NOFD, FAN_Q_OVERFLOW, 0);
  auto events = ParsePermissionEvents(buf);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_TRUE((*events)[0].has_range);
  EXPECT_EQ((*events)[0].count, 0u);  // a truncate reports count 0
  EXPECT_EQ((*events)[1].pid, 2);
  EXPECT_FALSE((*events)[1].has_range);
  EXPECT_FALSE((*events)[2].fd.valid());
  EXPECT_EQ((*events)[2].mask, static_cast<uint64_t>(FAN_Q_OVERFLOW));
  EXPECT_TRUE(ParsePermissionEvents("")->empty());
}

TEST(ParsePermissionEventsTest, MalformedBuffersNameTheOffsetAndLeakNothing) {
  struct Case {
    std::string name;
    std::function<std::string(int)> tail;  // the bytes after one good 24-byte event
    std::string where;                     // the offset the error must name
  };
  std::vector<Case> cases = {
      {"truncated metadata", [](int fd) { return Event(fd, kFanPreAccess, 1).substr(0, 10); },
       "byte 24"},
      {"event longer than the buffer",
       [](int fd) { return Event(fd, kFanPreAccess, 1, Range(0, 1)).substr(0, 40); }, "byte 24"},
      {"zero-length info record",
       [](int fd) { return Event(fd, kFanPreAccess, 1, Info(1, 0) + std::string(4, '\0')); },
       "byte 48"},
      {"short range record",
       [](int fd) { return Event(fd, kFanPreAccess, 1, Info(kFanEventInfoTypeRange, 8)); },
       "byte 48"},
      {"bad version",
       [](int fd) {
         std::string e = Event(fd, kFanPreAccess, 1);
         e[4] = 2;
         return e;
       },
       "byte 24"},
  };
  for (const Case& c : cases) {
    int first = DevNull(), second = DevNull();
    auto events = ParsePermissionEvents(Event(first, kFanPreAccess, 1) + c.tail(second));
    ASSERT_FALSE(events.ok()) << c.name;
    EXPECT_EQ(events.status().code(), Code::kInvalidArgument) << c.name;
    EXPECT_NE(events.status().message().find(c.where), std::string::npos)
        << c.name << ": " << events.status().message();
    EXPECT_FALSE(IsOpen(first)) << c.name;
    if (c.name != "truncated metadata") {
      EXPECT_FALSE(IsOpen(second)) << c.name;
    }
    if (IsOpen(second)) ::close(second);
  }
}

TEST(CheckWatchableFilesystemTest, NamesWhatItFinds) {
  LoopFs fs;
  ASSERT_TRUE(fs.ok());
  auto ext4 = CheckWatchableFilesystem(fs.mnt());
  ASSERT_TRUE(ext4.ok()) << ext4.status().ToString();
  EXPECT_EQ(*ext4, "ext4");

  std::string tmpfs = fs.run_dir() + "-tmpfs";
  ASSERT_TRUE(std::filesystem::create_directories(tmpfs));
  ASSERT_EQ(::mount("tmpfs", tmpfs.c_str(), "tmpfs", 0, "size=1m"), 0);
  auto refused = CheckWatchableFilesystem(tmpfs);
  ::umount2(tmpfs.c_str(), MNT_DETACH);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("tmpfs"), std::string::npos);
  EXPECT_NE(refused.status().message().find("ext4, xfs or btrfs"), std::string::npos);

  auto missing = CheckWatchableFilesystem(fs.mnt() + "/no/such/dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

// The real kernel interface: this test process is the daemon, `cat` children are the readers.
class PreContentGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.ok());
    path_ = fs_ / "file";
    WriteFile(path_, content_);  // before the mark: no event
    auto group = InitPreContentGroup(/*nonblocking=*/true);
    ASSERT_TRUE(group.ok()) << group.status().ToString();
    group_ = std::move(*group);
    Status st = MarkFilesystemPreAccess(group_.get(), fs_.mnt());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // The next event, waiting up to `timeout_ms`.
  std::vector<PermissionEvent> NextEvents(int timeout_ms = 10000) {
    pollfd p{group_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return {};
    char buf[4096];
    ssize_t n = ::read(group_.get(), buf, sizeof(buf));
    if (n <= 0) return {};
    auto events = ParsePermissionEvents(std::string_view(buf, static_cast<size_t>(n)));
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    return events.ok() ? std::move(*events) : std::vector<PermissionEvent>{};
  }
  // Allows every event until `reader` exits; returns how many there were.
  int AllowUntilExit(Child& reader) {
    int n = 0;
    while (!reader.Exited()) {
      for (PermissionEvent& e : NextEvents(20)) {
        EXPECT_TRUE(Respond(group_.get(), e.fd.get(), 0).ok());
        ++n;
      }
    }
    EXPECT_TRUE(reader.Wait());
    return n;
  }
  LoopFs fs_;
  std::string path_;
  std::string content_ = Pattern(10000, 3);
  UniqueFd group_;
};

TEST_F(PreContentGroupTest, AReadWaitsForTheAnswerAndADenialBecomesEio) {
  auto reader = Cat(path_);
  // First the open (no range: open(O_TRUNC) raises no pre-content event, so opens are held
  // too), then the read.
  auto opens = NextEvents();
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].mask, kFanOpenPerm);
  EXPECT_FALSE(opens[0].has_range);
  ASSERT_TRUE(Respond(group_.get(), opens[0].fd.get(), 0).ok());
  auto events = NextEvents();
  ASSERT_EQ(events.size(), 1u);
  PermissionEvent& e = events[0];
  EXPECT_EQ(e.mask, kFanPreAccess);
  EXPECT_EQ(e.pid, reader->pid());
  EXPECT_TRUE(e.has_range);
  EXPECT_EQ(e.offset, 0u);
  struct stat a {
  }, b{};
  ASSERT_EQ(::fstat(e.fd.get(), &a), 0);
  ASSERT_EQ(::stat(path_.c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_FALSE(reader->Exited()) << "the reader must wait for the answer";
  // ENOENT is not an errno the kernel takes in a denial: it becomes EIO.
  ASSERT_TRUE(Respond(group_.get(), e.fd.get(), ENOENT).ok());
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 1);
  EXPECT_NE(reader->err().find("Input/output error"), std::string::npos) << reader->err();
  EXPECT_EQ(reader->out(), "");
}

TEST_F(PreContentGroupTest, AnsweringAGoneEventIsNotAnError) {
  EXPECT_TRUE(Respond(group_.get(), 1000, 0).ok());
}

TEST_F(PreContentGroupTest, AnIgnoreMarkLetsReadsPassUntilTheFileIsModified) {
  auto first = Cat(path_);
  auto events = NextEvents();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(AddIgnoreMark(group_.get(), events[0].fd.get()).ok());
  ASSERT_TRUE(Respond(group_.get(), events[0].fd.get(), 0).ok());
  ASSERT_TRUE(first->Wait());
  EXPECT_EQ(first->out(), content_);
  events.clear();

  // No answer comes from here: the reader finishes only if no event was raised.
  auto second = Cat(path_);
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(second->out(), content_);

  // A modification clears the mark. (The write itself still passes under the mark.)
  int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_EQ(::pwrite(fd, "X", 1, 0), 1);
  ::close(fd);
  auto third = Cat(path_);
  events = NextEvents();
  ASSERT_EQ(events.size(), 1u) << "the write must have cleared the ignore mark";
  EXPECT_EQ(events[0].pid, third->pid());
  // Ignore again, then remove the ignore mark explicitly: events come back.
  ASSERT_TRUE(AddIgnoreMark(group_.get(), events[0].fd.get()).ok());
  ASSERT_TRUE(RemoveIgnoreMark(group_.get(), events[0].fd.get()).ok());
  ASSERT_TRUE(RemoveIgnoreMark(group_.get(), events[0].fd.get()).ok()) << "absent is fine";
  ASSERT_TRUE(Respond(group_.get(), events[0].fd.get(), 0).ok());
  events.clear();
  EXPECT_GE(AllowUntilExit(*third), 1) << "cat's read at EOF must raise an event again";
  EXPECT_EQ(third->out(), "X" + content_.substr(1));
}

}  // namespace
}  // namespace tierflow::watch
