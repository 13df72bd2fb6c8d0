// Action names and Lustre's numeric action values.
#include "hsm/action.h"

#include <gtest/gtest.h>

namespace tierflow::hsm {
namespace {

constexpr Action kAll[] = {Action::kArchive, Action::kRestore, Action::kRemove, Action::kCancel};

TEST(ActionTest, NamesRoundTripCaseInsensitively) {
  for (Action a : kAll) {
    EXPECT_EQ(ParseActionName(ActionName(a)), a);
    std::string lower(ActionName(a));
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    EXPECT_EQ(ParseActionName(lower), a);
  }
  EXPECT_EQ(ActionName(Action::kArchive), "ARCHIVE");
  EXPECT_FALSE(ParseActionName(""));
  EXPECT_FALSE(ParseActionName("ARCHIV"));
  EXPECT_FALSE(ParseActionName("ARCHIVES"));
  EXPECT_FALSE(ParseActionName(std::string_view("ARCHIVE\0X", 9)));
  EXPECT_FALSE(ParseActionName("RELEASE"));
  EXPECT_FALSE(ParseActionName("NOOP"));
}

TEST(ActionTest, CopytoolValuesAreLustres) {
  EXPECT_EQ(ToCopytoolAction(Action::kArchive), 20u);
  EXPECT_EQ(ToCopytoolAction(Action::kRestore), 21u);
  EXPECT_EQ(ToCopytoolAction(Action::kRemove), 22u);
  EXPECT_EQ(ToCopytoolAction(Action::kCancel), 23u);
  for (Action a : kAll) EXPECT_EQ(FromCopytoolAction(ToCopytoolAction(a)), a);
  EXPECT_FALSE(FromCopytoolAction(kCopytoolActionNoop));
  EXPECT_FALSE(FromCopytoolAction(19));
  EXPECT_FALSE(FromCopytoolAction(24));
}

TEST(ActionTest, CopytoolNamesIncludeNoopAndUnknown) {
  EXPECT_EQ(CopytoolActionName(10), "NOOP");
  EXPECT_EQ(CopytoolActionName(20), "ARCHIVE");
  EXPECT_EQ(CopytoolActionName(21), "RESTORE");
  EXPECT_EQ(CopytoolActionName(22), "REMOVE");
  EXPECT_EQ(CopytoolActionName(23), "CANCEL");
  EXPECT_EQ(CopytoolActionName(0), "UNKNOWN");
  EXPECT_EQ(CopytoolActionName(11), "UNKNOWN");
  for (uint32_t v : {10u, 20u, 21u, 22u, 23u}) {
    EXPECT_EQ(ParseCopytoolActionName(CopytoolActionName(v)), v);
  }
  EXPECT_EQ(ParseCopytoolActionName("noop"), 10u);
  EXPECT_FALSE(ParseCopytoolActionName("UNKNOWN"));
}

TEST(ActionTest, UserValuesAreLustres) {
  EXPECT_EQ(ToUserAction(Action::kArchive), 10u);
  EXPECT_EQ(ToUserAction(Action::kRestore), 11u);
  EXPECT_EQ(ToUserAction(Action::kRemove), 13u);
  EXPECT_EQ(ToUserAction(Action::kCancel), 14u);
  for (Action a : kAll) EXPECT_EQ(FromUserAction(ToUserAction(a)), a);
  EXPECT_FALSE(FromUserAction(kUserActionRelease));  // release bypasses the coordinator
  EXPECT_FALSE(FromUserAction(1));
}

}  // namespace
}  // namespace tierflow::hsm
