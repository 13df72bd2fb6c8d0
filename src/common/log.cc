// Process-wide logging setup.
#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace tierflow {

void InitLogging(const std::string& level, const std::string& process_name) {
  auto logger = spdlog::stderr_color_mt(process_name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n[%t] %^%l%$: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace tierflow
