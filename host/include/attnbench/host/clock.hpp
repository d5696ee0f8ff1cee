// Wall-clock times as results files and folder names write them.
#pragma once

#include <string>

namespace attnbench {

// ISO 8601 UTC ("2026-12-02T06:30:13Z") for results; with utc false, local
// "%Y%m%d-%H%M%S" for folder names.
std::string time_text(bool utc = true);

}  // namespace attnbench
