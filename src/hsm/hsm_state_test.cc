// HSM state validity, the needed/compatible rules for actions, and user-settable flags.
#include "hsm/hsm_state.h"

#include <gtest/gtest.h>

namespace tierflow::hsm {
namespace {

constexpr uint32_t E = kStateExists, D = kStateDirty, R = kStateReleased, A = kStateArchived,
                   NR = kStateNoRelease, NA = kStateNoArchive, L = kStateLost;

bool Has(const Status& st, std::string_view text) {
  return st.message().find(text) != std::string::npos;
}

TEST(HsmStateTest, BitsAreLustres) {
  EXPECT_EQ(E, 0x1u);
  EXPECT_EQ(D, 0x2u);
  EXPECT_EQ(R, 0x4u);
  EXPECT_EQ(A, 0x8u);
  EXPECT_EQ(NR, 0x10u);
  EXPECT_EQ(NA, 0x20u);
  EXPECT_EQ(L, 0x40u);
  EXPECT_EQ(kStateUserSettable, NR | NA | D);
}

TEST(HsmStateTest, NamesInLfsOrder) {
  EXPECT_EQ(StateNames(kStateAll),
            (std::vector<std::string>{"released", "exists", "dirty", "archived", "norelease",
                                      "noarchive", "lost"}));
  EXPECT_EQ(StateNames(R | A | E), (std::vector<std::string>{"released", "exists", "archived"}));
  EXPECT_TRUE(StateNames(0).empty());
  EXPECT_TRUE(StateNames(0x80).empty());
}

TEST(HsmStateTest, ParsesNames) {
  for (uint32_t bit = 1; bit <= L; bit <<= 1) {
    EXPECT_EQ(ParseStateName(StateNames(bit).at(0)), bit);
  }
  EXPECT_EQ(ParseStateName("NoArchive"), NA);
  EXPECT_FALSE(ParseStateName(""));
  EXPECT_FALSE(ParseStateName("never_release"));
  EXPECT_FALSE(ParseStateName("lostx"));
}

// Lustre's rules, restated independently of the implementation.
bool ValidByLustre(uint32_t s) {
  if (s & ~kStateAll) return false;
  if ((s & D) && !(s & E)) return false;
  if ((s & R) && (s & D)) return false;
  if ((s & R) && !(s & A)) return false;
  if ((s & L) && !(s & A)) return false;
  return true;
}

TEST(HsmStateTest, ValidatesEveryCombination) {
  int valid = 0;
  for (uint32_t s = 0; s <= 0xff; ++s) {
    Status st = ValidateStates(s);
    EXPECT_EQ(st.ok(), ValidByLustre(s)) << "states " << s;
    if (st.ok()) {
      ++valid;
    } else {
      EXPECT_EQ(st.code(), Code::kInvalidArgument);
    }
  }
  // Per (norelease, noarchive) pair, 13 of the 32 exists/dirty/released/archived/lost
  // combinations are valid: 3 without archived, 5 x (lost or not) with it.
  EXPECT_EQ(valid, 4 * 13);
}

TEST(HsmStateTest, InvalidCombinationsSayWhy) {
  EXPECT_TRUE(Has(ValidateStates(D), "dirty requires exists"));
  EXPECT_TRUE(Has(ValidateStates(E | D | R | A), "released and dirty"));
  EXPECT_TRUE(Has(ValidateStates(E | R), "released requires archived"));
  EXPECT_TRUE(Has(ValidateStates(E | L), "lost requires archived"));
  Status unknown = ValidateStates(E | 0x100);
  EXPECT_TRUE(Has(unknown, "unknown state bits 0x100")) << unknown.message();
  EXPECT_TRUE(Has(ValidateStates(D), "dirty")) << "message names the states";
  EXPECT_TRUE(ValidateStates(0).ok());
  EXPECT_TRUE(ValidateStates(E | A | R | NR | NA | L).ok());
}

TEST(IsActionNeededTest, Archive) {
  EXPECT_TRUE(IsActionNeeded(Action::kArchive, 0, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kArchive, E, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kArchive, E | D, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kArchive, E | A | D, 0));
  EXPECT_FALSE(IsActionNeeded(Action::kArchive, E | A, 0));
  EXPECT_FALSE(IsActionNeeded(Action::kArchive, E | A | R, 0));
}

TEST(IsActionNeededTest, Restore) {
  EXPECT_TRUE(IsActionNeeded(Action::kRestore, E | A | R, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kRestore, E | A | D, 0));  // so the refusal is reported
  EXPECT_FALSE(IsActionNeeded(Action::kRestore, E | A, 0));
  EXPECT_FALSE(IsActionNeeded(Action::kRestore, 0, 0));
}

TEST(IsActionNeededTest, Remove) {
  EXPECT_TRUE(IsActionNeeded(Action::kRemove, E, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kRemove, A, 0));
  EXPECT_TRUE(IsActionNeeded(Action::kRemove, E | A, 0));
  EXPECT_FALSE(IsActionNeeded(Action::kRemove, 0, 0));
  EXPECT_FALSE(IsActionNeeded(Action::kRemove, NR | NA, 0));
}

TEST(IsActionNeededTest, CancelAlwaysAndForceBypasses) {
  for (uint32_t s = 0; s <= kStateAll; ++s) {
    EXPECT_TRUE(IsActionNeeded(Action::kCancel, s, 0));
    for (Action a : {Action::kArchive, Action::kRestore, Action::kRemove, Action::kCancel}) {
      EXPECT_TRUE(IsActionNeeded(a, s, kHalFlagForce));
      EXPECT_TRUE(IsActionNeeded(a, s, kHalFlagForce | kHalFlagBlocking));
    }
  }
  // Other flags do not bypass.
  EXPECT_FALSE(IsActionNeeded(Action::kArchive, E | A, kHalFlagGhostCopy | kHalFlagBlocking));
}

TEST(CheckActionCompatibleTest, ArchiveRefusedForNoArchive) {
  Status st = CheckActionCompatible(Action::kArchive, NA, 0, 1);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(st.message(), "file is noarchive; clear it with 'tierflow state --clear noarchive'");
  EXPECT_EQ(CheckActionCompatible(Action::kArchive, E | A | D | NA, 1, 1).code(),
            Code::kPermissionDenied);
}

TEST(CheckActionCompatibleTest, ArchiveMustStayInTheFilesArchive) {
  EXPECT_TRUE(CheckActionCompatible(Action::kArchive, E | D, 3, 3).ok());
  EXPECT_TRUE(CheckActionCompatible(Action::kArchive, E | D, 3, 0).ok());  // 0: the file's own
  Status st = CheckActionCompatible(Action::kArchive, E | D, 3, 4);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_TRUE(Has(st, "exists in archive 3")) << st.message();
  EXPECT_TRUE(Has(st, "archive 4")) << st.message();
  // Without EXISTS any archive id is fine.
  EXPECT_TRUE(CheckActionCompatible(Action::kArchive, 0, 3, 4).ok());
  EXPECT_TRUE(CheckActionCompatible(Action::kArchive, 0, 0, 7).ok());
  // FORCE re-archives of a clean archived file are allowed.
  EXPECT_TRUE(CheckActionCompatible(Action::kArchive, E | A, 1, 1).ok());
}

TEST(CheckActionCompatibleTest, Restore) {
  EXPECT_TRUE(CheckActionCompatible(Action::kRestore, E | A | R, 1, 1).ok());
  EXPECT_TRUE(CheckActionCompatible(Action::kRestore, E | A | R | NR | NA, 1, 0).ok());
  struct Case {
    uint32_t states;
    const char* names;
  } refused[] = {
      {E | A, "not released"},
      {E | A | D, "dirty"},
      {E | A | R | L, "lost"},
      {R, "not archived"},      // invalid combination, still refused
      {A | R | D, "dirty"},     // invalid combination, still refused
      {0, "not released"},
  };
  for (const Case& c : refused) {
    Status st = CheckActionCompatible(Action::kRestore, c.states, 1, 1);
    EXPECT_EQ(st.code(), Code::kPermissionDenied) << c.states;
    EXPECT_TRUE(Has(st, c.names)) << c.states << ": " << st.message();
  }
}

TEST(CheckActionCompatibleTest, Remove) {
  EXPECT_TRUE(CheckActionCompatible(Action::kRemove, E | A, 1, 1).ok());
  EXPECT_TRUE(CheckActionCompatible(Action::kRemove, E | A | D, 1, 1).ok());
  EXPECT_TRUE(CheckActionCompatible(Action::kRemove, E | A | L, 1, 1).ok());
  Status st = CheckActionCompatible(Action::kRemove, E | A | R, 1, 1);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_TRUE(Has(st, "released")) << st.message();
}

TEST(CheckActionCompatibleTest, CancelAlwaysAllowed) {
  for (uint32_t s = 0; s <= kStateAll; ++s) {
    EXPECT_TRUE(CheckActionCompatible(Action::kCancel, s, 1, 2).ok()) << s;
  }
}

TEST(ApplyUserFlagsTest, SetsAndClearsUserBits) {
  Result<uint32_t> r = ApplyUserFlags(E | A, NR | NA, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, E | A | NR | NA);
  r = ApplyUserFlags(E | A | NR | NA, 0, NA);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, E | A | NR);
  r = ApplyUserFlags(E | A, D, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, E | A | D);
  r = ApplyUserFlags(E | A | D, 0, D);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, E | A);
  r = ApplyUserFlags(E | A, 0, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, E | A);
}

TEST(ApplyUserFlagsTest, RefusesSystemBits) {
  for (uint32_t bit : {E, R, A, L, 0x80u}) {
    Result<uint32_t> set = ApplyUserFlags(E | A, bit, 0);
    EXPECT_EQ(set.status().code(), Code::kPermissionDenied) << bit;
    Result<uint32_t> clear = ApplyUserFlags(E | A | R, 0, bit);
    EXPECT_EQ(clear.status().code(), Code::kPermissionDenied) << bit;
  }
  Status st = ApplyUserFlags(E | A, R | NR, 0).status();
  EXPECT_TRUE(Has(st, "released")) << st.message();
  EXPECT_TRUE(Has(st, "cannot be set by hand")) << st.message();
}

TEST(ApplyUserFlagsTest, RootMaySetAndClearLostButNoOtherSystemBit) {
  EXPECT_EQ(*ApplyUserFlags(E | A | R, L, 0, /*admin=*/true), E | A | R | L);
  EXPECT_EQ(*ApplyUserFlags(E | A | R | L, 0, L, /*admin=*/true), E | A | R);
  EXPECT_EQ(ApplyUserFlags(E, L, 0, true).status().code(), Code::kInvalidArgument);
  for (uint32_t bit : {E, R, A}) {
    EXPECT_EQ(ApplyUserFlags(E | A, bit, 0, true).status().code(), Code::kPermissionDenied) << bit;
  }
}

TEST(ApplyUserFlagsTest, RefusesContradictionsAndInvalidResults) {
  Status both = ApplyUserFlags(E | A, NR, NR).status();
  EXPECT_EQ(both.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(both, "norelease")) << both.message();
  // Dirty without exists.
  EXPECT_EQ(ApplyUserFlags(0, D, 0).status().code(), Code::kInvalidArgument);
  // Dirty on a released file.
  Status released = ApplyUserFlags(E | A | R, D, 0).status();
  EXPECT_EQ(released.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(released, "released and dirty")) << released.message();
}

}  // namespace
}  // namespace tierflow::hsm
