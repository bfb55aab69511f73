#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

// `ferry keys ...` (args after "keys"); the process exit status.
int keys(const std::vector<std::string>& args);

}  // namespace ferry::cli
