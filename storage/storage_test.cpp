#include <capnp/schema.capnp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "storage/capnp_value.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::storage {
namespace {

std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(Outbox, AssignsGapFreeSequencesPerReceiverAndPrunes) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  auto env = Env::open({.path = dir});
  ASSERT_TRUE(env);
  auto txn = Txn::begin_write(**env);
  ASSERT_TRUE(txn);
  auto outbox = Outbox::open(*txn);
  ASSERT_TRUE(outbox);
  for (int i = 0; i < 5; ++i) {
    auto seq = outbox->next_seq(*txn, 3);
    ASSERT_TRUE(seq);
    EXPECT_EQ(*seq, static_cast<std::uint64_t>(i + 1));
    ASSERT_FALSE(outbox->put(*txn, 3, *seq, bytes("m" + std::to_string(*seq))));
  }
  auto other = outbox->next_seq(*txn, 4);
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, 1u);
  ASSERT_FALSE(txn->commit());

  auto txn2 = Txn::begin_write(**env);
  std::vector<std::uint64_t> seen;
  outbox->scan(*txn2, 3, 2, [&](std::uint64_t seq, std::span<const std::byte> m) {
    seen.push_back(seq);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), m.size()),
              "m" + std::to_string(seq));
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(outbox->prune(*txn2, 3, 4), 4u);
  EXPECT_EQ(outbox->pending(*txn2, 3, 4), 1u);
  seen.clear();
  outbox->scan(*txn2, 3, 0, [&](std::uint64_t seq, auto) {
    seen.push_back(seq);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{5}));
  // Sequence numbers continue after pruning.
  EXPECT_EQ(*outbox->next_seq(*txn2, 3), 6u);
  txn2->abort();
}

TEST(Inbox, MarkSurvivesReopenOnlyWhenCommitted) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  {
    auto env = Env::open({.path = dir, .durability = Durability::fsync});
    ASSERT_TRUE(env);
    auto txn = Txn::begin_write(**env);
    auto inbox = Inbox::open(*txn);
    ASSERT_TRUE(inbox);
    ASSERT_FALSE(inbox->set_mark(*txn, 1, 41));
    ASSERT_FALSE(txn->commit());
    auto txn2 = Txn::begin_write(**env);
    ASSERT_FALSE(inbox->set_mark(*txn2, 1, 99));
    txn2->abort();
  }
  auto env = Env::open({.path = dir});
  ASSERT_TRUE(env);
  auto txn = Txn::begin_write(**env);
  auto inbox = Inbox::open(*txn);
  EXPECT_EQ(inbox->mark(*txn, 1), 41u);
  EXPECT_EQ(inbox->mark(*txn, 2), 0u);
}

TEST(Env, MapFullIsAnErrorValueAndLeavesEarlierDataIntact) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  auto env = Env::open({.path = dir, .map_size_bytes = 256 * 1024});
  ASSERT_TRUE(env);
  {
    auto txn = Txn::begin_write(**env);
    auto t = Table::open(*txn, "t");
    ASSERT_FALSE(t->put(*txn, Key{}.u64(0).view(), bytes("kept")));
    ASSERT_FALSE(txn->commit());
  }
  auto txn = Txn::begin_write(**env);
  auto t = Table::open(*txn, "t");
  std::string big(4000, 'x');
  std::error_code ec;
  for (std::uint64_t i = 1; i < 1000 && !ec; ++i)
    ec = t->put(*txn, Key{}.u64(i).view(), bytes(big));
  EXPECT_EQ(ec, lmdb_error(MDB_MAP_FULL));
  txn->abort();
  auto rtxn = Txn::begin_read(**env);
  auto v = t->get(*rtxn, Key{}.u64(0).view());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), 4u);
  EXPECT_FALSE(t->get(*rtxn, Key{}.u64(1).view()));
}

TEST(Env, WriteMapReservesTheDiskAheadSoAFullDiskIsAnErrorNotSigbus) {
  // A 40 MiB tmpfs under a 256 MiB map: with MDB_WRITEMAP the file is sparse,
  // and a store into a hole the file system cannot fill would be SIGBUS.
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  if (::system(("mount -t tmpfs -o size=40m tmpfs " + dir + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { (void)::system(("umount " + dir).c_str()); }
  } unmount{dir};
  auto env = Env::open({.path = dir + "/env", .map_size_bytes = 256ull << 20});
  ASSERT_TRUE(env);
  ASSERT_TRUE((*env)->write_map());
  const std::string big(512 * 1024, 'x');
  std::size_t committed = 0;
  std::error_code ec;
  for (std::size_t i = 0; i < 200 && !ec; ++i) {
    auto txn = Txn::begin_write(**env);
    if (!txn) {
      ec = txn.error();
      break;
    }
    auto t = Table::open(*txn, "t");
    ASSERT_TRUE(t);
    ec = t->put(*txn, Key{}.u64(i).view(), bytes(big));
    if (!ec) ec = txn->commit();
    if (!ec) ++committed;
  }
  EXPECT_EQ(ec, lmdb_error(ENOSPC)) << ec.message();
  // Ahead of the used pages by at least the reserve, all of it committed data.
  EXPECT_GT(committed, 10u);
  EXPECT_LT(committed * big.size(), 40ull << 20);
  auto txn = Txn::begin_read(**env);
  ASSERT_TRUE(txn);
  auto t = Table::open(*txn, "t");
  ASSERT_TRUE(t);
  for (std::size_t i = 0; i < committed; ++i) {
    auto v = t->get(*txn, Key{}.u64(i).view());
    ASSERT_TRUE(v) << i;
    EXPECT_EQ(v->size(), big.size());
  }
  EXPECT_FALSE(t->get(*txn, Key{}.u64(committed).view()));
}

TEST(Env, ReadOnlyOpenOfMissingEnvironmentFails) {
  auto env = Env::open({.path = "/tmp/rm-storage-does-not-exist", .read_only = true});
  EXPECT_FALSE(env);
}

TEST(Table, EraseReportsWhetherARowWasThere) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  auto env = Env::open({.path = dir});
  ASSERT_TRUE(env);
  auto txn = Txn::begin_write(**env);
  auto t = Table::open(*txn, "t");
  ASSERT_TRUE(t);
  ASSERT_FALSE(t->put(*txn, bytes("k"), bytes("v")));
  auto first = t->erase(*txn, bytes("k"));
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(*first);
  EXPECT_FALSE(t->get(*txn, bytes("k")));
  auto again = t->erase(*txn, bytes("k"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  txn->abort();
}

TEST(Table, AnAddedTableAReadOnlyOpenFindsMissingReadsAsEmpty) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  {
    auto env = Env::open({.path = dir});  // an "older version": no table "index"
    ASSERT_TRUE(env);
    auto txn = Txn::begin_write(**env);
    auto t = Table::open(*txn, "rows");
    ASSERT_TRUE(t);
    ASSERT_FALSE(t->put(*txn, bytes("k"), bytes("v")));
    ASSERT_FALSE(txn->commit());
  }
  {
    auto env = Env::open({.path = dir, .read_only = true});
    ASSERT_TRUE(env);
    auto txn = Txn::begin_read(**env);
    ASSERT_TRUE(txn);
    auto plain = Table::open(*txn, "index");
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error(), lmdb_error(MDB_NOTFOUND));
    auto added = Table::open_added(*txn, "index");
    ASSERT_TRUE(added) << added.error().message();
    EXPECT_FALSE(added->get(*txn, bytes("rows")));  // not the main table's names
    int visited = 0;
    added->scan(*txn, {}, [&](auto, auto) { return ++visited, true; });
    EXPECT_EQ(visited, 0);
    EXPECT_EQ(added->count(*txn), 0u);
    EXPECT_FALSE(added->last_with_prefix(*txn, {}));
    EXPECT_EQ(added->put(*txn, bytes("k"), bytes("v")), lmdb_error(EACCES));
  }
  {
    auto env = Env::open({.path = dir});  // the writer creates it
    ASSERT_TRUE(env);
    auto txn = Txn::begin_write(**env);
    auto added = Table::open_added(*txn, "index");
    ASSERT_TRUE(added);
    ASSERT_FALSE(added->put(*txn, bytes("k"), bytes("v")));
    EXPECT_EQ(added->count(*txn), 1u);
    ASSERT_FALSE(txn->commit());
  }
}

TEST(Table, LastWithPrefixFindsHighestKey) {
  const testkit::TempDir tmp("rm-storage");
  const std::string& dir = tmp.path();
  auto env = Env::open({.path = dir});
  auto txn = Txn::begin_write(**env);
  auto t = Table::open(*txn, "t");
  for (std::uint64_t a : {1, 2, 3}) {
    for (std::uint64_t b : {10, 20, 30}) {
      ASSERT_FALSE(t->put(*txn, Key{}.u64(a).u64(b).view(), bytes("v")));
    }
  }
  auto last = t->last_with_prefix(*txn, Key{}.u64(2).view());
  ASSERT_TRUE(last);
  EXPECT_EQ(read_u64_be(last->first, 8), 30u);
  EXPECT_FALSE(t->last_with_prefix(*txn, Key{}.u64(9).view()));
  EXPECT_EQ(t->count(*txn), 9u);
}

namespace {
// Any generated struct serves; capnp's own schema.capnp Node has text, lists
// and many zero fields, like ringmart's records.
void fill_node(capnp::MallocMessageBuilder& b) {
  auto node = b.initRoot<capnp::schema::Node>();
  node.setId(0x1234);
  node.setDisplayName("ringmart.test.Node with a name longer than one segment");
  node.initNestedNodes(3)[2].setName("third");
}

/// A table "t" in a fresh environment, inside one write transaction.
class CapnpValue : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = Env::open({.path = dir_.path()});
    ASSERT_TRUE(env);
    env_ = std::move(*env);
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    txn_.emplace(std::move(*txn));
    auto t = Table::open(*txn_, "t");
    ASSERT_TRUE(t);
    table_ = *t;
  }
  void TearDown() override {
    if (txn_) txn_->abort();
  }
  testkit::TempDir dir_{"rm-storage"};  // first: removed after the rest
  std::unique_ptr<Env> env_;
  std::optional<Txn> txn_;
  Table table_;
};
}  // namespace

TEST_F(CapnpValue, PutFlatMessageStoresTheFlatArrayBytesOfOneOrManySegments) {
  for (unsigned first_segment_words : {1024u, 8u}) {  // 8 words: several segments
    capnp::MallocMessageBuilder b(first_segment_words, capnp::AllocationStrategy::FIXED_SIZE);
    fill_node(b);
    EXPECT_EQ(b.getSegmentsForOutput().size() > 1, first_segment_words == 8u);
    const auto key = Key{}.u64(first_segment_words);
    ASSERT_FALSE(put_flat_message(table_, *txn_, key.view(), b));
    auto stored = table_.get(*txn_, key.view());
    ASSERT_TRUE(stored);
    auto words = to_words(b);
    const auto want = as_bytes(words);
    ASSERT_EQ(stored->size(), want.size()) << first_segment_words;
    EXPECT_EQ(std::memcmp(stored->data(), want.data(), want.size()), 0) << first_segment_words;
    // A flat value (an outbox entry, a record from before packing) reads back.
    auto back = get_message(table_, *txn_, key.view());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->root<capnp::schema::Node>().getNestedNodes()[2].getName(), "third");
  }
}

TEST_F(CapnpValue, PutMessageStoresAPackedRecordSmallerThanFlatThatReadsBackTheSame) {
  for (unsigned first_segment_words : {1024u, 8u}) {
    capnp::MallocMessageBuilder b(first_segment_words, capnp::AllocationStrategy::FIXED_SIZE);
    fill_node(b);
    const auto key = Key{}.u64(first_segment_words);
    ASSERT_FALSE(put_message(table_, *txn_, key.view(), b));
    auto stored = table_.get(*txn_, key.view());
    ASSERT_TRUE(stored);
    ASSERT_FALSE(stored->empty());
    EXPECT_EQ(stored->front(), kPackedTag);
    // The tag, then exactly capnp's packed encoding of the message.
    kj::VectorOutputStream packed;
    capnp::writePackedMessage(packed, b);
    ASSERT_EQ(stored->size(), 1 + packed.getArray().size()) << first_segment_words;
    EXPECT_EQ(std::memcmp(stored->data() + 1, packed.getArray().begin(), stored->size() - 1), 0);
    EXPECT_LT(stored->size(), as_bytes(to_words(b)).size()) << "zero bytes are packed away";
    auto back = get_message(table_, *txn_, key.view());
    ASSERT_TRUE(back);
    auto node = back->root<capnp::schema::Node>();
    EXPECT_EQ(node.getId(), 0x1234u);
    EXPECT_EQ(node.getDisplayName(), "ringmart.test.Node with a name longer than one segment");
    ASSERT_EQ(node.getNestedNodes().size(), 3u);
    EXPECT_EQ(node.getNestedNodes()[2].getName(), "third");
  }
  // A record larger than the reader's first guess (packed runs of zeros
  // expand 128×) still unpacks whole.
  capnp::MallocMessageBuilder big;
  big.initRoot<capnp::schema::Node>().initNestedNodes(2000)[1999].setName("last");
  ASSERT_FALSE(put_message(table_, *txn_, Key{}.u64(1).view(), big));
  auto back = get_message(table_, *txn_, Key{}.u64(1).view());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->root<capnp::schema::Node>().getNestedNodes().size(), 2000u);
  EXPECT_EQ(back->root<capnp::schema::Node>().getNestedNodes()[1999].getName(), "last");
}

TEST_F(CapnpValue, ATruncatedPackedRecordIsAnExceptionNotAShorterRecord) {
  capnp::MallocMessageBuilder b;
  fill_node(b);
  kj::VectorOutputStream packed;
  capnp::writePackedMessage(packed, b);
  std::vector<std::byte> record{kPackedTag};
  for (auto c : packed.getArray()) record.push_back(static_cast<std::byte>(c));
  EXPECT_EQ(StoredMessage(record).root<capnp::schema::Node>().getNestedNodes()[2].getName(),
            "third");
  for (std::size_t cut : {record.size() - 1, record.size() / 2, std::size_t{3}}) {
    EXPECT_THROW(
        {
          StoredMessage m(std::span<const std::byte>(record).first(cut));
          (void)m.root<capnp::schema::Node>().getNestedNodes()[2].getName();
        },
        kj::Exception)
        << "cut at " << cut;
  }
}

}  // namespace
}  // namespace ringmart::storage
