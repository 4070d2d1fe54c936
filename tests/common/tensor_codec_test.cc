#include "common/tensor/tensor_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace fedcustoms::tensor {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

NamedTensors SampleTensors() {
  torch::manual_seed(7);
  NamedTensors t;
  t.emplace_back("a.float32", torch::randn({3, 4}));
  t.emplace_back("b.float64", torch::randn({2, 2, 2}, torch::kFloat64));
  t.emplace_back("c.float16", torch::randn({5}).to(torch::kFloat16));
  t.emplace_back("d.bfloat16", torch::randn({2, 3}).to(torch::kBFloat16));
  t.emplace_back("e.int64", torch::arange(-5, 7, torch::kInt64).reshape({3, 4}));
  t.emplace_back("f.int32", torch::arange(0, 6, torch::kInt32));
  t.emplace_back("g.int16", torch::tensor({-3, 0, 3}, torch::kInt16));
  t.emplace_back("h.int8", torch::tensor({-128, 0, 127}, torch::kInt8));
  t.emplace_back("i.uint8", torch::tensor({0, 1, 255}, torch::kUInt8));
  t.emplace_back("j.bool", torch::tensor({true, false, true}));
  t.emplace_back("k.scalar", torch::tensor(3.5));
  t.emplace_back("l.empty", torch::zeros({0, 3}));
  // Non-contiguous: a transpose and a strided slice.
  t.emplace_back("m.transposed", torch::randn({3, 5}).t());
  t.emplace_back("n.strided", torch::arange(20, torch::kFloat32).slice(0, 1, 20, 3));
  return t;
}

void ExpectSameTensors(const NamedTensors& expected, const NamedTensors& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(expected[i].first, actual[i].first);
    EXPECT_EQ(expected[i].second.scalar_type(), actual[i].second.scalar_type());
    EXPECT_EQ(expected[i].second.sizes(), actual[i].second.sizes());
    EXPECT_TRUE(torch::equal(expected[i].second, actual[i].second));
  }
}

// Hand-assembles payloads, field by field, for the error paths.
class Payload {
 public:
  Payload& Raw(std::string_view bytes) {
    bytes_.append(bytes);
    return *this;
  }
  template <typename T>
  Payload& Put(T value) {
    char b[sizeof(T)];
    std::memcpy(b, &value, sizeof(T));
    bytes_.append(b, sizeof(T));
    return *this;
  }
  Payload& Header(uint32_t count) { return Raw("FCT1").Put<uint32_t>(count); }
  Payload& Name(std::string_view name) {
    Put<uint32_t>(static_cast<uint32_t>(name.size()));
    return Raw(name);
  }
  // A complete float32 tensor of shape [n] filled with 1.
  Payload& Float32(std::string_view name, int64_t n) {
    Name(name).Put<uint8_t>(1).Put<uint8_t>(1).Put<int64_t>(n).Put<uint64_t>(4 * n);
    for (int64_t i = 0; i < n; ++i) Put<float>(1.0f);
    return *this;
  }
  const std::string& str() const { return bytes_; }

 private:
  std::string bytes_;
};

absl::Status DecodeStatus(const std::string& bytes) { return DecodeFromString(bytes).status(); }

// A stream buffer that cannot seek, like a socket.
class NoSeekBuf : public std::streambuf {
 public:
  explicit NoSeekBuf(std::string bytes) : bytes_(std::move(bytes)) {
    setg(bytes_.data(), bytes_.data(), bytes_.data() + bytes_.size());
  }

 private:
  std::string bytes_;
};

TEST(TensorCodec, RoundTripsEveryDtypeIncludingNonContiguous) {
  const NamedTensors tensors = SampleTensors();
  absl::StatusOr<std::string> bytes = EncodeToString(tensors);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<NamedTensors> decoded = DecodeFromString(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTensors(tensors, *decoded);
  for (const auto& [name, t] : *decoded) EXPECT_TRUE(t.is_contiguous()) << name;
}

TEST(TensorCodec, SameTensorsEncodeToSameBytesInAnyInputOrder) {
  const NamedTensors tensors = SampleTensors();
  NamedTensors reversed(tensors.rbegin(), tensors.rend());
  NamedTensors copies = CloneState(tensors);
  const std::string a = *EncodeToString(tensors);
  EXPECT_EQ(a, *EncodeToString(tensors));
  EXPECT_EQ(a, *EncodeToString(reversed));
  EXPECT_EQ(a, *EncodeToString(copies));
  // Decoding always yields canonical order.
  ExpectSameTensors(tensors, *DecodeFromString(*EncodeToString(reversed)));
}

TEST(TensorCodec, LayoutMatchesTheDocumentedFormat) {
  NamedTensors t;
  t.emplace_back("w", torch::tensor({1.0f, -2.0f}));
  const std::string expected = Payload()
                                   .Header(1)
                                   .Name("w")
                                   .Put<uint8_t>(1)   // float32
                                   .Put<uint8_t>(1)   // ndim
                                   .Put<int64_t>(2)   // dim 0
                                   .Put<uint64_t>(8)  // byte length
                                   .Put<float>(1.0f)
                                   .Put<float>(-2.0f)
                                   .str();
  EXPECT_EQ(*EncodeToString(t), expected);
  TensorEncoder encoder(t);
  EXPECT_EQ(encoder.TotalBytes(), expected.size());
}

TEST(TensorCodec, StreamingReadInOddPiecesEqualsEncodeToString) {
  const NamedTensors tensors = SampleTensors();
  const std::string whole = *EncodeToString(tensors);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, size_t{13}, size_t{64}, size_t{4097}}) {
    SCOPED_TRACE(piece);
    TensorEncoder encoder(tensors);
    ASSERT_TRUE(encoder.status().ok());
    EXPECT_EQ(encoder.TotalBytes(), whole.size());
    std::string streamed;
    std::vector<char> buffer(piece);
    while (size_t n = encoder.Read(buffer.data(), buffer.size())) {
      ASSERT_TRUE(n == piece || streamed.size() + n == whole.size());
      streamed.append(buffer.data(), n);
    }
    EXPECT_EQ(streamed, whole);
    EXPECT_EQ(encoder.BytesRead(), whole.size());
    EXPECT_EQ(encoder.Read(buffer.data(), buffer.size()), 0u);
  }
}

TEST(TensorCodec, RewindStartsOver) {
  const NamedTensors tensors = SampleTensors();
  TensorEncoder encoder(tensors);
  std::string first(encoder.TotalBytes(), '\0');
  ASSERT_EQ(encoder.Read(first.data(), first.size()), first.size());
  encoder.Rewind();
  std::string second(encoder.TotalBytes(), '\0');
  ASSERT_EQ(encoder.Read(second.data(), second.size()), second.size());
  EXPECT_EQ(first, second);
}

TEST(TensorCodec, DecoderYieldsOneTensorAtATimeFromAStream) {
  const NamedTensors tensors = SampleTensors();
  std::stringstream stream(*EncodeToString(tensors));
  TensorDecoder decoder(stream);
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(next->has_value());
    EXPECT_EQ((*next)->first, tensors[i].first);
    EXPECT_EQ(decoder.TensorCount(), tensors.size());
  }
  auto end = decoder.Next();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_FALSE(end->has_value());
  EXPECT_FALSE(decoder.Next()->has_value());
  EXPECT_EQ(decoder.BytesConsumed(), stream.str().size());
}

TEST(TensorCodec, DecodesFromANonSeekableStream) {
  const NamedTensors tensors = SampleTensors();
  NoSeekBuf buffer(*EncodeToString(tensors));
  std::istream in(&buffer);
  TensorDecoder decoder(in);
  NamedTensors decoded;
  while (true) {
    auto next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    decoded.push_back(**next);
  }
  ExpectSameTensors(tensors, decoded);
}

TEST(TensorCodec, EmptySetRoundTrips) {
  const std::string bytes = *EncodeToString({});
  EXPECT_EQ(bytes, Payload().Header(0).str());
  EXPECT_TRUE(DecodeFromString(bytes)->empty());
}

TEST(TensorCodec, DecodesAWholeFileAndNamesItInErrors) {
  const std::string path = testing::TempDir() + "/tensor_codec_decode_file.fct";
  const NamedTensors tensors = SampleTensors();
  const std::string bytes = *EncodeToString(tensors);
  std::ofstream(path, std::ios::binary) << bytes;
  ExpectSameTensors(tensors, *DecodeFile(path));

  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 3);
  const absl::Status truncated = DecodeFile(path).status();
  EXPECT_EQ(truncated.code(), absl::StatusCode::kInvalidArgument) << truncated;
  EXPECT_THAT(std::string(truncated.message()), ::testing::StartsWith(path + ": "));
  std::remove(path.c_str());

  const absl::Status missing = DecodeFile(path).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "cannot open " + path);
}

TEST(TensorCodec, DtypeCodesAreStable) {
  EXPECT_EQ(ToDtypeCode(torch::kFloat32), DtypeCode::kFloat32);
  EXPECT_EQ(static_cast<int>(DtypeCode::kFloat32), 1);
  EXPECT_EQ(static_cast<int>(DtypeCode::kBool), 10);
  EXPECT_EQ(FromDtypeCode(5), torch::kInt64);
  EXPECT_EQ(FromDtypeCode(0), std::nullopt);
  EXPECT_EQ(ToDtypeCode(torch::kComplexFloat), std::nullopt);
}

// Tests of all the error paths of the encoder and decoder follow.

void ExpectInvalid(const absl::Status& status, const std::string& message) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), message);
}

TEST(TensorCodecErrors, EncoderRejectsWhatTheDecoderWould) {
  auto status_of = [](NamedTensors t) { return TensorEncoder(t).status(); };
  NamedTensors dup{{"a", torch::zeros({1})}, {"a", torch::zeros({1})}};
  ExpectInvalid(status_of(dup), "duplicate tensor name \"a\"");
  ExpectInvalid(status_of({{"", torch::zeros({1})}}), "tensor 0: empty name");
  ExpectInvalid(status_of({{std::string(257, 'x'), torch::zeros({1})}}),
                "tensor 0: name length 257 exceeds 256 bytes");
  ExpectInvalid(status_of({{"bad\xff", torch::zeros({1})}}), "tensor 0: name is not valid UTF-8");
  ExpectInvalid(status_of({{"c", torch::zeros({1}, torch::kComplexFloat)}}),
                "tensor \"c\": dtype ComplexFloat is not supported");
  ExpectInvalid(status_of({{"u", torch::Tensor()}}), "tensor \"u\" is undefined");
  ExpectInvalid(status_of({{"nine", torch::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1})}}),
                "tensor \"nine\": ndim 9 exceeds 8");
  NamedTensors many;
  for (int i = 0; i < 100001; ++i) many.emplace_back(absl::StrCat(i), torch::Tensor());
  ExpectInvalid(status_of(many), "tensor count 100001 exceeds 100000");

  TensorEncoder failed(dup);
  char buffer[16];
  EXPECT_EQ(failed.TotalBytes(), 0u);
  EXPECT_EQ(failed.Read(buffer, sizeof(buffer)), 0u);
  EXPECT_FALSE(EncodeToString(dup).ok());
}

TEST(TensorCodecErrors, AcceptsUtf8Names) {
  NamedTensors t{{"poids.\xc3\xa9t\xc3\xa9", torch::zeros({1})}};  // "poids.été"
  EXPECT_TRUE(DecodeFromString(*EncodeToString(t)).ok());
}

TEST(TensorCodecErrors, BadMagic) {
  ExpectInvalid(DecodeStatus(Payload().Raw("FCT2").Put<uint32_t>(0).str()),
                "bad magic \"FCT2\" (expected \"FCT1\")");
  ExpectInvalid(DecodeStatus(Payload().Raw("\x89PNG").Put<uint32_t>(0).str()),
                "bad magic \"\\x89PNG\" (expected \"FCT1\")");
}

TEST(TensorCodecErrors, TooManyTensors) {
  ExpectInvalid(DecodeStatus(Payload().Header(100001).str()), "tensor count 100001 exceeds 100000");
}

TEST(TensorCodecErrors, NameTooLongEmptyOrNotUtf8) {
  ExpectInvalid(
      DecodeStatus(Payload().Header(1).Put<uint32_t>(300).Raw(std::string(300, 'a')).str()),
      "tensor 0: name length 300 exceeds 256 bytes");
  ExpectInvalid(DecodeStatus(Payload().Header(1).Put<uint32_t>(0xFFFFFFFF).str()),
                "tensor 0: name length 4294967295 exceeds 256 bytes");
  ExpectInvalid(DecodeStatus(Payload().Header(1).Name("").str()), "tensor 0: empty name");
  ExpectInvalid(DecodeStatus(Payload().Header(1).Name("w\xff").Put<uint8_t>(1).str()),
                "tensor 0: name is not valid UTF-8");
  // Overlong encoding of '/', a lone surrogate, a truncated sequence.
  for (std::string_view name : {"\xc0\xaf", "\xed\xa0\x80", "a\xe2\x82"}) {
    ExpectInvalid(DecodeStatus(Payload().Header(1).Name(name).str()),
                  "tensor 0: name is not valid UTF-8");
  }
}

TEST(TensorCodecErrors, NamesOutOfOrderOrDuplicated) {
  ExpectInvalid(DecodeStatus(Payload().Header(2).Float32("b", 1).Float32("a", 1).str()),
                "tensor 1 \"a\": names must be unique and ascending (after \"b\")");
  ExpectInvalid(DecodeStatus(Payload().Header(2).Float32("a", 1).Float32("a", 1).str()),
                "tensor 1 \"a\": names must be unique and ascending (after \"a\")");
}

TEST(TensorCodecErrors, UnknownDtype) {
  for (uint8_t code : {uint8_t{0}, uint8_t{11}, uint8_t{42}, uint8_t{255}}) {
    ExpectInvalid(
        DecodeStatus(Payload().Header(1).Name("w").Put<uint8_t>(code).Put<uint8_t>(0).str()),
        absl::StrCat("tensor \"w\": unknown dtype code ", code));
  }
}

TEST(TensorCodecErrors, TooManyDims) {
  ExpectInvalid(DecodeStatus(Payload().Header(1).Name("w").Put<uint8_t>(1).Put<uint8_t>(9).str()),
                "tensor \"w\": ndim 9 exceeds 8");
}

TEST(TensorCodecErrors, NegativeDim) {
  ExpectInvalid(DecodeStatus(Payload()
                                 .Header(1)
                                 .Name("w")
                                 .Put<uint8_t>(1)
                                 .Put<uint8_t>(2)
                                 .Put<int64_t>(2)
                                 .Put<int64_t>(-3)
                                 .Put<uint64_t>(0)
                                 .str()),
                "tensor \"w\": dimension 1 is negative (-3)");
}

TEST(TensorCodecErrors, ElementCountOverflow) {
  const int64_t big = int64_t{1} << 40;
  ExpectInvalid(DecodeStatus(Payload()
                                 .Header(1)
                                 .Name("w")
                                 .Put<uint8_t>(1)
                                 .Put<uint8_t>(2)
                                 .Put<int64_t>(big)
                                 .Put<int64_t>(big)
                                 .Put<uint64_t>(0)
                                 .str()),
                "tensor \"w\": element count overflows");
  // numel fits in int64 but numel x itemsize does not.
  ExpectInvalid(DecodeStatus(Payload()
                                 .Header(1)
                                 .Name("w")
                                 .Put<uint8_t>(2)
                                 .Put<uint8_t>(1)
                                 .Put<int64_t>(int64_t{1} << 61)
                                 .Put<uint64_t>(0)
                                 .str()),
                "tensor \"w\": element count overflows");
}

TEST(TensorCodecErrors, ByteLengthDoesNotMatchShape) {
  ExpectInvalid(DecodeStatus(Payload()
                                 .Header(1)
                                 .Name("w")
                                 .Put<uint8_t>(1)
                                 .Put<uint8_t>(1)
                                 .Put<int64_t>(3)
                                 .Put<uint64_t>(10)
                                 .Raw(std::string(10, '\0'))
                                 .str()),
                "tensor \"w\": byte length 10 does not match 3 float32 elements (12 bytes)");
}

TEST(TensorCodecErrors, HugeDeclaredTensorIsRefusedBeforeAllocating) {
  // 2^40 float32 elements = 4 TiB declared, nothing behind it.
  const int64_t n = int64_t{1} << 40;
  const std::string bytes = Payload()
                                .Header(1)
                                .Name("w")
                                .Put<uint8_t>(1)
                                .Put<uint8_t>(1)
                                .Put<int64_t>(n)
                                .Put<uint64_t>(4 * n)
                                .str();
  ExpectInvalid(DecodeStatus(bytes),
                "truncated stream: tensor \"w\" data needs 4398046511104 bytes, only 0 left");
  NoSeekBuf buffer(bytes);
  std::istream in(&buffer);
  TensorDecoder decoder(in);
  ExpectInvalid(decoder.Next().status(),
                "tensor \"w\": 4398046511104 bytes exceed the limit of 4294967296");
}

TEST(TensorCodecErrors, TruncatedStream) {
  const std::string whole = Payload().Header(1).Float32("w", 3).str();
  ASSERT_TRUE(DecodeFromString(whole).ok());
  ExpectInvalid(DecodeStatus(""), "truncated stream: magic needs 4 bytes, only 0 left");
  ExpectInvalid(DecodeStatus(whole.substr(0, 6)),
                "truncated stream: tensor count needs 4 bytes, only 2 left");
  ExpectInvalid(DecodeStatus(whole.substr(0, whole.size() - 1)),
                "truncated stream: tensor \"w\" data needs 12 bytes, only 11 left");
  // Every proper prefix fails with a truncation error, never anything else.
  for (size_t n = 0; n < whole.size(); ++n) {
    absl::Status status = DecodeStatus(whole.substr(0, n));
    EXPECT_THAT(std::string(status.message()), StartsWith("truncated stream: ")) << n;
  }
  // Same on a stream that cannot seek (the check happens while reading).
  NoSeekBuf buffer(whole.substr(0, whole.size() - 1));
  std::istream in(&buffer);
  TensorDecoder decoder(in);
  ExpectInvalid(decoder.Next().status(),
                "truncated stream: tensor \"w\" data needs 12 bytes, only 11 left");
}

TEST(TensorCodecErrors, MissingTensorIsTruncation) {
  ExpectInvalid(DecodeStatus(Payload().Header(2).Float32("a", 1).str()),
                "truncated stream: tensor 1 name length needs 4 bytes, only 0 left");
}

TEST(TensorCodecErrors, TrailingBytes) {
  const std::string bytes = Payload().Header(1).Float32("w", 2).Raw("x").str();
  ExpectInvalid(DecodeStatus(bytes), "trailing bytes after the last tensor (at byte 39)");
  // The tensors before are still delivered; the check comes with the end.
  std::stringstream stream(bytes);
  TensorDecoder decoder(stream);
  auto first = decoder.Next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  ExpectInvalid(decoder.Next().status(), "trailing bytes after the last tensor (at byte 39)");
}

TEST(TensorCodecErrors, BoolBytesMustBeZeroOrOne) {
  ExpectInvalid(DecodeStatus(Payload()
                                 .Header(1)
                                 .Name("m")
                                 .Put<uint8_t>(10)
                                 .Put<uint8_t>(1)
                                 .Put<int64_t>(3)
                                 .Put<uint64_t>(3)
                                 .Raw(std::string("\x01\x00\x02", 3))
                                 .str()),
                "tensor \"m\": bool element 2 has byte value 2");
}

TEST(TensorCodecErrors, ErrorsAreSticky) {
  std::stringstream stream(Payload().Raw("XXXX").Put<uint32_t>(0).str());
  TensorDecoder decoder(stream);
  const absl::Status first = decoder.Next().status();
  EXPECT_FALSE(first.ok());
  EXPECT_EQ(decoder.Next().status(), first);
}

TEST(TensorCodecErrors, FlippedBytesAreCaughtOrChangeTheResult) {
  NamedTensors tensors{{"a", torch::arange(4, torch::kFloat32)},
                       {"b", torch::tensor({true, false})},
                       {"c", torch::arange(3, torch::kInt64)}};
  const std::string whole = *EncodeToString(tensors);
  int rejected = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::string corrupt = whole;
      corrupt[i] = static_cast<char>(corrupt[i] ^ mask);
      absl::StatusOr<NamedTensors> decoded = DecodeFromString(corrupt);
      if (!decoded.ok()) {
        ++rejected;
        continue;
      }
      // Whatever still decodes (a flipped value, or a name that stays sorted)
      // must differ from the original, bit for bit: no byte is ignored.
      const bool same = *EncodeToString(*decoded) == whole;
      EXPECT_FALSE(same) << "flip of byte " << i << " went unnoticed";
    }
  }
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace fedcustoms::tensor
