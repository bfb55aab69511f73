// A plugin that claims to be built against ABI 2.0: the host must refuse it
// with a message naming the file and both versions.
#include <ferry/version.h>
#undef FERRY_ABI_MAJOR
#define FERRY_ABI_MAJOR 2
#undef FERRY_ABI_MINOR
#define FERRY_ABI_MINOR 0
#include <ferry/plugin.hpp>

namespace {
class WrongMajor final : public ferry::sdk::Middleware {
 public:
  explicit WrongMajor(ferry::sdk::Config&) {}
};
}  // namespace

FERRY_MIDDLEWARE_PLUGIN(WrongMajor, "wrong_major", "0.0.1")
