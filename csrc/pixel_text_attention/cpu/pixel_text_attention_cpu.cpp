// CPU kernels of the fused pixel-text attention.
//
// Layout: feats are processed as [B, C, P] (P = H*W, NCHW contiguous), in
// blocks of kBlock pixels. For each channel c the block's row f[b, c, p0:p1]
// is read once and multiplied into K accumulators, so the innermost loops run
// over contiguous pixels and vectorise; the K x kBlock accumulators stay in
// L1. Pixel norms are accumulated in the same pass: no normalised copy of the
// features is ever written. Work is split over (batch, pixel block) with
// at::parallel_for.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../pixel_text_attention.h"

namespace cps4 {
namespace {

constexpr int64_t kBlock = 128;

template <typename T>
void normalise_text(const T* text, T* vt, T* rnorm, int64_t rows, int64_t C,
                    T eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* t = text + r * C;
    T ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += t[c] * t[c];
    const T rn = T(1) / std::max(std::sqrt(ss), eps);
    rnorm[r] = rn;
    for (int64_t c = 0; c < C; ++c) vt[r * C + c] = t[c] * rn;
  }
}

template <typename T>
void forward_kernel(const T* feats, const T* vt, T scale, const T* bias,
                    Mode mode, T eps, int64_t B, int64_t BT, int64_t C,
                    int64_t K, int64_t P, T* out, T* cos, T* frn) {
  const int64_t nblocks = (P + kBlock - 1) / kBlock;
  at::parallel_for(0, B * nblocks, 1, [&](int64_t begin, int64_t end) {
    // At least two rows: the softmax reuses them as max and sum scratch.
    std::vector<T> acc(std::max<int64_t>(K, 2) * kBlock), ss(kBlock);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblocks;
      const int64_t p0 = (task % nblocks) * kBlock;
      const int64_t n = std::min(kBlock, P - p0);
      const T* v = vt + (BT == 1 ? 0 : b) * K * C;
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(ss.begin(), ss.end(), T(0));
      T* __restrict__ sp = ss.data();
      for (int64_t c = 0; c < C; ++c) {
        const T* __restrict__ fr = feats + (b * C + c) * P + p0;
        for (int64_t j = 0; j < n; ++j) sp[j] += fr[j] * fr[j];
        for (int64_t k = 0; k < K; ++k) {
          const T w = v[k * C + c];
          T* __restrict__ a = acc.data() + k * kBlock;
          for (int64_t j = 0; j < n; ++j) a[j] += w * fr[j];
        }
      }
      T* rn = frn + b * P + p0;
      for (int64_t j = 0; j < n; ++j) rn[j] = T(1) / std::max(std::sqrt(sp[j]), eps);
      for (int64_t k = 0; k < K; ++k) {
        const T* a = acc.data() + k * kBlock;
        T* cs = cos + (b * K + k) * P + p0;
        T* o = out + (b * K + k) * P + p0;
        const T bk = bias ? bias[k] : T(0);
        for (int64_t j = 0; j < n; ++j) {
          cs[j] = a[j] * rn[j];
          o[j] = scale * cs[j] + bk;
        }
      }
      if (mode == Mode::kSigmoid) {
        for (int64_t k = 0; k < K; ++k) {
          T* o = out + (b * K + k) * P + p0;
          for (int64_t j = 0; j < n; ++j) o[j] = T(1) / (T(1) + std::exp(-o[j]));
        }
      } else if (mode == Mode::kSoftmax) {
        T* mx = acc.data();  // reuse the accumulators as scratch
        T* sum = acc.data() + kBlock;
        std::fill(mx, mx + n, -std::numeric_limits<T>::infinity());
        std::fill(sum, sum + n, T(0));
        for (int64_t k = 0; k < K; ++k) {
          const T* o = out + (b * K + k) * P + p0;
          for (int64_t j = 0; j < n; ++j) mx[j] = std::max(mx[j], o[j]);
        }
        for (int64_t k = 0; k < K; ++k) {
          T* o = out + (b * K + k) * P + p0;
          for (int64_t j = 0; j < n; ++j) {
            o[j] = std::exp(o[j] - mx[j]);
            sum[j] += o[j];
          }
        }
        for (int64_t j = 0; j < n; ++j) sum[j] = T(1) / sum[j];
        for (int64_t k = 0; k < K; ++k) {
          T* o = out + (b * K + k) * P + p0;
          for (int64_t j = 0; j < n; ++j) o[j] *= sum[j];
        }
      }
    }
  });
}

template <typename T>
void backward_kernel(const T* grad_out, const T* feats, const T* vt,
                     const T* trn, T scale, const T* out, const T* cos,
                     const T* frn, Mode mode, T eps, int64_t B, int64_t BT,
                     int64_t C, int64_t K, int64_t P, T* grad_feats,
                     T* weights, T* dotv, T* grad_scale, T* grad_bias) {
  const int64_t nblocks = (P + kBlock - 1) / kBlock;
  const int nthreads = at::get_num_threads();
  // Per-thread partial sums of the reductions over pixels.
  std::vector<T> dotv_part(static_cast<size_t>(nthreads) * BT * K, T(0));
  std::vector<T> bias_part(static_cast<size_t>(nthreads) * K, T(0));
  std::vector<T> scale_part(nthreads, T(0));
  const T inv_eps = T(1) / eps;
  at::parallel_for(0, B * nblocks, 1, [&](int64_t begin, int64_t end) {
    const int tid = at::get_thread_num();
    std::vector<T> dcos(K * kBlock), dotu(kBlock), du(kBlock), coef(kBlock);
    T* dotv_t = dotv_part.data() + static_cast<size_t>(tid) * BT * K;
    T* bias_t = bias_part.data() + static_cast<size_t>(tid) * K;
    T scale_acc = 0;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblocks;
      const int64_t bt = BT == 1 ? 0 : b;
      const int64_t p0 = (task % nblocks) * kBlock;
      const int64_t n = std::min(kBlock, P - p0);
      const T* v = vt + bt * K * C;
      const T* rn = frn + b * P + p0;
      // d(loss)/d(logit) for every class of the block, then d/d(cos).
      if (mode == Mode::kSoftmax) {
        std::fill(du.begin(), du.end(), T(0));  // sum_k g * o
        for (int64_t k = 0; k < K; ++k) {
          const T* g = grad_out + (b * K + k) * P + p0;
          const T* o = out + (b * K + k) * P + p0;
          for (int64_t j = 0; j < n; ++j) du[j] += g[j] * o[j];
        }
      }
      std::fill(dotu.begin(), dotu.end(), T(0));
      for (int64_t k = 0; k < K; ++k) {
        const T* g = grad_out + (b * K + k) * P + p0;
        const T* o = out + (b * K + k) * P + p0;
        const T* cs = cos + (b * K + k) * P + p0;
        T* d = dcos.data() + k * kBlock;
        T* wk = weights + (b * K + k) * P + p0;
        T bsum = 0, ssum = 0, vsum = 0;
        for (int64_t j = 0; j < n; ++j) {
          T ds;
          if (mode == Mode::kSoftmax) {
            ds = o[j] * (g[j] - du[j]);
          } else if (mode == Mode::kSigmoid) {
            ds = g[j] * o[j] * (T(1) - o[j]);
          } else {
            ds = g[j];
          }
          bsum += ds;
          ssum += ds * cs[j];
          d[j] = scale * ds;
          dotu[j] += d[j] * cs[j];
          vsum += d[j] * cs[j];
          wk[j] = d[j] * rn[j];
        }
        bias_t[k] += bsum;
        scale_acc += ssum;
        dotv_t[bt * K + k] += vsum;
      }
      // grad_f = rn * du - f * rn^2 * (u . du), the last term only where the
      // norm was not clamped to eps (F.normalize's derivative).
      for (int64_t j = 0; j < n; ++j)
        coef[j] = rn[j] < inv_eps ? rn[j] * rn[j] * dotu[j] : T(0);
      T* __restrict__ dup = du.data();
      const T* __restrict__ cf = coef.data();
      for (int64_t c = 0; c < C; ++c) {
        const T* __restrict__ fr = feats + (b * C + c) * P + p0;
        T* __restrict__ gf = grad_feats + (b * C + c) * P + p0;
        std::fill(dup, dup + n, T(0));
        for (int64_t k = 0; k < K; ++k) {
          const T vkc = v[k * C + c];
          const T* __restrict__ d = dcos.data() + k * kBlock;
          for (int64_t j = 0; j < n; ++j) dup[j] += d[j] * vkc;
        }
        for (int64_t j = 0; j < n; ++j) gf[j] = rn[j] * dup[j] - fr[j] * cf[j];
      }
    }
    scale_part[tid] += scale_acc;
  });

  for (int64_t r = 0; r < BT * K; ++r) {
    T acc = 0;
    for (int t = 0; t < nthreads; ++t) acc += dotv_part[t * BT * K + r];
    dotv[r] = acc;
  }
  T s = 0;
  for (int t = 0; t < nthreads; ++t) s += scale_part[t];
  *grad_scale = s;
  if (grad_bias) {
    for (int64_t k = 0; k < K; ++k) {
      T acc = 0;
      for (int t = 0; t < nthreads; ++t) acc += bias_part[t * K + k];
      grad_bias[k] = acc;
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cpu(
    const at::Tensor& feats_, const at::Tensor& text_,
    const at::Tensor& logit_scale, const std::optional<at::Tensor>& bias_,
    int64_t mode, double eps) {
  check_forward_inputs(feats_, text_, logit_scale, bias_, mode, eps);
  const auto feats = feats_.contiguous();
  const auto text = text_.contiguous();
  const int64_t B = feats.size(0), C = feats.size(1), H = feats.size(2),
                W = feats.size(3), P = H * W, BT = text.size(0),
                K = text.size(1);
  auto out = at::empty({B, K, H, W}, feats.options());
  auto cos = at::empty({B, K, H, W}, feats.options());
  auto frn = at::empty({B, P}, feats.options());
  auto trn = at::empty({BT, K}, feats.options());
  auto vt = at::empty({BT, K, C}, feats.options());
  at::Tensor bias;
  if (bias_.has_value()) bias = bias_->contiguous();
  AT_DISPATCH_FLOATING_TYPES(feats.scalar_type(), "pixel_text_attention_forward_cpu", [&] {
    const scalar_t e = static_cast<scalar_t>(eps);
    normalise_text<scalar_t>(text.data_ptr<scalar_t>(), vt.data_ptr<scalar_t>(),
                             trn.data_ptr<scalar_t>(), BT * K, C, e);
    forward_kernel<scalar_t>(
        feats.data_ptr<scalar_t>(), vt.data_ptr<scalar_t>(),
        logit_scale.item<scalar_t>(),
        bias.defined() ? bias.data_ptr<scalar_t>() : nullptr,
        static_cast<Mode>(mode), e, B, BT, C, K, P, out.data_ptr<scalar_t>(),
        cos.data_ptr<scalar_t>(), frn.data_ptr<scalar_t>());
  });
  return {out, cos, frn, trn};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_out_, const at::Tensor& feats_,
    const at::Tensor& text_, const at::Tensor& logit_scale,
    const at::Tensor& out_, const at::Tensor& cos_,
    const at::Tensor& feat_rnorm_, const at::Tensor& text_rnorm_, int64_t mode,
    double eps, bool with_bias) {
  check_backward_inputs(grad_out_, feats_, text_, out_, cos_, feat_rnorm_,
                        text_rnorm_, mode);
  const auto grad_out = grad_out_.contiguous();
  const auto feats = feats_.contiguous();
  const auto text = text_.contiguous();
  const auto out = out_.contiguous();
  const auto cos = cos_.contiguous();
  const auto frn = feat_rnorm_.contiguous();
  const auto trn = text_rnorm_.contiguous();
  const int64_t B = feats.size(0), C = feats.size(1),
                P = feats.size(2) * feats.size(3), BT = text.size(0),
                K = text.size(1);
  auto grad_feats = at::empty_like(feats, at::MemoryFormat::Contiguous);
  auto weights = at::empty({B, K, P}, feats.options());
  auto dotv = at::empty({BT, K, 1}, feats.options());
  auto grad_scale = at::empty({}, feats.options());
  auto grad_bias = at::empty({with_bias ? K : 0}, feats.options());
  // Normalised text, recomputed from the saved reciprocal norms (K x C).
  const auto trn3 = trn.reshape({BT, K, 1});
  const auto vt = (text * trn3).contiguous();
  AT_DISPATCH_FLOATING_TYPES(feats.scalar_type(), "pixel_text_attention_backward_cpu", [&] {
    backward_kernel<scalar_t>(
        grad_out.data_ptr<scalar_t>(), feats.data_ptr<scalar_t>(),
        vt.data_ptr<scalar_t>(), trn.data_ptr<scalar_t>(),
        logit_scale.item<scalar_t>(), out.data_ptr<scalar_t>(),
        cos.data_ptr<scalar_t>(), frn.data_ptr<scalar_t>(),
        static_cast<Mode>(mode), static_cast<scalar_t>(eps), B, BT, C, K, P,
        grad_feats.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
        dotv.data_ptr<scalar_t>(), grad_scale.data_ptr<scalar_t>(),
        with_bias ? grad_bias.data_ptr<scalar_t>() : nullptr);
  });
  // The text gradient reduces over all pixels: sum_p w[k, p] f[c, p], a
  // batched GEMM of the K x P weights (dcos / |f|) with the raw features,
  // then the chain rule through text's normalisation (kept only where the
  // norm was not clamped to eps).
  auto dv = at::bmm(weights, feats.reshape({B, C, P}).transpose(1, 2));
  if (BT == 1 && B > 1) dv = dv.sum(0, true);
  const auto keep = (trn3 < 1.0 / eps).to(feats.scalar_type());
  const auto grad_text = trn3 * (dv - keep * vt * dotv);
  return {grad_feats, grad_text, grad_scale, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(cps4, CPU, m) {
  m.impl("pixel_text_attention_forward", &forward_cpu);
  m.impl("pixel_text_attention_backward", &backward_cpu);
}

}  // namespace cps4
