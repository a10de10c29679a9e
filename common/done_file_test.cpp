// deliver/done_file_test.cpp: the per-recipient record of an entry.
#include "common/done_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

TEST_CASE("done file: a missing file means no recipient finished") {
  TempDir dir;
  auto done = read_done((dir.path() / "done").string(), 3);
  REQUIRE(done);
  CHECK(*done == std::vector<bool>{false, false, false});
}

TEST_CASE("done file: appended indexes read back as finished, the file is 0640") {
  TempDir dir;
  std::string path = (dir.path() / "done").string();
  REQUIRE(append_done(path, 2));
  REQUIRE(append_done(path, 0));
  CHECK(dir.read("done") == "2\n0\n");
  auto done = read_done(path, 4);
  REQUIRE(done);
  CHECK(*done == std::vector<bool>{true, false, true, false});
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("done file: torn, foreign and out-of-range lines do not count") {
  TempDir dir;
  dir.write("done", "1\nx\n\n7\n-1\n3");  // "3" lost its newline in a crash
  std::string path = (dir.path() / "done").string();
  auto done = read_done(path, 4);
  REQUIRE(done);
  CHECK(*done == std::vector<bool>{false, true, false, false});
}

TEST_CASE("done file: an append after a torn line starts a new line") {
  TempDir dir;
  dir.write("done", "1\n1");  // a crash tore "12\n"
  std::string path = (dir.path() / "done").string();
  REQUIRE(append_done(path, 12));
  CHECK(dir.read("done") == "1\n1\n12\n");
  auto done = read_done(path, 13);
  REQUIRE(done);
  CHECK((*done)[12]);
  CHECK((*done)[1]);
  CHECK_FALSE((*done)[11]);
}
