#include "tools/ctl/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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
    Pause pause(status);
    if (auto e = pause.pause_all(lease_ms); !e.empty()) return abandon(e);
    const auto paused_at = now_ms();
    for (auto id : runtime::all_daemons()) {
      const std::string name = runtime::daemon_name(id);
      const std::string env_dir = config.env_path(name);
      if (!fs::exists(env_dir + "/data.mdb", ec)) continue;  // never started
      auto env = storage::Env::open(
          {.path = env_dir, .map_size_bytes = config.map_size_for(name), .read_only = true});
      if (!env) return abandon("cannot open " + env_dir + ": " + env.error().message());
      const std::string target = partial + "/" + name;
      if (!fs::create_directory(target, ec) || ::chmod(target.c_str(), 0700) != 0) {
        return abandon("cannot create " + target);
      }
      if (auto e = (*env)->copy_compact(target)) {
        return abandon("cannot copy " + env_dir + ": " + e.message());
      }
      const auto bytes = fs::file_size(target + "/data.mdb", ec);
      total_bytes += bytes;
      daemons.push_back({{"name", name}, {"bytes", bytes}});
    }
    paused_ms = now_ms() - paused_at;
    if (auto e = pause.resume(); !e.empty()) {
      return abandon("a pause ended before every copy was taken (" + e + "); raise --pause-ms");
    }
  }
  for (const auto& d : daemons) {
    const std::string file = partial + "/" + d["name"].get<std::string>() + "/data.mdb";
    if (::chmod(file.c_str(), 0600) != 0 || !sync_path(file)) return abandon("cannot sync " + file);
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
