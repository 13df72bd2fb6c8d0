// Reading the movers' action logs.
#include "action_log.h"

#include <fstream>
#include <sstream>

namespace tierflow::chaos {

ActionLog ReadActionLogs(const std::vector<std::string>& paths) {
  ActionLog log;
  for (const std::string& path : paths) {
    std::ifstream in(path);
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      ActionLine line;
      line.file = path;
      line.source = path + ":" + std::to_string(n);
      std::istringstream fields(text);
      std::string extra;
      if (!(fields >> line.wall_us >> line.mover >> line.request_id >> line.epoch >> line.action >>
            line.fid >> line.error) ||
          (fields >> extra)) {
        log.malformed.push_back(line.source + ": " + text);
        continue;
      }
      ++log.lines;
      if (line.error == 0) log.successes[line.request_id].push_back(std::move(line));
    }
  }
  return log;
}

}  // namespace tierflow::chaos
