#pragma once

#include <string>
#include <string_view>

namespace ferry::secrets {

// Remembers a credential the process holds (a provider key a plugin read
// through secret_get, the admin token), so that scrub() can find it in text
// that came from elsewhere. Values shorter than 8 bytes are ignored: they
// would mask ordinary words. Any thread.
void remember(std::string_view value);

// `text` with every remembered credential, and every string shaped like one
// (sdk::mask_key_shaped), replaced by "[REDACTED]": for whatever an upstream
// said (an error body that echoes the Authorization header) before it
// reaches a client or a log. Any thread.
std::string scrub(std::string_view text);

}  // namespace ferry::secrets
