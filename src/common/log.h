// Logging goes through spdlog; this header is the one place that includes it, so the
// format and level are set once (InitLogging) for every tierflow process.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace tierflow {

// Sets the default logger's level ("debug", "info", "warn", "error") and pattern.
// Logs go to stderr. Call once at process start.
void InitLogging(const std::string& level, const std::string& process_name);

}  // namespace tierflow
