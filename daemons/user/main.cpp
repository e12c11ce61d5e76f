// ringmart-user — the user daemon: users, their accounts and their points.
//
// Applies registerUser / updateUser / openSession / closeSession /
// recordLoginFailure / addAddress / updateAddress / deleteAddress /
// chargePoints from the gateway and deductPoints / restorePoints from the
// supervisor's saga (docs/domains.md), each inside the runtime's batch
// transaction, and replies through the outbox. Its tick deletes expired
// sessions. Passwords never reach it: the gateway hashes them.
#include <algorithm>
#include <chrono>
#include <span>
#include <string>

#include "daemons/common/retention.hpp"
#include "daemons/common/runtime.hpp"
#include "daemons/user/user_store.hpp"
#include "storage/text.hpp"

namespace {

using ringmart::msg::Envelope;
namespace runtime = ringmart::runtime;
namespace user = ringmart::user;

// [accounts] of the configuration (config/ringmart.toml).
user::LoginPolicy login_policy(const runtime::Config& config) {
  user::LoginPolicy p;
  p.max_failures = static_cast<std::uint32_t>(std::clamp<std::int64_t>(
      config.get_int("accounts", "max_failed_logins", p.max_failures), 0, 1'000'000));
  p.window_ms = std::max<std::int64_t>(
                    1, config.get_int("accounts", "failed_login_window_s", p.window_ms / 1000)) *
                1000;
  p.lockout_base_ms =
      std::max<std::int64_t>(1, config.get_int("accounts", "lockout_base_ms", p.lockout_base_ms));
  p.lockout_max_ms = std::max<std::int64_t>(
      p.lockout_base_ms,
      config.get_int("accounts", "lockout_max_s", p.lockout_max_ms / 1000) * 1000);
  return p;
}

std::span<const std::byte> bytes(capnp::Data::Reader d) {
  return {reinterpret_cast<const std::byte*>(d.begin()), d.size()};
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sessions are deleted once expired; a pass deletes at most this many.
constexpr std::size_t kSessionExpiryBatch = 1024;

}  // namespace

int main(int argc, char** argv) {
  auto started =
      runtime::start_daemon<ringmart::user::UserStore>(argc, argv, ringmart::msg::DaemonId::USER);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();
  const auto policy = login_policy(rt.config());
  // Rows keyed by expiry: "older than now - 1 ms" is "expired".
  runtime::Retention session_expiry(1, kSessionExpiryBatch, "expired sessions");
  rt.on_tick([&](std::int64_t) {
    (void)session_expiry.run(rt, unix_ms(),
                             [&](ringmart::storage::Txn& txn, std::int64_t cutoff, std::size_t n) {
                               return store.expire_sessions(txn, cutoff, n);
                             });
  });
  const auto reply = [](runtime::Context& ctx, Envelope::Reader m, const user::Outcome& out) {
    return ctx.reply(m, [&](Envelope::Payload::Builder p) {
      auto r = p.initReply();
      r.setCode(out.code);
      r.setId(out.id);
      r.setValue(out.value);
      r.setMessage(out.detail);
    });
  };

  rt.on_message([&](runtime::Context& ctx, Envelope::Reader m) -> std::error_code {
    const auto payload = m.getPayload();
    switch (payload.which()) {
      case Envelope::Payload::REGISTER_USER: {
        auto in = payload.getRegisterUser();
        auto out =
            store.register_user(ctx.txn(), ringmart::storage::to_string(in.getName()),
                                ringmart::storage::to_string(in.getEmail()),
                                ringmart::storage::to_string(in.getPasswordHash()), ctx.now_ms());
        if (!out) return out.error();
        log->debug("registerUser msg={} -> {} id={}", m.getMessageId(),
                   runtime::code_name(out->code), out->id);
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::UPDATE_USER: {
        auto in = payload.getUpdateUser();
        user::UserUpdate u{
            .user_id = in.getUserId(),
            .expected_password_hash = ringmart::storage::to_string(in.getExpectedPasswordHash())};
        if (in.getSetName()) u.name = ringmart::storage::to_string(in.getName());
        if (in.getSetEmail()) u.email = ringmart::storage::to_string(in.getEmail());
        if (in.getSetPasswordHash()) {
          u.password_hash = ringmart::storage::to_string(in.getPasswordHash());
        }
        auto out = store.update_user(ctx.txn(), u, ctx.now_ms());
        if (!out) return out.error();
        log->debug("updateUser user={} name={} email={} password={} -> {}", u.user_id,
                   u.name.has_value(), u.email.has_value(), u.password_hash.has_value(),
                   runtime::code_name(out->code));
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::OPEN_SESSION: {
        auto in = payload.getOpenSession();
        auto out = store.open_session(
            ctx.txn(), in.getUserId(), bytes(in.getTokenHash()), in.getExpiresAtMs(),
            ringmart::storage::to_string(in.getVerifiedPasswordHash()), ctx.now_ms());
        if (!out) return out.error();
        log->debug("openSession user={} -> {}", in.getUserId(), runtime::code_name(out->code));
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::CLOSE_SESSION: {
        auto out = store.close_session(ctx.txn(), bytes(payload.getCloseSession().getTokenHash()));
        if (!out) return out.error();
        log->debug("closeSession user={}", out->id);
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::RECORD_LOGIN_FAILURE: {
        const auto user_id = payload.getRecordLoginFailure().getUserId();
        auto out = store.record_login_failure(ctx.txn(), user_id, policy, ctx.now_ms());
        if (!out) return out.error();
        log->debug("recordLoginFailure user={} -> locked until {}", user_id, out->value);
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::ADD_ADDRESS: {
        auto in = payload.getAddAddress();
        auto out = store.add_address(ctx.txn(), in.getUserId(), user::from_message(in.getAddress()),
                                     in.getMakeDefault(), ctx.now_ms());
        if (!out) return out.error();
        log->debug("addAddress user={} -> {} id={}", in.getUserId(), runtime::code_name(out->code),
                   out->id);
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::UPDATE_ADDRESS: {
        auto in = payload.getUpdateAddress();
        auto out = store.update_address(ctx.txn(), in.getUserId(), in.getAddressId(),
                                        in.getFieldMask(), user::from_message(in.getAddress()),
                                        in.getMakeDefault(), ctx.now_ms());
        if (!out) return out.error();
        log->debug("updateAddress user={} address={} -> {}", in.getUserId(), in.getAddressId(),
                   runtime::code_name(out->code));
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::DELETE_ADDRESS: {
        auto in = payload.getDeleteAddress();
        auto out = store.delete_address(ctx.txn(), in.getUserId(), in.getAddressId());
        if (!out) return out.error();
        log->debug("deleteAddress user={} address={} -> {}", in.getUserId(), in.getAddressId(),
                   runtime::code_name(out->code));
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::CHARGE_POINTS: {
        auto in = payload.getChargePoints();
        auto out = store.charge_points(ctx.txn(), in.getUserId(), in.getAmount(), ctx.now_ms());
        if (!out) return out.error();
        log->debug("chargePoints user={} amount={} -> {} balance={}", in.getUserId(),
                   in.getAmount(), runtime::code_name(out->code), out->value);
        return reply(ctx, m, *out);
      }
      case Envelope::Payload::DEDUCT_POINTS: {
        auto in = payload.getDeductPoints();
        auto out = store.deduct_points(ctx.txn(), in.getOrderId(), in.getUserId(), in.getPoints(),
                                       ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} deductPoints user={} points={} -> {}", m.getSagaId(),
                   in.getOrderId(), in.getUserId(), in.getPoints(), runtime::code_name(out->code));
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initPointsDeducted();
          r.setCode(out->code);
          r.setDetail(out->detail);
        });
      }
      case Envelope::Payload::RESTORE_POINTS: {
        const auto order_id = payload.getRestorePoints().getOrderId();
        auto out = store.restore_points(ctx.txn(), order_id, ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} restorePoints user={} points={} {}", m.getSagaId(), order_id,
                   out->id, out->value, out->detail);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initPointsRestored();
          r.setCode(out->code);
          r.setDetail(out->detail);
        });
      }
      default:
        runtime::warn_unexpected(*log, m);
        return {};
    }
  });
  rt.install_signal_handlers();
  return rt.run();
}
