// SPDX-License-Identifier: Apache-2.0
// Our own reader and writer of the safetensors format, so checkpoints move between this library
// and PyTorch without a Python or Rust dependency. Layout: an 8-byte little-endian u64 N, N bytes
// of JSON header {"<name>": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}
// and the data section, offsets being relative to its first byte.
//
// The reader loads the whole file into memory and validates the header completely before anything
// is handed out, so a damaged file fails in load() with one io_error line naming the file and the
// problem, never later and never with a crash. The writer pads the header with spaces to a multiple
// of 8 and lays tensors out sorted by name: equal content gives equal bytes.
//
// Names saved from a torch.compile'd module carry a "_orig_mod." prefix. Lookups (contains, info,
// read_*) accept either spelling: the exact name is tried first, then the name with the prefix
// added or removed. names() returns the names as stored; strip_orig_mod_prefix() normalises one.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <etrm/core/config.hpp>
#include <etrm/core/bfloat16.hpp>
#include <etrm/io/atomic_file.hpp>
#include <etrm/io/bounded_read.hpp>
#include <etrm/io/error.hpp>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace io {

// The format is little-endian; a big-endian port would need byte swaps in read/add.
static_assert(std::endian::native == std::endian::little, "safetensors io assumes a little-endian host");

enum class dtype { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

inline constexpr std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f64:
      return "F64";
    case dtype::f32:
      return "F32";
    case dtype::f16:
      return "F16";
    case dtype::bf16:
      return "BF16";
    case dtype::i64:
      return "I64";
    case dtype::i32:
      return "I32";
    case dtype::i16:
      return "I16";
    case dtype::i8:
      return "I8";
    case dtype::u8:
      return "U8";
    case dtype::boolean:
      return "BOOL";
  }
  return "?";
}

inline constexpr std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f64:
    case dtype::i64:
      return 8;
    case dtype::f32:
    case dtype::i32:
      return 4;
    case dtype::f16:
    case dtype::bf16:
    case dtype::i16:
      return 2;
    case dtype::i8:
    case dtype::u8:
    case dtype::boolean:
      return 1;
  }
  return 0;
}

inline std::optional<dtype> parse_dtype(std::string_view s) {
  for (dtype t : {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64, dtype::i32, dtype::i16, dtype::i8,
                  dtype::u8, dtype::boolean})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

// ---- half-precision conversions (round-to-nearest-even on the way down; bf16 in core) ----

using etrm::bf16_to_f32;
using etrm::f32_to_bf16;

inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = std::ldexp(float(mant), -24);  // zero or subnormal: mant * 2^-24, exact in float
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline std::uint16_t f32_to_f16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  const std::uint32_t exp = (x >> 23) & 0xffu, mant = x & 0x7fffffu;
  if (exp == 0xff) return std::uint16_t(sign | 0x7c00u | (mant ? 0x0200u | (mant >> 13) : 0u));
  if (exp > 142) return std::uint16_t(sign | 0x7c00u);  // >= 2^16: beyond the largest half
  if (exp >= 113) {                                     // normal half
    std::uint32_t h = ((exp - 112u) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct, up to inf
    return std::uint16_t(sign | h);
  }
  if (exp < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself is a tie to even zero)
  // Subnormal half: the value is m * 2^(exp-150) with the implicit bit, i.e. (m >> shift) * 2^-24.
  const std::uint32_t m = mant | 0x800000u;
  const unsigned shift = 126u - exp;  // 14..24
  std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // may reach 0x400, the smallest normal: still right
  return std::uint16_t(sign | q);
}

inline constexpr std::string_view orig_mod_prefix = "_orig_mod.";

inline std::string strip_orig_mod_prefix(std::string_view name) {
  if (name.starts_with(orig_mod_prefix)) name.remove_prefix(orig_mod_prefix.size());
  return std::string(name);
}

inline std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

struct tensor_info {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0, end = 0;  // byte range within the data section

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
};

class safetensors_file {
 public:
  // Limits on untrusted sizes. The file limit is far above any etrm checkpoint (a 7M-parameter
  // TRM with its Adam moments is ~120 MB) and can be raised per call; the header limit is the
  // one the reference implementation (safetensors' MAX_HEADER_SIZE) enforces.
  static constexpr std::uint64_t max_file_bytes_default = std::uint64_t(8) << 30;
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  // Reads and validates `path`. Throws io_error "cannot read '<path>': <strerror>", "'<path>':
  // file is N bytes, more than the limit of M bytes for a safetensors file" (before reading it)
  // or one of parse()'s errors.
  static safetensors_file load(const std::filesystem::path& path, std::uint64_t max_file_bytes = max_file_bytes_default) {
    return parse(read_file_bounded(path, max_file_bytes, "a safetensors file"), path.string());
  }

  // Validates `bytes` as a safetensors file; `origin` names it in every error message.
  static safetensors_file parse(std::string bytes, std::string origin) {
    safetensors_file f;
    f.bytes_ = std::move(bytes);
    f.origin_ = std::move(origin);
    f.validate();
    return f;
  }

  const std::string& origin() const { return origin_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // Throws io_error "'<file>': tensor '<name>' not found" when absent under either spelling.
  const tensor_info& info(const std::string& name) const {
    if (const tensor_info* t = find(name)) return *t;
    fail("tensor '" + name + "' not found");
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, _] : tensors_) out.push_back(name);
    return out;
  }

  // The raw little-endian payload.
  std::string_view bytes(const std::string& name) const {
    const tensor_info& t = info(name);
    return std::string_view(bytes_).substr(data_start_ + t.begin, t.end - t.begin);
  }

  // F32, F16, BF16 and F64 (narrowed) as float.
  std::vector<float> read_f32(const std::string& name) const {
    const tensor_info& t = info(name);
    switch (t.type) {
      case dtype::f32:
        return convert<float, float>(t, [](float v) { return v; });
      case dtype::f64:
        return convert<double, float>(t, [](double v) { return float(v); });
      case dtype::f16:
        return convert<std::uint16_t, float>(t, f16_to_f32);
      case dtype::bf16:
        return convert<std::uint16_t, float>(t, bf16_to_f32);
      default:
        wrong_type(t, "float");
    }
  }

  // Any float type as double.
  std::vector<double> read_f64(const std::string& name) const {
    const tensor_info& t = info(name);
    switch (t.type) {
      case dtype::f64:
        return convert<double, double>(t, [](double v) { return v; });
      case dtype::f32:
        return convert<float, double>(t, [](float v) { return double(v); });
      case dtype::f16:
        return convert<std::uint16_t, double>(t, [](std::uint16_t v) { return double(f16_to_f32(v)); });
      case dtype::bf16:
        return convert<std::uint16_t, double>(t, [](std::uint16_t v) { return double(bf16_to_f32(v)); });
      default:
        wrong_type(t, "double");
    }
  }

  // Any integer type or BOOL as int32; values outside int32 throw io_error.
  std::vector<std::int32_t> read_i32(const std::string& name) const { return read_int<std::int32_t>(info(name)); }

  // Any integer type or BOOL as int64.
  std::vector<std::int64_t> read_i64(const std::string& name) const { return read_int<std::int64_t>(info(name)); }

  // The same, after checking the shape: "'<file>': tensor '<name>' has shape [..], expected [..]".
  std::vector<float> read_f32(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    check_shape(name, expected_shape);
    return read_f32(name);
  }
  std::vector<double> read_f64(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    check_shape(name, expected_shape);
    return read_f64(name);
  }
  std::vector<std::int32_t> read_i32(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    check_shape(name, expected_shape);
    return read_i32(name);
  }
  std::vector<std::int64_t> read_i64(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    check_shape(name, expected_shape);
    return read_i64(name);
  }

  void check_shape(const std::string& name, const std::vector<std::int64_t>& expected_shape) const {
    const tensor_info& t = info(name);
    if (t.shape != expected_shape)
      fail("tensor '" + t.name + "' has shape " + shape_to_string(t.shape) + ", expected " +
           shape_to_string(expected_shape));
  }

 private:
  safetensors_file() = default;

  [[noreturn]] void fail(const std::string& what) const { throw io_error("'" + origin_ + "': " + what); }

  [[noreturn]] void wrong_type(const tensor_info& t, const char* as) const {
    fail("tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) + ", cannot read it as " + as);
  }

  const tensor_info* find(const std::string& name) const {
    if (auto it = tensors_.find(name); it != tensors_.end()) return &it->second;
    const std::string other =
        name.starts_with(orig_mod_prefix) ? strip_orig_mod_prefix(name) : std::string(orig_mod_prefix) + name;
    if (auto it = tensors_.find(other); it != tensors_.end()) return &it->second;
    return nullptr;
  }

  template <class Src, class Dst, class F>
  std::vector<Dst> convert(const tensor_info& t, F f) const {
    const std::size_t n = (t.end - t.begin) / sizeof(Src);
    std::vector<Dst> out(n);
    const char* p = bytes_.data() + data_start_ + t.begin;
    for (std::size_t i = 0; i < n; ++i) {
      Src v;
      std::memcpy(&v, p + i * sizeof(Src), sizeof(Src));  // the data need not be aligned
      out[i] = f(v);
    }
    return out;
  }

  template <class Out>
  std::vector<Out> read_int(const tensor_info& t) const {
    auto narrow = [&](auto v, std::size_t i) {
      if constexpr (sizeof(v) > sizeof(Out)) {
        if (v < decltype(v)(std::numeric_limits<Out>::min()) || v > decltype(v)(std::numeric_limits<Out>::max()))
          fail("tensor '" + t.name + "' value " + std::to_string(v) + " at index " + std::to_string(i) +
               " does not fit in int" + std::to_string(8 * sizeof(Out)));
      }
      return Out(v);
    };
    std::vector<Out> out;
    auto run = [&](auto tag) {
      using Src = decltype(tag);
      std::size_t i = 0;
      out = convert<Src, Out>(t, [&](Src v) { return narrow(v, i++); });
    };
    switch (t.type) {
      case dtype::i64:
        run(std::int64_t{});
        break;
      case dtype::i32:
        run(std::int32_t{});
        break;
      case dtype::i16:
        run(std::int16_t{});
        break;
      case dtype::i8:
        run(std::int8_t{});
        break;
      case dtype::u8:
        run(std::uint8_t{});
        break;
      case dtype::boolean: {
        std::size_t i = 0;
        out = convert<std::uint8_t, Out>(t, [&](std::uint8_t v) {
          if (v > 1)
            fail("tensor '" + t.name + "' has invalid BOOL byte " + std::to_string(v) + " at index " +
                 std::to_string(i));
          ++i;
          return Out(v);
        });
        break;
      }
      default:
        wrong_type(t, sizeof(Out) == 4 ? "int32" : "int64");
    }
    return out;
  }

  void validate() {
    if (bytes_.size() < 8)
      fail("file is " + std::to_string(bytes_.size()) + " bytes, shorter than the 8-byte header length");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes_.data(), 8);
    const std::uint64_t available = bytes_.size() - 8;
    if (n > available)
      fail("truncated: header length is " + std::to_string(n) + " bytes but only " + std::to_string(available) +
           " bytes follow");
    if (n > max_header_bytes)
      fail("header length is " + std::to_string(n) + " bytes, more than the limit of " +
           std::to_string(max_header_bytes) + " bytes");
    data_start_ = 8 + std::size_t(n);
    const std::size_t data_size = bytes_.size() - data_start_;

    const nlohmann::json header =
        parse_json_bounded(std::string_view(bytes_).substr(8, std::size_t(n)),
                           [&](const std::string& problem) { fail("malformed header: " + problem); });
    if (!header.is_object()) fail("malformed header: not a JSON object");

    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        if (!value.is_object()) fail("malformed header: __metadata__ is not an object");
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) fail("malformed header: __metadata__ value of '" + k + "' is not a string");
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      tensors_.emplace(key, parse_entry(key, value, data_size));
    }

    // Overlap: sort non-empty ranges by start; each must begin at or after every earlier end.
    std::vector<const tensor_info*> order;
    for (const auto& [_, t] : tensors_)
      if (t.end > t.begin) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    const tensor_info* last = nullptr;  // the range reaching furthest so far
    for (const tensor_info* t : order) {
      if (last && t->begin < last->end)
        fail("tensors '" + last->name + "' and '" + t->name + "' overlap (bytes [" + std::to_string(last->begin) +
             ", " + std::to_string(last->end) + ") and [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
             "))");
      if (!last || t->end > last->end) last = t;
    }
  }

  tensor_info parse_entry(const std::string& name, const nlohmann::json& e, std::size_t data_size) const {
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object()) fail("malformed header: " + where + " is not an object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!e.contains(field)) fail("malformed header: " + where + " has no '" + field + "'");

    tensor_info t;
    t.name = name;
    const auto& jd = e["dtype"];
    if (!jd.is_string()) fail("malformed header: " + where + " has a dtype that is not a string");
    const auto type = parse_dtype(jd.get<std::string>());
    if (!type) fail(where + " has unknown dtype '" + jd.get<std::string>() + "'");
    t.type = *type;

    const auto& js = e["shape"];
    if (!js.is_array()) fail("malformed header: " + where + " has a shape that is not an array");
    std::uint64_t numel = 1;
    bool numel_overflow = false;
    for (const auto& d : js) {
      if (d.is_number_unsigned()) {
        const auto v = d.get<std::uint64_t>();
        if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
          fail(where + " has dimension " + std::to_string(v) + ", too large");
        t.shape.push_back(std::int64_t(v));
      } else if (d.is_number_integer()) {
        fail(where + " has negative dimension " + std::to_string(d.get<std::int64_t>()) + " in its shape");
      } else {
        fail("malformed header: " + where + " has a shape entry that is not an integer");
      }
      const auto v = std::uint64_t(t.shape.back());
      if (v != 0 && numel > std::numeric_limits<std::uint64_t>::max() / v) numel_overflow = true;
      numel *= v;
    }

    const auto& jo = e["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      fail("malformed header: " + where + " needs data_offsets of two non-negative integers");
    const auto begin = jo[0].get<std::uint64_t>(), end = jo[1].get<std::uint64_t>();
    if (begin > end)
      fail(where + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           "] that end before they begin");
    if (end > data_size)
      fail("truncated: " + where + " ends at byte " + std::to_string(end) + " but the data section has " +
           std::to_string(data_size) + " bytes");

    const std::uint64_t have = end - begin, size = dtype_size(t.type);
    const bool too_many = numel_overflow || numel > std::numeric_limits<std::uint64_t>::max() / size;
    if (too_many || numel * size != have)
      fail(where + " has " + std::to_string(have) + " bytes but " + std::string(dtype_name(t.type)) + " " +
           shape_to_string(t.shape) + " needs " +
           (too_many ? std::string("more than 2^64") : std::to_string(numel * size)));
    t.begin = std::size_t(begin);
    t.end = std::size_t(end);
    return t;
  }

  std::string bytes_;
  std::string origin_;
  std::size_t data_start_ = 0;
  std::map<std::string, tensor_info> tensors_;
  std::map<std::string, std::string> metadata_;
};

class safetensors_writer {
 public:
  void add_f32(std::string name, std::vector<std::int64_t> shape, std::span<const float> values) {
    add_values(std::move(name), dtype::f32, std::move(shape), values);
  }
  void add_f64(std::string name, std::vector<std::int64_t> shape, std::span<const double> values) {
    add_values(std::move(name), dtype::f64, std::move(shape), values);
  }
  void add_i32(std::string name, std::vector<std::int64_t> shape, std::span<const std::int32_t> values) {
    add_values(std::move(name), dtype::i32, std::move(shape), values);
  }
  void add_i64(std::string name, std::vector<std::int64_t> shape, std::span<const std::int64_t> values) {
    add_values(std::move(name), dtype::i64, std::move(shape), values);
  }
  void add_bf16_from_f32(std::string name, std::vector<std::int64_t> shape, std::span<const float> values) {
    std::vector<std::uint16_t> h(values.size());
    std::transform(values.begin(), values.end(), h.begin(), f32_to_bf16);
    add_values(std::move(name), dtype::bf16, std::move(shape), std::span<const std::uint16_t>(h));
  }
  void add_f16_from_f32(std::string name, std::vector<std::int64_t> shape, std::span<const float> values) {
    std::vector<std::uint16_t> h(values.size());
    std::transform(values.begin(), values.end(), h.begin(), f32_to_f16);
    add_values(std::move(name), dtype::f16, std::move(shape), std::span<const std::uint16_t>(h));
  }
  // Any dtype from its little-endian bytes (I16, I8, U8, BOOL, pre-converted halves, ...).
  void add_raw(std::string name, dtype type, std::vector<std::int64_t> shape, std::string_view bytes) {
    check_new(name, shape, bytes.size(), dtype_size(type));
    entries_.emplace(std::move(name), entry{type, std::move(shape), std::string(bytes)});
  }

  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // Throws std::invalid_argument when a name or metadata string is not valid UTF-8.
  std::string serialize() const {
    std::string out = header();
    for (const auto& [_, e] : entries_) out += e.bytes;
    return out;
  }

  // Atomic: the file is complete or the previous one is untouched. Streams tensor by tensor.
  void save(const std::filesystem::path& path) const {
    const std::string head = header();
    write_file_atomic(path, [&](std::ostream& out) {
      out.write(head.data(), std::streamsize(head.size()));
      for (const auto& [_, e] : entries_) out.write(e.bytes.data(), std::streamsize(e.bytes.size()));
    });
  }

 private:
  struct entry {
    dtype type;
    std::vector<std::int64_t> shape;
    std::string bytes;
  };

  void check_new(const std::string& name, const std::vector<std::int64_t>& shape, std::size_t bytes,
                 std::size_t elem) const {
    if (name == "__metadata__") throw std::invalid_argument("safetensors: '__metadata__' is not a tensor name");
    if (entries_.count(name)) throw std::invalid_argument("safetensors: tensor '" + name + "' added twice");
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
      if (d < 0) throw std::invalid_argument("safetensors: tensor '" + name + "' has a negative dimension");
      n *= d;
    }
    if (std::uint64_t(n) * elem != bytes)
      throw std::invalid_argument("safetensors: tensor '" + name + "' shape " + shape_to_string(shape) + " needs " +
                                  std::to_string(n) + " values, got " + std::to_string(bytes / elem));
  }

  template <class T>
  void add_values(std::string name, dtype type, std::vector<std::int64_t> shape, std::span<const T> values) {
    check_new(name, shape, values.size_bytes(), sizeof(T));
    std::string bytes(values.size_bytes(), '\0');
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), values.size_bytes());
    entries_.emplace(std::move(name), entry{type, std::move(shape), std::move(bytes)});
  }

  // Length prefix + JSON padded to a multiple of 8. std::map keys make the JSON key order fixed.
  std::string header() const {
    nlohmann::json h = nlohmann::json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const auto& [name, e] : entries_) {
      const std::uint64_t end = offset + e.bytes.size();
      h[name] = {{"dtype", std::string(dtype_name(e.type))}, {"shape", e.shape}, {"data_offsets", {offset, end}}};
      offset = end;
    }
    std::string json;
    try {
      json = h.dump();
    } catch (const nlohmann::json::exception& ex) {
      throw std::invalid_argument(std::string("safetensors: cannot encode header: ") + ex.what());
    }
    json.append((8 - json.size() % 8) % 8, ' ');
    const std::uint64_t n = json.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + json;
  }

  std::map<std::string, entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace io
ETRM_END_NAMESPACE
