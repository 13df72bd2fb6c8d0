// Action names and Lustre numeric forms.
#include "hsm/action.h"

#include <cctype>

namespace tierflow::hsm {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

constexpr Action kAllActions[] = {Action::kArchive, Action::kRestore, Action::kRemove,
                                  Action::kCancel};

}  // namespace

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kArchive: return "ARCHIVE";
    case Action::kRestore: return "RESTORE";
    case Action::kRemove: return "REMOVE";
    case Action::kCancel: return "CANCEL";
  }
  return "UNKNOWN";
}

std::optional<Action> ParseActionName(std::string_view name) {
  for (Action a : kAllActions) {
    if (EqualsIgnoreCase(name, ActionName(a))) return a;
  }
  return std::nullopt;
}

uint32_t ToCopytoolAction(Action a) {
  switch (a) {
    case Action::kArchive: return 20;
    case Action::kRestore: return 21;
    case Action::kRemove: return 22;
    case Action::kCancel: return 23;
  }
  return kCopytoolActionNoop;
}

std::optional<Action> FromCopytoolAction(uint32_t v) {
  switch (v) {
    case 20: return Action::kArchive;
    case 21: return Action::kRestore;
    case 22: return Action::kRemove;
    case 23: return Action::kCancel;
    default: return std::nullopt;
  }
}

std::string_view CopytoolActionName(uint32_t v) {
  if (v == kCopytoolActionNoop) return "NOOP";
  std::optional<Action> a = FromCopytoolAction(v);
  return a ? ActionName(*a) : "UNKNOWN";
}

std::optional<uint32_t> ParseCopytoolActionName(std::string_view name) {
  if (EqualsIgnoreCase(name, "NOOP")) return kCopytoolActionNoop;
  std::optional<Action> a = ParseActionName(name);
  if (!a) return std::nullopt;
  return ToCopytoolAction(*a);
}

uint32_t ToUserAction(Action a) {
  switch (a) {
    case Action::kArchive: return 10;
    case Action::kRestore: return 11;
    case Action::kRemove: return 13;
    case Action::kCancel: return 14;
  }
  return 1;
}

std::optional<Action> FromUserAction(uint32_t v) {
  switch (v) {
    case 10: return Action::kArchive;
    case 11: return Action::kRestore;
    case 13: return Action::kRemove;
    case 14: return Action::kCancel;
    default: return std::nullopt;
  }
}

}  // namespace tierflow::hsm
