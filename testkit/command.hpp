// ringmart::testkit::run_command — runs a shell command line and collects
// what it printed, for tests that drive ringmart's executables (ringmartctl,
// a second supervisor, the attacker under setpriv).
#pragma once

#include <string>

namespace ringmart::testkit {

/// What a command did: its exit code (-1 when it died by a signal or could
/// not be started) and its standard output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
};

/// Runs `command` with /bin/sh (popen(3)) and waits for it; append " 2>&1"
/// to collect standard error too. Thread-safe (each call its own pipe).
CommandResult run_command(const std::string& command);

}  // namespace ringmart::testkit
