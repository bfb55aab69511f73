// A plugin built against a minor this host does not have yet: it may call
// host services the host lacks, so the host refuses it.
#include <ferry/version.h>
#undef FERRY_ABI_MINOR
#define FERRY_ABI_MINOR 999
#include <ferry/plugin.hpp>

namespace {
class NewerMinor final : public ferry::sdk::Middleware {
 public:
  explicit NewerMinor(ferry::sdk::Config&) {}
};
}  // namespace

FERRY_MIDDLEWARE_PLUGIN(NewerMinor, "newer_minor", "0.0.1")
