#pragma once

#include <string>
#include <string_view>

namespace ferry::host {

// 32 random hex digits, for a request that brings no usable id.
std::string new_request_id();
// A client's id is kept if it is safe to echo into headers and logs.
bool acceptable_request_id(std::string_view id);

}  // namespace ferry::host
