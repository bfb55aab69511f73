#include "host/ferryd/worker.h"

#include <sys/socket.h>
#include <cerrno>
#include <exception>

#include "core/log/log.h"

namespace ferry::host {

void Worker::run_on_thread(const char* what) {
  thread = std::thread([this, what] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        log::get().error("{}: unhandled exception: {}", what, e.what());
      }
    }
  });
}

void Worker::stop() {
  io.stop();
  if (thread.joinable()) thread.join();
}

void Worker::listen(const boost::asio::ip::tcp::endpoint& endpoint, bool reuse_port,
                    boost::system::error_code& ec) {
  namespace asio = boost::asio;
  acceptor.emplace(io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    // Every worker accepts on its own socket; the kernel spreads connections.
    int one = 1;
    if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
}

}  // namespace ferry::host
