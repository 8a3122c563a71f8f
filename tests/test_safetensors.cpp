// The safetensors reader on well-formed files: tensors, dtypes, metadata, zero-copy F32, shards.
#include <cstdint>      // std::uintptr_t
#include <type_traits>  // std::is_same_v, std::decay_t

#include <doctest/doctest.h>

#include <tinyllm/io/safetensors.hpp>
#include <tinyllm/model/loader.hpp>

#include "test_helpers.hpp"

namespace {

// header JSON + data bytes -> a safetensors file image
// The header is padded with spaces to a multiple of 8 bytes, as writers do, so data is aligned.
std::string safetensors_image(std::string header, const std::string& data, bool pad = true) {
  while (pad && header.size() % 8) header += ' ';
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace

TEST_CASE("safetensors: reads names, dtypes, shapes, offsets and metadata") {
  test::TempDir dir;
  std::string data(4 * 6 + 2 * 4, '\0');
  const float f[6] = {1, 2, 3, 4, 5, 6};
  std::memcpy(data.data(), f, sizeof f);
  const std::uint16_t h[4] = {0x3C00, 0xC000, 0x0000, 0x7BFF};  // F16 1, -2, 0, 65504
  std::memcpy(data.data() + 24, h, sizeof h);
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
      R"("__metadata__":{"format":"pt"}})";
  test::write_file(dir / "x.safetensors", safetensors_image(header, data));
  tinyllm::SafetensorsFile st(dir / "x.safetensors");
  REQUIRE(st.tensors().size() == 2);
  const auto* a = st.find("a");
  REQUIRE(a);
  CHECK(a->dtype == tinyllm::DType::F32);
  CHECK(a->shape == std::vector<std::int64_t>{2, 3});
  CHECK(a->nbytes == 24);
  CHECK(reinterpret_cast<const float*>(a->data)[5] == 6.0f);
  CHECK(st.find("b")->dtype == tinyllm::DType::F16);
  CHECK(st.metadata().at("format") == "pt");
  CHECK(st.find("c") == nullptr);

  // The loader keeps aligned F32 in place and widens F16.
  tinyllm::detail::WeightStore store;
  const float* pa = tinyllm::detail::tensor_as_f32(*a, store);
  CHECK(reinterpret_cast<const std::uint8_t*>(pa) == a->data);  // no copy
  const float* pb = tinyllm::detail::tensor_as_f32(*st.find("b"), store);
  CHECK(pb[0] == 1.0f);
  CHECK(pb[1] == -2.0f);
  CHECK(pb[3] == 65504.0f);
  CHECK(store.mapped_tensors == 1);
  CHECK(store.converted_tensors == 1);

  // Unpadded header: the F32 data is misaligned, so it is copied (and still correct).
  test::write_file(dir / "u.safetensors", safetensors_image(header, data, false));
  tinyllm::SafetensorsFile su(dir / "u.safetensors");
  const auto* ua = su.find("a");
  REQUIRE(reinterpret_cast<std::uintptr_t>(ua->data) % alignof(float) != 0);
  const float* pu = tinyllm::detail::tensor_as_f32(*ua, store);
  CHECK(reinterpret_cast<const std::uint8_t*>(pu) != ua->data);
  CHECK(pu[0] == 1.0f);
  CHECK(pu[5] == 6.0f);
}

TEST_CASE("safetensors: zero-size tensors and empty files of tensors are fine") {
  test::TempDir dir;
  test::write_file(dir / "e.safetensors",
                   safetensors_image(R"({"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", ""));
  tinyllm::SafetensorsFile st(dir / "e.safetensors");
  CHECK(st.find("z")->nbytes == 0);
  test::write_file(dir / "n.safetensors", safetensors_image("{}", ""));
  CHECK(tinyllm::SafetensorsFile(dir / "n.safetensors").tensors().empty());
}

TEST_CASE("safetensors: a sharded folder is read through its index") {
  tinyllm::SafetensorsArchive archive(test::fixture("f32-sharded-inner"));
  CHECK(archive.source().find("model.safetensors.index.json") != std::string::npos);
  const auto* wte = archive.find("transformer.wte.weight");
  REQUIRE(wte);
  CHECK(wte->shape.size() == 2);
  CHECK(archive.find("transformer.ln_f.bias"));
  CHECK(archive.all().size() == 28);
}

TEST_CASE("loader: converted matrices lie one after another in one buffer, 64-byte aligned") {
  for (const auto type : {tinyllm::WeightType::F16, tinyllm::WeightType::Q8}) {
    CAPTURE(tinyllm::weight_type_name(type));
    tinyllm::GPT2Config c = tinyllm::GPT2Config::from_pretrained(test::fixture("f32-hub"));
    tinyllm::detail::WeightStore store;
    tinyllm::detail::load_weights(test::fixture("f32-hub"), c, store, type);
    const auto begin = reinterpret_cast<std::uintptr_t>(store.converted.data());
    const auto end = begin + store.converted.size() * sizeof(float);
    std::uintptr_t last = begin;  // the end of the previous matrix (its scales for Q8)
    std::size_t matrices = 0;
    tinyllm::for_each_tensor(c, store.w, [&](const tinyllm::TensorSpec& spec, auto& slot) {
      if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, tinyllm::WeightView>) {
        if (spec.optional) return;  // lm_head: tied to wte
        CAPTURE(spec.name);
        const tinyllm::WeightView& w = slot;
        CHECK(w.type == type);
        const auto data = reinterpret_cast<std::uintptr_t>(w.data);
        const std::size_t bytes = type == tinyllm::WeightType::Q8 ? w.k_pad() * w.o_pad() : w.rows * w.cols * 2;
        CHECK(data % 64 == 0);
        CHECK(data >= last);
        last = data + bytes;
        if (type == tinyllm::WeightType::Q8) {
          const auto scale = reinterpret_cast<std::uintptr_t>(w.scale);
          CHECK(scale % 64 == 0);
          CHECK(scale >= last);
          last = scale + w.k_blocks() * w.o_pad() * sizeof(float);
        }
        CHECK(last <= end);
        ++matrices;
      }
    });
    CHECK(matrices == 1 + 4 * static_cast<std::size_t>(c.n_layer));
    CHECK(store.converted_tensors == matrices);
    CHECK(store.w.lm_head.data == store.w.wte.data);  // still tied
  }
}

TEST_CASE("loader: F32 weights of a single-file model are mapped, not copied") {
  tinyllm::GPT2Config c = tinyllm::GPT2Config::from_pretrained(test::fixture("f32-hub"));
  tinyllm::detail::WeightStore store;
  tinyllm::detail::load_weights(test::fixture("f32-hub"), c, store);
  CHECK(store.converted_tensors == 0);
  CHECK(store.mapped_tensors == 4 + 12 * static_cast<std::size_t>(c.n_layer));
  CHECK(store.w.lm_head.data == store.w.wte.data);  // tied
  CHECK(store.w.wte.type == tinyllm::WeightType::F32);
  // F16 model: matrices mapped as F16 (widened in registers), the F32 vectors widened at load.
  const std::size_t L = 2, matrices = 1 + 4 * L, vectors = 3 + 8 * L;
  tinyllm::GPT2Config c16 = tinyllm::GPT2Config::from_pretrained(test::fixture("f16-prefix-odd"));
  tinyllm::detail::WeightStore s16;
  tinyllm::detail::load_weights(test::fixture("f16-prefix-odd"), c16, s16);
  CHECK(s16.mapped_tensors == matrices);
  CHECK(s16.converted_tensors == vectors);
  CHECK(s16.w.h[0].mlp_c_fc.weight.type == tinyllm::WeightType::F16);
  // Asked for F32: the matrices are converted too.
  tinyllm::detail::WeightStore s32;
  tinyllm::detail::load_weights(test::fixture("f16-prefix-odd"), c16, s32, tinyllm::WeightType::F32);
  CHECK(s32.converted_tensors == matrices + vectors);
  CHECK(s32.w.h[0].mlp_c_fc.weight.type == tinyllm::WeightType::F32);
  // untied head
  tinyllm::GPT2Config cb = tinyllm::GPT2Config::from_pretrained(test::fixture("bf16-untied-tokjson"));
  tinyllm::detail::WeightStore sb;
  tinyllm::detail::load_weights(test::fixture("bf16-untied-tokjson"), cb, sb);
  CHECK(sb.w.lm_head.data != sb.w.wte.data);
  CHECK(sb.w.lm_head.type == tinyllm::WeightType::BF16);
}
