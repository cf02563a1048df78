// SPDX-License-Identifier: Apache-2.0
// safetensors reader/writer and atomic file writes: round trips of every dtype, byte stability,
// half-precision edge values, a file laid out the way Python's writer lays it out, every
// validation error (message names the file and the problem, never a crash) and the "_orig_mod."
// prefix.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <etrm/io/atomic_file.hpp>
#include <etrm/io/error.hpp>
#include <etrm/io/safetensors.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace io = etrm::io;
namespace fs = std::filesystem;

namespace {

// A fresh empty directory per test, removed afterwards.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("etrm_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Builds a file by hand: 8-byte length, header (padded with spaces to a multiple of 8 like
// Python's writer), data.
std::string make_file(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <class T>
std::string le_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// The io_error message of parsing `bytes` as origin "bad.safetensors"; fails the test if none.
std::string parse_error(const std::string& bytes) {
  try {
    (void)io::safetensors_file::parse(bytes, "bad.safetensors");
  } catch (const io::io_error& e) {
    return e.what();
  }
  FAIL("no io_error");
  return {};
}

void check_error(const std::string& bytes, const std::string& expected_part) {
  const std::string msg = parse_error(bytes);
  CAPTURE(msg);
  CHECK(msg.find("'bad.safetensors'") != std::string::npos);
  CHECK(msg.find(expected_part) != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

std::string valid_file() {
  io::safetensors_writer w;
  const std::vector<float> a{1.f, -2.5f, 3.25f, 0.f, 1e-3f, 7.f};
  const std::vector<std::int32_t> b{1, -2, 3};
  w.add_f32("layer.a", {2, 3}, a);
  w.add_i32("layer.b", {3}, b);
  w.add_bf16_from_f32("layer.c", {2}, std::vector<float>{1.f, 2.f});
  w.set_metadata("format", "pt");
  return w.serialize();
}

}  // namespace

TEST_SUITE("io.safetensors") {
  TEST_CASE("round trip of every dtype") {
    const std::vector<double> f64{1.0, -2.5, 1e300, -0.0, std::numeric_limits<double>::denorm_min()};
    const std::vector<float> f32{1.f, -2.5f, 3e38f, -0.f, 1e-40f, 0.1f};
    const std::vector<float> halves{1.f, -2.f, 0.5f, 0.f, -0.25f, 1024.f};  // exact in f16 and bf16
    const std::vector<std::int64_t> i64{0, -1, std::numeric_limits<std::int64_t>::max(),
                                        std::numeric_limits<std::int64_t>::min()};
    const std::vector<std::int32_t> i32{0, -1, std::numeric_limits<std::int32_t>::max(),
                                        std::numeric_limits<std::int32_t>::min()};
    const std::vector<std::int16_t> i16{0, -1, 32767, -32768};
    const std::vector<std::int8_t> i8{0, -1, 127, -128};
    const std::vector<std::uint8_t> u8{0, 1, 200, 255};
    const std::vector<std::uint8_t> bools{0, 1, 1, 0};

    io::safetensors_writer w;
    w.add_f64("f64", {5}, f64);
    w.add_f32("f32", {2, 3}, f32);
    w.add_f16_from_f32("f16", {3, 2}, halves);
    w.add_bf16_from_f32("bf16", {6}, halves);
    w.add_i64("i64", {2, 2}, i64);
    w.add_i32("i32", {4}, i32);
    w.add_raw("i16", io::dtype::i16, {4}, le_bytes(i16));
    w.add_raw("i8", io::dtype::i8, {4}, le_bytes(i8));
    w.add_raw("u8", io::dtype::u8, {2, 2}, le_bytes(u8));
    w.add_raw("bool", io::dtype::boolean, {4}, le_bytes(bools));
    w.add_f32("scalar", {}, std::vector<float>{42.f});
    w.add_f32("empty", {0, 3}, std::vector<float>{});
    w.set_metadata("step", "1000");
    w.set_metadata("format", "pt");

    const std::string bytes = w.serialize();
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);

    const auto f = io::safetensors_file::parse(bytes, "mem");
    CHECK(f.origin() == "mem");
    CHECK(f.names().size() == 12);
    CHECK(f.metadata().at("step") == "1000");
    CHECK(f.metadata().at("format") == "pt");

    CHECK(f.read_f64("f64") == f64);
    CHECK(f.read_f32("f32", {2, 3}) == f32);
    CHECK(f.read_f32("f16") == halves);
    CHECK(f.read_f32("bf16") == halves);
    CHECK(f.read_i64("i64") == i64);
    CHECK(f.read_i32("i32") == i32);
    CHECK(f.read_i32("i16") == std::vector<std::int32_t>{0, -1, 32767, -32768});
    CHECK(f.read_i32("i8") == std::vector<std::int32_t>{0, -1, 127, -128});
    CHECK(f.read_i32("u8", {2, 2}) == std::vector<std::int32_t>{0, 1, 200, 255});
    CHECK(f.read_i32("bool") == std::vector<std::int32_t>{0, 1, 1, 0});
    CHECK(f.read_f32("scalar", {}) == std::vector<float>{42.f});
    CHECK(f.read_f32("empty", {0, 3}).empty());

    CHECK(f.info("f16").type == io::dtype::f16);
    CHECK(f.info("f16").shape == std::vector<std::int64_t>{3, 2});
    CHECK(f.info("u8").numel() == 4);
    CHECK(f.info("scalar").numel() == 1);
    CHECK(f.info("empty").numel() == 0);
    CHECK(f.bytes("i8") == le_bytes(i8));

    // Cross-type reads.
    CHECK(f.read_f64("f32")[5] == double(0.1f));
    CHECK(f.read_f64("bf16") == std::vector<double>(halves.begin(), halves.end()));
    CHECK(f.read_f32("f64")[1] == -2.5f);
    CHECK(f.read_i64("i8") == std::vector<std::int64_t>{0, -1, 127, -128});
  }

  TEST_CASE("serialization is byte-stable and independent of insertion order") {
    const std::string a = valid_file();
    CHECK(a == valid_file());

    io::safetensors_writer w;
    w.set_metadata("format", "pt");
    w.add_bf16_from_f32("layer.c", {2}, std::vector<float>{1.f, 2.f});
    w.add_i32("layer.b", {3}, std::vector<std::int32_t>{1, -2, 3});
    w.add_f32("layer.a", {2, 3}, std::vector<float>{1.f, -2.5f, 3.25f, 0.f, 1e-3f, 7.f});
    CHECK(w.serialize() == a);
    CHECK(w.serialize() == w.serialize());

    // Tensors are laid out in name order.
    const auto f = io::safetensors_file::parse(a, "mem");
    CHECK(f.info("layer.a").begin == 0);
    CHECK(f.info("layer.b").begin == f.info("layer.a").end);
    CHECK(f.info("layer.c").begin == f.info("layer.b").end);
  }

  TEST_CASE("bf16 conversions on edge values") {
    CHECK(io::f32_to_bf16(0.f) == 0x0000);
    CHECK(io::f32_to_bf16(-0.f) == 0x8000);
    CHECK(io::f32_to_bf16(1.f) == 0x3f80);
    CHECK(io::f32_to_bf16(-2.f) == 0xc000);
    CHECK(io::f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(io::f32_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
    CHECK(std::isnan(io::bf16_to_f32(io::f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    // A NaN whose payload lives only in the low bits must stay NaN, not round to infinity.
    CHECK(std::isnan(io::bf16_to_f32(io::f32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
    CHECK(std::isnan(io::bf16_to_f32(io::f32_to_bf16(std::bit_cast<float>(0x7fffffffu)))));
    // Round to nearest, ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
    CHECK(io::f32_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even stays
    CHECK(io::f32_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
    CHECK(io::f32_to_bf16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);  // above the tie
    CHECK(io::f32_to_bf16(std::bit_cast<float>(0x3f807fffu)) == 0x3f80);  // below the tie
    // The largest float rounds up to infinity; the largest bf16 is exact.
    CHECK(io::f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);
    CHECK(io::bf16_to_f32(0x7f7f) == std::bit_cast<float>(0x7f7f0000u));
    // Subnormals keep their bits.
    CHECK(io::f32_to_bf16(std::bit_cast<float>(0x00010000u)) == 0x0001);
    CHECK(io::bf16_to_f32(0x0001) == std::bit_cast<float>(0x00010000u));
    CHECK(io::bf16_to_f32(0x3f80) == 1.f);
    CHECK(io::bf16_to_f32(0xff80) == -std::numeric_limits<float>::infinity());
    // Every bf16 round-trips exactly (NaNs as NaN).
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
      const float v = io::bf16_to_f32(std::uint16_t(h));
      if (std::isnan(v)) continue;
      REQUIRE(io::f32_to_bf16(v) == h);
    }
  }

  TEST_CASE("f16 conversions on edge values") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(io::f16_to_f32(0x0000) == 0.f);
    CHECK(std::signbit(io::f16_to_f32(0x8000)));
    CHECK(io::f16_to_f32(0x3c00) == 1.f);
    CHECK(io::f16_to_f32(0xc000) == -2.f);
    CHECK(io::f16_to_f32(0x7bff) == 65504.f);                  // largest finite
    CHECK(io::f16_to_f32(0x0400) == std::ldexp(1.f, -14));     // smallest normal
    CHECK(io::f16_to_f32(0x0001) == std::ldexp(1.f, -24));     // smallest subnormal
    CHECK(io::f16_to_f32(0x03ff) == std::ldexp(1023.f, -24));  // largest subnormal
    CHECK(io::f16_to_f32(0x8001) == -std::ldexp(1.f, -24));
    CHECK(io::f16_to_f32(0x7c00) == inf);
    CHECK(io::f16_to_f32(0xfc00) == -inf);
    CHECK(std::isnan(io::f16_to_f32(0x7e00)));
    CHECK(std::isnan(io::f16_to_f32(0x7c01)));

    CHECK(io::f32_to_f16(0.f) == 0x0000);
    CHECK(io::f32_to_f16(-0.f) == 0x8000);
    CHECK(io::f32_to_f16(1.f) == 0x3c00);
    CHECK(io::f32_to_f16(65504.f) == 0x7bff);
    CHECK(io::f32_to_f16(65519.f) == 0x7bff);  // below the halfway point to 65536
    CHECK(io::f32_to_f16(65520.f) == 0x7c00);  // the tie rounds to even, i.e. infinity
    CHECK(io::f32_to_f16(1e6f) == 0x7c00);
    CHECK(io::f32_to_f16(-1e6f) == 0xfc00);
    CHECK(io::f32_to_f16(inf) == 0x7c00);
    CHECK(io::f32_to_f16(-inf) == 0xfc00);
    CHECK(std::isnan(io::f16_to_f32(io::f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isnan(io::f16_to_f32(io::f32_to_f16(std::bit_cast<float>(0x7f800001u)))));
    // Ties to even among normals: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
    CHECK(io::f32_to_f16(1.f + std::ldexp(1.f, -11)) == 0x3c00);
    CHECK(io::f32_to_f16(1.f + 3 * std::ldexp(1.f, -11)) == 0x3c02);
    CHECK(io::f32_to_f16(std::nextafter(1.f + std::ldexp(1.f, -11), 2.f)) == 0x3c01);
    // Subnormals and underflow.
    CHECK(io::f32_to_f16(std::ldexp(1.f, -24)) == 0x0001);
    CHECK(io::f32_to_f16(std::ldexp(1.f, -25)) == 0x0000);                       // tie to even zero
    CHECK(io::f32_to_f16(std::nextafter(std::ldexp(1.f, -25), 1.f)) == 0x0001);  // just above the tie
    CHECK(io::f32_to_f16(std::ldexp(3.f, -25)) == 0x0002);                       // 1.5 ulp: tie to even 2
    CHECK(io::f32_to_f16(std::ldexp(1.f, -26)) == 0x0000);
    CHECK(io::f32_to_f16(-std::ldexp(1.f, -26)) == 0x8000);
    CHECK(io::f32_to_f16(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(io::f32_to_f16(std::ldexp(1023.5f, -24)) == 0x0400);  // rounds up into the smallest normal
    CHECK(io::f32_to_f16(std::ldexp(1.f, -14)) == 0x0400);
    // Every f16 round-trips exactly (NaNs as NaN).
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
      const float v = io::f16_to_f32(std::uint16_t(h));
      if (std::isnan(v)) {
        REQUIRE(std::isnan(io::f16_to_f32(io::f32_to_f16(v))));
        continue;
      }
      REQUIRE(io::f32_to_f16(v) == h);
    }
    // Against double-precision rounding for random floats in the half range.
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-70000.f, 70000.f);
    for (int i = 0; i < 20000; ++i) {
      const float x = i % 2 ? dist(rng) : dist(rng) * 1e-6f;
      const std::uint16_t h = io::f32_to_f16(x);
      const float y = io::f16_to_f32(h);
      if (std::isinf(y)) {
        REQUIRE(std::fabs(x) >= 65520.f);
        continue;
      }
      // No other half is closer.
      const float up = io::f16_to_f32(std::uint16_t(h + 1)), down = io::f16_to_f32(std::uint16_t(h - 1));
      if ((h & 0x7fff) != 0 && (h & 0x7fff) != 0x7bff) {
        REQUIRE(std::fabs(double(x) - y) <= std::fabs(double(x) - up));
        REQUIRE(std::fabs(double(x) - y) <= std::fabs(double(x) - down));
      }
    }
  }

  TEST_CASE("reads a file laid out like Python's safetensors writer") {
    // safetensors.torch.save_file({"weight": torch.tensor([[1., 2.], [3., 4.]]),
    //   "bias": torch.tensor([0.5, -1.], dtype=torch.bfloat16), "steps": torch.tensor([7])},
    //   metadata={"format": "pt"}): __metadata__ first, keys in dtype/shape/data_offsets order,
    // tensors ordered by alignment then name, header padded with spaces.
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"bias":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},)"
        R"("steps":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
        R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})";
    std::string data;
    data += std::string("\x07\0\0\0\0\0\0\0", 8);                // 7 as I64
    data += std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1.f, 2.f
    data += std::string("\x00\x00\x40\x40\x00\x00\x80\x40", 8);  // 3.f, 4.f
    data += std::string("\x00\x3f\x80\xbf", 4);                  // bf16 0.5, -1
    const std::string bytes = make_file(header, data);
    CHECK((bytes.size() - data.size()) % 8 == 0);

    const auto f = io::safetensors_file::parse(bytes, "model.safetensors");
    CHECK(f.metadata().size() == 1);
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.names() == std::vector<std::string>{"bias", "steps", "weight"});
    CHECK(f.read_f32("weight", {2, 2}) == std::vector<float>{1.f, 2.f, 3.f, 4.f});
    CHECK(f.read_f32("bias") == std::vector<float>{0.5f, -1.f});
    CHECK(f.read_i32("steps") == std::vector<std::int32_t>{7});
    CHECK(f.info("weight").begin == 8);
    CHECK(f.info("weight").end == 24);

    // An unpadded header and no metadata are fine too.
    const auto g = io::safetensors_file::parse(make_file(R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                                         std::string("\x00\x00\x80\x3f", 4), false),
                                               "mem");
    CHECK(g.metadata().empty());
    CHECK(g.read_f32("x", {}) == std::vector<float>{1.f});
  }

  TEST_CASE("_orig_mod. prefix is accepted in both directions") {
    io::safetensors_writer w;
    w.add_f32("_orig_mod.net.w", {2}, std::vector<float>{1.f, 2.f});
    w.add_f32("plain", {1}, std::vector<float>{3.f});
    const auto f = io::safetensors_file::parse(w.serialize(), "compiled.safetensors");
    CHECK(f.contains("net.w"));
    CHECK(f.contains("_orig_mod.net.w"));
    CHECK(f.read_f32("net.w", {2}) == std::vector<float>{1.f, 2.f});
    CHECK(f.info("net.w").name == "_orig_mod.net.w");
    CHECK(f.contains("_orig_mod.plain"));
    CHECK(f.read_f32("_orig_mod.plain") == std::vector<float>{3.f});
    CHECK_FALSE(f.contains("net"));
    CHECK(io::strip_orig_mod_prefix("_orig_mod.a.b") == "a.b");
    CHECK(io::strip_orig_mod_prefix("a.b") == "a.b");
  }

  TEST_CASE("every malformed file gives a one-line io_error naming the file and the problem") {
    const std::string f32_1 = std::string("\x00\x00\x80\x3f", 4);
    check_error("", "shorter than the 8-byte header length");
    check_error(std::string("\x10\0\0", 3), "file is 3 bytes");
    check_error(make_file("", "") + "", "malformed header");  // zero-length header
    {
      std::string b = make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_1);
      b[0] = char(0xff);  // header length far beyond the file
      check_error(b, "truncated: header length");
      std::string huge(8, char(0xff));
      check_error(huge + "{}", "truncated: header length is 18446744073709551615 bytes");
    }
    check_error(make_file(R"({"x":{"dtype":"F32")", ""), "malformed header: invalid JSON");
    check_error(make_file("not json at all", ""), "malformed header: invalid JSON");
    check_error(make_file("[1,2,3]", ""), "malformed header: not a JSON object");
    check_error(make_file(R"({"x":5})", ""), "tensor 'x' is not an object");
    check_error(make_file(R"({"x":{"shape":[1],"data_offsets":[0,4]}})", f32_1), "tensor 'x' has no 'dtype'");
    check_error(make_file(R"({"x":{"dtype":"F32","data_offsets":[0,4]}})", f32_1), "tensor 'x' has no 'shape'");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[1]}})", f32_1), "tensor 'x' has no 'data_offsets'");
    check_error(make_file(R"({"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "a"),
                "tensor 'x' has unknown dtype 'F8_E4M3'");
    check_error(make_file(R"({"x":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", f32_1), "tensor 'x' has a dtype");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":5,"data_offsets":[0,4]}})", f32_1),
                "tensor 'x' has a shape that is not an array");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", f32_1),
                "shape entry that is not an integer");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", f32_1),
                "tensor 'x' has negative dimension -1");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", f32_1),
                "tensor 'x' needs data_offsets of two non-negative integers");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", f32_1),
                "needs data_offsets of two non-negative integers");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", f32_1), "end before they begin");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_1),
                "truncated: tensor 'x' ends at byte 8 but the data section has 4 bytes");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", f32_1),
                "tensor 'x' has 4 bytes but F32 [2] needs 8");
    check_error(make_file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", f32_1),
                "needs more than 2^64");
    check_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          f32_1 + f32_1),
                "tensors 'a' and 'b' overlap");
    check_error(make_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__ value of 'k' is not a string");
    check_error(make_file(R"({"__metadata__":[1]})", ""), "__metadata__ is not an object");

    // Empty tensors at the same offset do not overlap anything.
    CHECK_NOTHROW(
        (void)io::safetensors_file::parse(make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                                    f32_1),
                                          "mem"));
  }

  TEST_CASE("lookup and conversion errors name the file and tensor") {
    const auto f = io::safetensors_file::parse(valid_file(), "ckpt.safetensors");
    auto message = [](auto fn) -> std::string {
      try {
        fn();
      } catch (const io::io_error& e) {
        return e.what();
      }
      return "no io_error";
    };
    CHECK(message([&] { (void)f.info("missing"); }) == "'ckpt.safetensors': tensor 'missing' not found");
    CHECK(message([&] { (void)f.read_f32("missing"); }) == "'ckpt.safetensors': tensor 'missing' not found");
    CHECK(message([&] {
            (void)f.read_f32("layer.a", {3, 2});
          }) == "'ckpt.safetensors': tensor 'layer.a' has shape [2, 3], expected [3, 2]");
    CHECK(message([&] { (void)f.read_i32("layer.b", {}); }) ==
          "'ckpt.safetensors': tensor 'layer.b' has shape [3], expected []");
    CHECK(message([&] { (void)f.read_f32("layer.b"); }) ==
          "'ckpt.safetensors': tensor 'layer.b' has dtype I32, cannot read it as float");
    CHECK(message([&] { (void)f.read_i32("layer.a"); }) ==
          "'ckpt.safetensors': tensor 'layer.a' has dtype F32, cannot read it as int32");
    CHECK(message([&] { (void)f.read_f64("layer.b"); }).find("cannot read it as double") != std::string::npos);

    io::safetensors_writer w;
    w.add_i64("big", {3}, std::vector<std::int64_t>{1, 3000000000LL, 2});
    w.add_raw("flags", io::dtype::boolean, {2}, std::string("\x01\x02", 2));
    const auto g = io::safetensors_file::parse(w.serialize(), "ints.safetensors");
    CHECK(message([&] { (void)g.read_i32("big"); }) ==
          "'ints.safetensors': tensor 'big' value 3000000000 at index 1 does not fit in int32");
    CHECK(g.read_i64("big")[1] == 3000000000LL);
    CHECK(message([&] { (void)g.read_i32("flags"); }) ==
          "'ints.safetensors': tensor 'flags' has invalid BOOL byte 2 at index 1");
  }

  TEST_CASE("every truncation and random corruption throws io_error, never crashes") {
    const std::string good = valid_file();
    REQUIRE_NOTHROW((void)io::safetensors_file::parse(good, "mem"));
    for (std::size_t len = 0; len < good.size(); ++len) {
      CAPTURE(len);
      CHECK_THROWS_AS((void)io::safetensors_file::parse(good.substr(0, len), "cut.safetensors"), io::io_error);
    }
    // Random byte flips must either parse or fail with io_error; any other exception fails here.
    std::mt19937 rng(123);
    for (int trial = 0; trial < 3000; ++trial) {
      std::string b = good;
      const int flips = 1 + int(rng() % 4);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] = char(rng() & 0xff);
      try {
        const auto f = io::safetensors_file::parse(b, "fuzz");
        for (const auto& name : f.names()) {
          try {
            (void)f.read_f64(name);
          } catch (const io::io_error&) {
          }
          try {
            (void)f.read_i64(name);
          } catch (const io::io_error&) {
          }
        }
      } catch (const io::io_error& e) {
        CHECK(std::string(e.what()).find("'fuzz'") != std::string::npos);
      }
    }
  }

  TEST_CASE("load and save through the filesystem") {
    temp_dir dir;
    const fs::path p = dir.path / "model.safetensors";
    io::safetensors_writer w;
    w.add_f32("w", {2}, std::vector<float>{1.f, 2.f});
    w.set_metadata("format", "pt");
    w.save(p);
    CHECK(read_all(p) == w.serialize());
    const auto f = io::safetensors_file::load(p);
    CHECK(f.origin() == p.string());
    CHECK(f.read_f32("w") == std::vector<float>{1.f, 2.f});

    try {
      (void)io::safetensors_file::load(dir.path / "nope.safetensors");
      FAIL("no io_error");
    } catch (const io::io_error& e) {
      CHECK(std::string(e.what()) ==
            "cannot read '" + (dir.path / "nope.safetensors").string() + "': No such file or directory");
    }
    CHECK_THROWS_WITH_AS((void)io::safetensors_file::load(dir.path), doctest::Contains("Is a directory"), io::io_error);

    // A damaged file on disk names its path.
    const std::string full = read_all(p);
    io::write_file_atomic(p, std::string_view(full).substr(0, full.size() - 1));
    try {
      (void)io::safetensors_file::load(p);
      FAIL("no io_error");
    } catch (const io::io_error& e) {
      CHECK(std::string(e.what()) ==
            "'" + p.string() + "': truncated: tensor 'w' ends at byte 8 but the data section has 7 bytes");
    }
  }
}

TEST_SUITE("io.atomic_file") {
  TEST_CASE("a missing directory gives a clear io_error") {
    temp_dir dir;
    const fs::path p = dir.path / "no_such_dir" / "out.bin";
    try {
      io::write_file_atomic(p, "abc");
      FAIL("no io_error");
    } catch (const io::io_error& e) {
      CHECK(std::string(e.what()) == "cannot write '" + p.string() + "': No such file or directory");
    }
    CHECK_THROWS_AS(io::write_file_atomic(p, [](std::ostream& o) { o << "x"; }), io::io_error);
    CHECK_FALSE(fs::exists(dir.path / "no_such_dir"));

    // A parent that is a regular file.
    io::write_file_atomic(dir.path / "plain", "x");
    const fs::path q = dir.path / "plain" / "out.bin";
    CHECK_THROWS_WITH_AS(io::write_file_atomic(q, "abc"),
                         ("cannot write '" + q.string() + "': Not a directory").c_str(), io::io_error);
  }

  TEST_CASE("an existing target is replaced and no temporary remains") {
    temp_dir dir;
    const fs::path p = dir.path / "state.json";
    io::write_file_atomic(p, "old content");
    CHECK(read_all(p) == "old content");
    io::write_file_atomic(p, std::string("new"));
    CHECK(read_all(p) == "new");
    io::write_file_atomic(p, [](std::ostream& o) {
      o << "streamed ";
      const std::string big(200000, 'z');  // larger than the stream buffer
      o.write(big.data(), std::streamsize(big.size()));
      o << " end";
    });
    const std::string s = read_all(p);
    CHECK(s.size() == 9 + 200000 + 4);
    CHECK(s.starts_with("streamed zz"));
    CHECK(s.ends_with("z end"));
    io::write_file_atomic(p, "");
    CHECK(fs::file_size(p) == 0);

    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) {
      ++entries;
      CHECK(e.path().filename() == "state.json");
    }
    CHECK(entries == 1);
  }

  TEST_CASE("a throwing writer leaves the old file intact and no temporary") {
    temp_dir dir;
    const fs::path p = dir.path / "keep.txt";
    io::write_file_atomic(p, "precious");
    CHECK_THROWS_AS(io::write_file_atomic(p,
                                          [](std::ostream& o) {
                                            o << "half-written";
                                            throw std::runtime_error("boom");
                                          }),
                    std::runtime_error);
    CHECK(read_all(p) == "precious");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
  }

  TEST_CASE("a read-only directory gives a clear io_error and keeps the old file") {
    if (::geteuid() == 0) return;  // root ignores permissions
    temp_dir dir;
    const fs::path p = dir.path / "f.txt";
    io::write_file_atomic(p, "old");
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
    try {
      io::write_file_atomic(p, "new");
      FAIL("no io_error");
    } catch (const io::io_error& e) {
      CHECK(std::string(e.what()) == "cannot write '" + p.string() + "': Permission denied");
    }
    fs::permissions(dir.path, fs::perms::owner_all);
    CHECK(read_all(p) == "old");
  }
}

TEST_CASE("remove_stale_temporaries removes what a killed writer left, nothing else") {
  temp_dir dir;
  const fs::path target = dir.path / "ckpt.safetensors";
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  ::waitpid(child, &status, 0);  // now a pid without a process
  const auto touch = [&](const std::string& name) { std::ofstream(dir.path / name) << "x"; };
  touch("ckpt.safetensors.tmp." + std::to_string(child));
  touch("ckpt.safetensors.tmp." + std::to_string(::getpid()));  // a live writer's
  touch("ckpt.safetensors.tmp.notapid");
  touch("other.safetensors.tmp." + std::to_string(child));
  CHECK(io::remove_stale_temporaries(target) == 1);
  CHECK_FALSE(fs::exists(dir.path / ("ckpt.safetensors.tmp." + std::to_string(child))));
  CHECK(fs::exists(dir.path / ("ckpt.safetensors.tmp." + std::to_string(::getpid()))));
  CHECK(fs::exists(dir.path / "ckpt.safetensors.tmp.notapid"));
  CHECK(fs::exists(dir.path / ("other.safetensors.tmp." + std::to_string(child))));
}
