// Stride-1 NHWC/HWIO float32 convolutions through oneDNN, as XLA FFI targets.
//
// XLA:CPU's own convolutions take 1.3-2.9x oneDNN's time on the 2-core CPU
// this project trains on (mel_ae/onednn_conv.py); PyTorch calls oneDNN for
// the same layers. Three targets, the forward pass and its two
// gradients; mel_ae/onednn_conv.py wires them into a jax.custom_vjp.
// Padding comes as four int64 attributes (top, bottom, left, right).
#include <cstdint>

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

struct Geometry {
  memory::desc src, weights, dst;  // as the buffers hold them
  memory::desc any_weights;        // the layout left to oneDNN
  memory::dims pad_l, pad_r;
};

// x (N, H, W, I), w (KH, KW, I, O), y (N, Ho, Wo, O) in oneDNN's terms.
Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                      ffi::Span<const int64_t> y, int64_t top, int64_t bottom,
                      int64_t left, int64_t right) {
  auto f32 = memory::data_type::f32;
  memory::dims weights = {w[3], w[2], w[0], w[1]};
  return {memory::desc({x[0], x[3], x[1], x[2]}, f32, Tag::nhwc),
          memory::desc(weights, f32, Tag::hwio),
          memory::desc({y[0], y[3], y[1], y[2]}, f32, Tag::nhwc),
          memory::desc(weights, f32, Tag::any),
          {top, left},
          {bottom, right}};
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training,
      dnnl::algorithm::convolution_direct, g.src, g.any_weights, g.dst, {1, 1},
      g.pad_l, g.pad_r);
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

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t top, int64_t bottom,
                   int64_t left, int64_t right) {
  return Guarded([&] {
    Geometry g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(),
                              top, bottom, left, right);
    auto pd = ForwardDesc(g);
    memory src(g.src, Engine(), x.typed_data());
    memory dst(g.dst, Engine(), y->typed_data());
    memory weights =
        Reordered(pd.weights_desc(), memory(g.weights, Engine(), w.typed_data()));
    dnnl::convolution_forward(pd).execute(
        Stream(), {{DNNL_ARG_SRC, src},
                   {DNNL_ARG_WEIGHTS, weights},
                   {DNNL_ARG_DST, dst}});
  });
}

// dx from dy and w; dx's shape is the result's.
ffi::Error BackwardData(ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                        ffi::ResultBuffer<ffi::F32> dx, int64_t top,
                        int64_t bottom, int64_t left, int64_t right) {
  return Guarded([&] {
    Geometry g = MakeGeometry(dx->dimensions(), w.dimensions(),
                              dy.dimensions(), top, bottom, left, right);
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.src, g.any_weights,
        g.dst, {1, 1}, g.pad_l, g.pad_r, ForwardDesc(g));
    memory diff_src(g.src, Engine(), dx->typed_data());
    memory diff_dst(g.dst, Engine(), dy.typed_data());
    memory weights =
        Reordered(pd.weights_desc(), memory(g.weights, Engine(), w.typed_data()));
    dnnl::convolution_backward_data(pd).execute(
        Stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                   {DNNL_ARG_WEIGHTS, weights},
                   {DNNL_ARG_DIFF_SRC, diff_src}});
  });
}

// dw from x and dy; dw's shape is the result's.
ffi::Error BackwardWeights(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                           ffi::ResultBuffer<ffi::F32> dw, int64_t top,
                           int64_t bottom, int64_t left, int64_t right) {
  return Guarded([&] {
    Geometry g = MakeGeometry(x.dimensions(), dw->dimensions(),
                              dy.dimensions(), top, bottom, left, right);
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.src, g.any_weights,
        g.dst, {1, 1}, g.pad_l, g.pad_r, ForwardDesc(g));
    memory src(g.src, Engine(), x.typed_data());
    memory diff_dst(g.dst, Engine(), dy.typed_data());
    memory user_dw(g.weights, Engine(), dw->typed_data());
    bool direct = pd.diff_weights_desc() == g.weights;
    memory diff_weights =
        direct ? user_dw : memory(pd.diff_weights_desc(), Engine());
    dnnl::convolution_backward_weights(pd).execute(
        Stream(), {{DNNL_ARG_SRC, src},
                   {DNNL_ARG_DIFF_DST, diff_dst},
                   {DNNL_ARG_DIFF_WEIGHTS, diff_weights}});
    if (!direct) {
      dnnl::reorder(diff_weights, user_dw)
          .execute(Stream(), diff_weights, user_dw);
    }
  });
}

}  // namespace

#define MEL_AE_CONV_BINDING                             \
  ffi::Ffi::Bind()                                     \
      .Arg<ffi::Buffer<ffi::F32>>()                    \
      .Arg<ffi::Buffer<ffi::F32>>()                    \
      .Ret<ffi::Buffer<ffi::F32>>()                    \
      .Attr<int64_t>("top")                            \
      .Attr<int64_t>("bottom")                         \
      .Attr<int64_t>("left")                           \
      .Attr<int64_t>("right")

XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvForward, Forward,
                              MEL_AE_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvBackwardData, BackwardData,
                              MEL_AE_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(MelAeConvBackwardWeights, BackwardWeights,
                              MEL_AE_CONV_BINDING);
