// Action names and Lustre numeric forms.
#include "hsm/action.h"

#include <strings.h>

#include <string>

namespace tierflow::hsm {

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
  std::string n(name);
  for (Action a : {Action::kArchive, Action::kRestore, Action::kRemove, Action::kCancel}) {
    if (strcasecmp(n.c_str(), std::string(ActionName(a)).c_str()) == 0) return a;
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
  return 10;
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
