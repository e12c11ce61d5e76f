#include "tools/ctl/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "daemons/common/topology.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kManifest = "backup.json";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "ringmartctl: %s\n", message.c_str());
  return code;
}

// True when `dir` does not exist or is an empty directory.
bool absent_or_empty(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

// fsync(2) of a file or directory: the copy is on disk before it is renamed
// into place.
bool sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Moves the complete `partial` to `dir` (an empty `dir` is replaced).
std::error_code put_in_place(const std::string& partial, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) fs::remove(dir, ec);  // empty: checked before
  if (ec) return ec;
  fs::rename(partial, dir, ec);
  if (!ec) sync_path(fs::path(dir).parent_path().empty() ? "." : fs::path(dir).parent_path());
  return ec;
}

// The daemons paused for a backup; resumes them (once) when it goes.
class Pause {
 public:
  explicit Pause(ipc::StatusRegion& status) : status_(status) {}
  ~Pause() { resume(); }
  /// Pauses every running daemon. Error text when one does not answer ok.
  std::string pause_all(std::uint64_t lease_ms) {
    for (auto id : runtime::all_daemons()) {
      const auto i = runtime::index(id);
      if (status_.slot(i).pid.load() == 0) continue;  // not running: nothing writes its env
      auto r = ipc::control_call(status_, i, ipc::ControlOp::pause_commits, lease_ms, 5000);
      if (!r || r->result != ipc::ControlResult::ok) {
        return std::string(runtime::daemon_name(id)) +
               " did not pause its commits: " + (r ? r->message : r.error().message());
      }
      paused_.push_back(i);
    }
    return {};
  }
  /// Resumes them. Error text when a lease had run out (not one cut).
  std::string resume() {
    std::string error;
    for (auto i : paused_) {
      auto r = ipc::control_call(status_, i, ipc::ControlOp::resume_commits, 0, 5000);
      if ((!r || r->result != ipc::ControlResult::ok) && error.empty()) {
        error = std::string(runtime::daemon_name(runtime::all_daemons()[i])) + ": " +
                (r ? r->message : r.error().message());
      }
    }
    paused_.clear();
    return error;
  }

 private:
  ipc::StatusRegion& status_;
  std::vector<std::size_t> paused_;
};

// One environment's copy: LMDB writes the compacted copy into a pipe from
// its own thread (producer); the consumer writes the pipe into data.mdb and
// notes the first byte, which LMDB writes only after the copy's read
// transaction began (mdb_env_copyfd1: txn, then the buffers).
struct EnvCopy {
  std::string name;
  std::string file;
  std::unique_ptr<storage::Env> env;
  std::thread producer, consumer;
  std::mutex mu;
  std::condition_variable cv;
  bool begun = false, done = false;
  std::uint64_t bytes = 0;
  std::string error;  // first failure of either side

  void fail(const std::string& what) {
    std::lock_guard lock(mu);
    if (error.empty()) error = what;
  }
  void start() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      fail("pipe: " + std::string(std::strerror(errno)));
      std::lock_guard lock(mu);
      done = true;
      return;
    }
    producer = std::thread([this, w = fds[1]] {
      if (auto e = env->copy_compact_to(w)) fail("cannot copy " + name + ": " + e.message());
      ::close(w);
    });
    consumer = std::thread([this, r = fds[0]] {
      const int out = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (out < 0) fail("cannot create " + file + ": " + std::strerror(errno));
      std::vector<char> buf(1 << 20);
      ssize_t n;
      while ((n = ::read(r, buf.data(), buf.size())) > 0) {
        {
          std::lock_guard lock(mu);
          begun = true;
        }
        cv.notify_all();
        if (out >= 0 && ::write(out, buf.data(), static_cast<std::size_t>(n)) != n) {
          fail("cannot write " + file + ": " + std::strerror(errno));
        }
        bytes += static_cast<std::uint64_t>(n);
      }
      if (out >= 0 && (::fsync(out) != 0 || ::close(out) != 0)) fail("cannot sync " + file);
      ::close(r);
      {
        std::lock_guard lock(mu);
        done = true;
      }
      cv.notify_all();
    });
  }
  /// True once the copy's first byte arrived; false when it ended without one.
  bool wait_begun() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return begun || done; });
    return begun;
  }
  void join() {
    if (producer.joinable()) producer.join();
    if (consumer.joinable()) consumer.join();
  }
  ~EnvCopy() { join(); }
};

}  // namespace

int backup(const runtime::Config& config, ipc::StatusRegion& status, const std::string& dir,
           std::uint64_t lease_ms, bool json_out) {
  if (!absent_or_empty(dir)) return fail(2, "backup directory " + dir + " is not empty");
  const std::string partial = dir + ".partial";
  std::error_code ec;
  fs::remove_all(partial, ec);  // what an interrupted backup left
  if (!fs::create_directories(partial, ec) || ::chmod(partial.c_str(), 0700) != 0) {
    return fail(1, "cannot create " + partial + ": " + (ec ? ec.message() : "chmod failed"));
  }
  auto abandon = [&](const std::string& why) {
    fs::remove_all(partial, ec);
    return fail(1, "backup failed, nothing written to " + dir + ": " + why);
  };

  const auto started = now_ms();
  json daemons = json::array();
  std::uint64_t total_bytes = 0;
  std::int64_t paused_ms = 0;
  {
    // Every environment that exists, opened before the pause.
    std::vector<std::unique_ptr<EnvCopy>> copies;
    for (auto id : runtime::all_daemons()) {
      auto copy = std::make_unique<EnvCopy>();
      copy->name = runtime::daemon_name(id);
      const std::string env_dir = config.env_path(copy->name);
      if (!fs::exists(env_dir + "/data.mdb", ec)) continue;  // never started
      auto env = storage::Env::open(
          {.path = env_dir, .map_size_bytes = config.map_size_for(copy->name), .read_only = true});
      if (!env) return abandon("cannot open " + env_dir + ": " + env.error().message());
      copy->env = std::move(*env);
      const std::string target = partial + "/" + copy->name;
      if (!fs::create_directory(target, ec) || ::chmod(target.c_str(), 0700) != 0) {
        return abandon("cannot create " + target);
      }
      copy->file = target + "/data.mdb";
      copies.push_back(std::move(copy));
    }
    Pause pause(status);
    if (auto e = pause.pause_all(lease_ms); !e.empty()) return abandon(e);
    const auto paused_at = now_ms();
    for (auto& c : copies) c->start();
    // Every copy's snapshot is fixed once its first byte came through: then
    // commits may go on while the copies are written out.
    const bool all_began = std::ranges::all_of(copies, [](auto& c) { return c->wait_begun(); });
    paused_ms = now_ms() - paused_at;
    const auto resumed = pause.resume();
    for (auto& c : copies) c->join();
    if (!all_began || !resumed.empty()) {
      std::string why = resumed.empty() ? ""
                                        : "a pause ended before every copy began (" + resumed +
                                              "); raise --pause-ms";
      for (auto& c : copies) {
        if (why.empty() && !c->error.empty()) why = c->error;
      }
      return abandon(why.empty() ? "a copy did not begin" : why);
    }
    for (auto& c : copies) {
      if (!c->error.empty()) return abandon(c->error);
      total_bytes += c->bytes;
      daemons.push_back({{"name", c->name}, {"bytes", c->bytes}});
    }
  }
  // Each data.mdb was created 0600 and fsync'ed by its copy; their
  // directory entries too.
  for (const auto& d : daemons) {
    const std::string target = partial + "/" + d["name"].get<std::string>();
    if (!sync_path(target)) return abandon("cannot sync " + target);
  }
  const json manifest = {
      {"format", 1},
      {"created_unix_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()},
      {"state_dir", config.state_dir},
      {"daemons", daemons},
      {"bytes", total_bytes},
      {"paused_ms", paused_ms}};
  {
    std::ofstream out(partial + "/" + kManifest);
    out << manifest.dump(2) << "\n";
    if (!out) return abandon("cannot write the manifest");
  }
  if (!sync_path(partial + "/" + kManifest) || !sync_path(partial)) {
    return abandon("cannot sync " + partial);
  }
  if (auto e = put_in_place(partial, dir))
    return abandon("cannot rename into place: " + e.message());
  const auto took_ms = now_ms() - started;
  if (json_out) {
    json j = manifest;
    j["dir"] = dir;
    j["took_ms"] = took_ms;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("backup: %zu environments, %.1f MB, commits paused %lld ms, took %lld ms -> %s\n",
                daemons.size(), static_cast<double>(total_bytes) / 1e6,
                static_cast<long long>(paused_ms), static_cast<long long>(took_ms), dir.c_str());
  }
  return 0;
}

int restore(const std::string& dir, const std::string& state_dir, bool json_out) {
  json manifest;
  try {
    std::ifstream in(dir + "/" + kManifest);
    if (!in) return fail(2, dir + " is not a ringmart backup (no " + kManifest + ")");
    manifest = json::parse(in);
    if (manifest.at("format") != 1) return fail(2, dir + ": unknown backup format");
  } catch (const std::exception& e) {
    return fail(2, dir + "/" + kManifest + ": " + e.what());
  }
  if (!absent_or_empty(state_dir)) {
    return fail(2, "state directory " + state_dir +
                       " is not empty: restore only into a new or empty directory, never over a "
                       "system's state");
  }
  const std::string partial = state_dir + ".partial";
  std::error_code ec;
  fs::remove_all(partial, ec);
  if (!fs::create_directories(partial, ec) || ::chmod(partial.c_str(), 0700) != 0) {
    return fail(1, "cannot create " + partial);
  }
  auto abandon = [&](const std::string& why) {
    fs::remove_all(partial, ec);
    return fail(1, "restore failed, nothing written to " + state_dir + ": " + why);
  };
  std::size_t restored = 0;
  try {
    for (const auto& d : manifest.at("daemons")) {
      const auto name = d.at("name").get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos || name.starts_with(".")) {
        return abandon("the manifest names an environment \"" + name + "\"");
      }
      const std::string from = dir + "/" + name + "/data.mdb";
      const std::string to_dir = partial + "/" + name;
      fs::create_directory(to_dir, ec);
      if (ec || ::chmod(to_dir.c_str(), 0700) != 0) return abandon("cannot create " + to_dir);
      fs::copy_file(from, to_dir + "/data.mdb", ec);
      if (ec) return abandon("cannot copy " + from + ": " + ec.message());
      if (::chmod((to_dir + "/data.mdb").c_str(), 0600) != 0 || !sync_path(to_dir + "/data.mdb") ||
          !sync_path(to_dir)) {
        return abandon("cannot sync " + to_dir);
      }
      ++restored;
    }
  } catch (const std::exception& e) {
    return abandon(std::string("malformed manifest: ") + e.what());
  }
  if (!sync_path(partial)) return abandon("cannot sync " + partial);
  if (auto e = put_in_place(partial, state_dir)) return abandon("cannot rename: " + e.message());
  if (json_out) {
    std::printf(
        "%s\n",
        json{{"restored", restored}, {"state_dir", state_dir}, {"from", dir}}.dump(2).c_str());
  } else {
    std::printf("restore: %zu environments from %s -> %s\n", restored, dir.c_str(),
                state_dir.c_str());
  }
  return 0;
}

}  // namespace ringmart::ctl
