// Stride-1 NHWC/HWIO convolutions through oneDNN, as XLA FFI targets.
//
// XLA:CPU's own convolutions take 1.3-2.9x oneDNN's time on the 2-core CPU
// this project trains on (mel_ae/backends/onednn.py); PyTorch calls oneDNN
// for the same layers. Three targets, the forward pass and its two
// gradients; mel_ae/backends/onednn.py wires them into a jax.custom_vjp.
// Padding comes as four int64 attributes (top, bottom, left, right).
// Each buffer is float32 or bfloat16, as oneDNN allows the combination
// (bf16 convolutions accumulate in f32 and may write f32 results);
// MelAeConvImplementation says which implementation oneDNN would pick, so
// the caller can tell a native bf16 kernel from the slow reference one.
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = memory::format_tag;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Streams are not meant to be shared between threads; XLA may run two
// independent convolutions at once.
dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

using Dims = ffi::Span<const int64_t>;
using Type = memory::data_type;

struct Geometry {
  memory::desc src, weights, dst;  // as the buffers hold them
  memory::desc any_weights;        // the layout left to oneDNN
  memory::dims pad_l, pad_r;
};

Type DnnlType(ffi::DataType type) {
  switch (type) {
    case ffi::DataType::F32:
      return Type::f32;
    case ffi::DataType::BF16:
      return Type::bf16;
    default:
      throw dnnl::error(dnnl_invalid_arguments,
                        "buffers must be float32 or bfloat16");
  }
}

// x (N, H, W, I), w (KH, KW, I, O), y (N, Ho, Wo, O) in oneDNN's terms,
// each of its own data type.
Geometry MakeGeometry(Dims x, Type x_type, Dims w, Type w_type, Dims y,
                      Type y_type, int64_t top, int64_t bottom, int64_t left,
                      int64_t right) {
  memory::dims weights = {w[3], w[2], w[0], w[1]};
  return {memory::desc({x[0], x[3], x[1], x[2]}, x_type, Tag::nhwc),
          memory::desc(weights, w_type, Tag::hwio),
          memory::desc({y[0], y[3], y[1], y[2]}, y_type, Tag::nhwc),
          memory::desc(weights, w_type, Tag::any),
          {top, left},
          {bottom, right}};
}

// The forward pass as `type` throughout: the backward primitives' hint.
dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g,
                                                      Type type) {
  auto as = [type](const memory::desc& d, Tag tag) {
    return memory::desc(d.get_dims(), type, tag);
  };
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training,
      dnnl::algorithm::convolution_direct, as(g.src, Tag::nhwc),
      as(g.any_weights, Tag::any), as(g.dst, Tag::nhwc), {1, 1}, g.pad_l,
      g.pad_r);
}

// `user` in the layout the primitive wants (a reorder when it differs).
memory Reordered(const memory::desc& want, memory user) {
  if (want == user.get_desc()) return user;
  memory out(want, Engine());
  dnnl::reorder(user, out).execute(Stream(), user, out);
  return out;
}

template <typename Fn>
ffi::Error Guarded(Fn fn) {
  try {
    fn();
    Stream().wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN convolution: ") + e.what());
  }
  return ffi::Error::Success();
}

// (O,) bias or bias gradient as the buffer holds it.
memory::desc BiasDesc(const ffi::AnyBuffer& b) {
  return memory::desc({b.dimensions()[0]}, DnnlType(b.element_type()),
                      Tag::a);
}

// y = conv(x, w) (+ b); y may be float32 when x and w are bfloat16, and b
// float32 either way.
ffi::Error ForwardImpl(ffi::AnyBuffer x, ffi::AnyBuffer w,
                       const ffi::AnyBuffer* b, ffi::AnyBuffer y, int64_t top,
                       int64_t bottom, int64_t left, int64_t right) {
  return Guarded([&] {
    Geometry g = MakeGeometry(
        x.dimensions(), DnnlType(x.element_type()), w.dimensions(),
        DnnlType(w.element_type()), y.dimensions(),
        DnnlType(y.element_type()), top, bottom, left, right);
    auto pd = b ? dnnl::convolution_forward::primitive_desc(
                      Engine(), dnnl::prop_kind::forward_training,
                      dnnl::algorithm::convolution_direct, g.src,
                      g.any_weights, BiasDesc(*b), g.dst, {1, 1}, g.pad_l,
                      g.pad_r)
                : dnnl::convolution_forward::primitive_desc(
                      Engine(), dnnl::prop_kind::forward_training,
                      dnnl::algorithm::convolution_direct, g.src,
                      g.any_weights, g.dst, {1, 1}, g.pad_l, g.pad_r);
    memory src(g.src, Engine(), x.untyped_data());
    memory dst(g.dst, Engine(), y.untyped_data());
    memory weights = Reordered(pd.weights_desc(),
                               memory(g.weights, Engine(), w.untyped_data()));
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src},
                                            {DNNL_ARG_WEIGHTS, weights},
                                            {DNNL_ARG_DST, dst}};
    if (b) args[DNNL_ARG_BIAS] = memory(BiasDesc(*b), Engine(),
                                        b->untyped_data());
    dnnl::convolution_forward(pd).execute(Stream(), args);
  });
}

ffi::Error Forward(ffi::AnyBuffer x, ffi::AnyBuffer w,
                   ffi::Result<ffi::AnyBuffer> y, int64_t top, int64_t bottom,
                   int64_t left, int64_t right) {
  return ForwardImpl(x, w, nullptr, *y, top, bottom, left, right);
}

ffi::Error ForwardBias(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::AnyBuffer b,
                       ffi::Result<ffi::AnyBuffer> y, int64_t top,
                       int64_t bottom, int64_t left, int64_t right) {
  return ForwardImpl(x, w, &b, *y, top, bottom, left, right);
}

// dx from dy and w; dx's shape is the result's (float32 when dy and w are
// bfloat16 is allowed: gradients of several convs of one input add up).
ffi::Error BackwardData(ffi::AnyBuffer dy, ffi::AnyBuffer w,
                        ffi::Result<ffi::AnyBuffer> dx, int64_t top,
                        int64_t bottom, int64_t left, int64_t right) {
  return Guarded([&] {
    Type type = DnnlType(w.element_type());
    Geometry g = MakeGeometry(dx->dimensions(), DnnlType(dx->element_type()),
                              w.dimensions(), type, dy.dimensions(),
                              DnnlType(dy.element_type()), top, bottom, left,
                              right);
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.src, g.any_weights,
        g.dst, {1, 1}, g.pad_l, g.pad_r, ForwardDesc(g, type));
    memory diff_src(g.src, Engine(), dx->untyped_data());
    memory diff_dst(g.dst, Engine(), dy.untyped_data());
    memory weights = Reordered(pd.weights_desc(),
                               memory(g.weights, Engine(), w.untyped_data()));
    dnnl::convolution_backward_data(pd).execute(
        Stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                   {DNNL_ARG_WEIGHTS, weights},
                   {DNNL_ARG_DIFF_SRC, diff_src}});
  });
}

// dw (and db, the sum of dy over N, H, W) from x and dy; dw's shape is the
// result's (float32 when x and dy are bfloat16 is allowed: oneDNN
// accumulates in f32 either way).
ffi::Error BackwardWeightsImpl(ffi::AnyBuffer x, ffi::AnyBuffer dy,
                               ffi::AnyBuffer dw, ffi::AnyBuffer* db,
                               int64_t top, int64_t bottom, int64_t left,
                               int64_t right) {
  return Guarded([&] {
    Type type = DnnlType(x.element_type());
    Geometry g = MakeGeometry(x.dimensions(), type, dw.dimensions(),
                              DnnlType(dw.element_type()), dy.dimensions(),
                              DnnlType(dy.element_type()), top, bottom, left,
                              right);
    auto pd = db ? dnnl::convolution_backward_weights::primitive_desc(
                       Engine(), dnnl::algorithm::convolution_direct, g.src,
                       g.any_weights, BiasDesc(*db), g.dst, {1, 1}, g.pad_l,
                       g.pad_r, ForwardDesc(g, type))
                 : dnnl::convolution_backward_weights::primitive_desc(
                       Engine(), dnnl::algorithm::convolution_direct, g.src,
                       g.any_weights, g.dst, {1, 1}, g.pad_l, g.pad_r,
                       ForwardDesc(g, type));
    memory src(g.src, Engine(), x.untyped_data());
    memory diff_dst(g.dst, Engine(), dy.untyped_data());
    memory user_dw(g.weights, Engine(), dw.untyped_data());
    bool direct = pd.diff_weights_desc() == g.weights;
    memory diff_weights =
        direct ? user_dw : memory(pd.diff_weights_desc(), Engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_DIFF_DST, diff_dst},
        {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
    if (db) args[DNNL_ARG_DIFF_BIAS] = memory(BiasDesc(*db), Engine(),
                                              db->untyped_data());
    dnnl::convolution_backward_weights(pd).execute(Stream(), args);
    if (!direct) {
      dnnl::reorder(diff_weights, user_dw)
          .execute(Stream(), diff_weights, user_dw);
    }
  });
}

ffi::Error BackwardWeights(ffi::AnyBuffer x, ffi::AnyBuffer dy,
                           ffi::Result<ffi::AnyBuffer> dw, int64_t top,
                           int64_t bottom, int64_t left, int64_t right) {
  return BackwardWeightsImpl(x, dy, *dw, nullptr, top, bottom, left, right);
}

ffi::Error BackwardWeightsBias(ffi::AnyBuffer x, ffi::AnyBuffer dy,
                               ffi::Result<ffi::AnyBuffer> dw,
                               ffi::Result<ffi::AnyBuffer> db, int64_t top,
                               int64_t bottom, int64_t left, int64_t right) {
  ffi::AnyBuffer bias_grad = *db;
  return BackwardWeightsImpl(x, dy, *dw, &bias_grad, top, bottom, left,
                             right);
}

}  // namespace

// Writes "forward;backward_data;backward_weights", the implementations
// oneDNN picks for a 16->32 5x5 conv of 8x32x32 inputs with every buffer of
// `type` (0 float32, 1 bfloat16; gradients of weights in float32), or
// "error: ..." when it has none; returns 0 when it fit in `size` bytes.
extern "C" int MelAeConvImplementation(int type, char* out, int64_t size) {
  std::string result;
  try {
    Type t = type ? Type::bf16 : Type::f32;
    const int64_t x[] = {8, 32, 32, 16}, w[] = {5, 5, 16, 32},
                  y[] = {8, 32, 32, 32};
    Geometry g = MakeGeometry(Dims(x, 4), t, Dims(w, 4), t, Dims(y, 4), t, 2,
                              2, 2, 2);
    auto forward = ForwardDesc(g, t);
    dnnl::convolution_backward_data::primitive_desc data(
        Engine(), dnnl::algorithm::convolution_direct, g.src, g.any_weights,
        g.dst, {1, 1}, g.pad_l, g.pad_r, forward);
    dnnl::convolution_backward_weights::primitive_desc weights(
        Engine(), dnnl::algorithm::convolution_direct, g.src,
        memory::desc(g.weights.get_dims(), Type::f32, Tag::any), g.dst,
        {1, 1}, g.pad_l, g.pad_r, forward);
    result = std::string(forward.impl_info_str()) + ";" +
             data.impl_info_str() + ";" + weights.impl_info_str();
  } catch (const dnnl::error& e) {
    result = std::string("error: ") + e.what();
  }
  if (size <= 0) return 1;
  std::strncpy(out, result.c_str(), size - 1);
  out[size - 1] = '\0';
  return static_cast<int64_t>(result.size()) < size ? 0 : 1;
}

#define MEL_AE_PADDING                                  \
  .Attr<int64_t>("top")                                \
      .Attr<int64_t>("bottom")                         \
      .Attr<int64_t>("left")                           \
      .Attr<int64_t>("right")
#define MEL_AE_CONV_BINDING                             \
  ffi::Ffi::Bind()                                     \
      .Arg<ffi::AnyBuffer>()                           \
      .Arg<ffi::AnyBuffer>()                           \
      .Ret<ffi::AnyBuffer>() MEL_AE_PADDING

XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvForward, Forward,
                              MEL_AE_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvBackwardData, BackwardData,
                              MEL_AE_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvBackwardWeights, BackwardWeights,
                              MEL_AE_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvForwardBias, ForwardBias,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() MEL_AE_PADDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvBackwardWeightsBias,
                              BackwardWeightsBias,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>() MEL_AE_PADDING);
