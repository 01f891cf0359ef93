// Every operator schema of the library, in one place. Implementations register per device in cpu/ and cuda/.
#include <torch/library.h>

TORCH_LIBRARY(turboiqa, m) {
  m.set_python_module("turboiqa._ops");
  // Per-plane means of the SSIM map and the contrast-structure map over a separable window, (N, C) each.
  // padding: 'valid' | 'zeros' | 'symmetric' | 'reflect' | 'replicate'. cov_norm scales the (co)variances
  // (1 = population, n/(n-1) = sample covariance as in scikit-image's default). nonnegative_cs clamps the cs map
  // at 0 per pixel before it multiplies the luminance term (pyiqa's SSIM and MS-SSIM).
  m.def(
      "ssim_stats(Tensor x, Tensor y, float[] window, float c1, float c2, str padding, float cov_norm, "
      "bool nonnegative_cs=False) -> (Tensor, Tensor)");
  m.def(
      "_ssim_stats_backward(Tensor grad_ssim, Tensor grad_cs, Tensor x, Tensor y, float[] window, float c1, "
      "float c2, str padding, float cov_norm, bool nonnegative_cs=False) -> (Tensor, Tensor)");
  // Per-image sum over C, H, W of (x - y)^2, float64 (N,): PSNR/MSE at memory speed; exact for uint8. The same
  // pass returns the per-image extrema (N, 4) = [min x, max x, min y, max y] (float64) so input range checks cost
  // no second read; NaN/Inf inputs show up as a non-finite sum. uint8 input is bounded by its dtype: its extrema
  // are the bounds [0, 255, 0, 255], not read from the samples (the sum alone runs at memory speed).
  m.def("squared_error_sum(Tensor x, Tensor y) -> (Tensor, Tensor)");
  // PSNR of each image pair from the same pass: -10 log10(sum (x - y)^2 / (C H W) / data_range^2 + eps) in dB,
  // capped at max_db (inf: no cap; identical images give +inf), for reduction 'none' (N,) or their 'mean' / 'sum'
  // (0-dim), computed in float64 and returned in the compute dtype. Second output: the extrema of
  // squared_error_sum, NaN for an image whose sum is NaN (the callers' NaN/Inf/range check). No gradient (the
  // metric's differentiable path goes through squared_error_sum).
  m.def("psnr_db(Tensor x, Tensor y, float data_range, float eps, float max_db, str reduction) -> (Tensor, Tensor)");
  // Test probe of the CPU work distribution (cpu/parallel.h): runs parallel_chunks(n = items.numel(), chunk) and
  // returns, per item, how many times it was visited and the first item of the chunk that visited it (int64, (n,)
  // each); the chunk starting at fail_at (if >= 0) throws, to check that errors on helper threads reach the caller.
  m.def("_parallel_chunks_probe(Tensor items, int chunk, int fail_at) -> (Tensor, Tensor)");
  // f x f box average sampled every f pixels: out[i, j] = mean of x[i*f - pad_top + a, j*f - pad_left + b],
  // a, b < f, samples outside the image taken through `border` ('symmetric' | 'replicate' | 'zeros'), always
  // divided by f^2. Covers MATLAB imfilter+(1:f:end), avg_pool2d with or without padding, piq's replicate pad.
  m.def(
      "box_downsample(Tensor x, int factor, int pad_top, int pad_left, int out_height, int out_width, str border) "
      "-> Tensor");
  // Weighted sum of the three channels plus an offset, N x 3 x H x W -> N x 1 x H x W; with round_to_uint8 a
  // uint8 input gives uint8 output rounded half away from zero and saturated (MATLAB rgb2gray / rgb2ycbcr).
  m.def("luma(Tensor x, float[] coeffs, float offset, bool round_to_uint8) -> Tensor");
  // Phase congruency from the log-Gabor responses (phasecong2's energy step, fused): eo is the complex response
  // as real pairs, N x C x O x S x H x W x 2 (torch.view_as_real); threshold the per-orientation noise threshold
  // (N x C x O). Per pixel: M_o = sum_s EO / (|sum_s EO| + epsilon), E_o = sum_s Re(EO conj M) - |Im(EO conj M)|,
  // PC = (sum_o max(E_o - T_o, 0) + pc_eps) / (sum_{o,s} |EO| + pc_eps). Output N x C x H x W.
  m.def("pc_energy(Tensor eo, Tensor threshold, float epsilon, float pc_eps) -> Tensor");
  // Feature distances of the deep metrics (feature_distance.h), features N x C x H x W (any memory format), result
  // (N,) in the compute dtype; per-channel vectors hold C values. lpips_distance: mean over H x W of
  // sum_c weight_c (f0_c / (|f0| + eps) - f1_c / (|f1| + eps))^2, norms over channels per position.
  m.def("lpips_distance(Tensor f0, Tensor f1, Tensor weight, float eps) -> Tensor");
  m.def("_lpips_distance_backward(Tensor grad, Tensor f0, Tensor f1, Tensor weight, float eps) -> (Tensor, Tensor)");
  // DISTS: sum_c alpha_c l_c + beta_c s_c from per-channel global means, population variances and covariance.
  m.def("dists_layer(Tensor f0, Tensor f1, Tensor alpha, Tensor beta, float c1, float c2) -> Tensor");
  m.def(
      "_dists_layer_backward(Tensor grad, Tensor f0, Tensor f1, Tensor alpha, Tensor beta, float c1, float c2) "
      "-> (Tensor, Tensor)");
  // PIPAL's spatially-warped difference: spatial mean over fd's positions of the smallest LPIPS-style distance to
  // fr's unit-normalised features within |di|, |dj| <= radius (inside the map); ties: first in raster order.
  m.def("swd_distance(Tensor fd, Tensor fr, Tensor weight, int radius, float eps) -> Tensor");
  m.def(
      "_swd_distance_backward(Tensor grad, Tensor fd, Tensor fr, Tensor weight, int radius, float eps) "
      "-> (Tensor, Tensor)");
  // Spatial-pyramid histogram intersection of two feature maps fd, fr (N x K x H x W, float32/float64; histogram.h):
  // level v < levels splits the map into 2^v x 2^v cells at floor(c n / 2^v); per cell the K channel sums, normalised
  // to unit sum, are compared by sum_k min(h_k, h'_k) (computed as 1 - |h - h'|_1 / 2); result (N, levels): the
  // mean over each level's cells. Empty histograms (all-zero cell): both -> 1, one -> 0.
  m.def("histogram_intersection(Tensor fd, Tensor fr, int levels) -> Tensor");
  m.def("_histogram_intersection_backward(Tensor grad, Tensor fd, Tensor fr, int levels) -> (Tensor, Tensor)");
  // laplacian_level: one level of matlabPyrTools' buildLpyr as iwssim.m uses it, planes N x C x H x W (float32 or
  // float64, H, W >= 3): lowpass = corrDn(binom5, 'reflect1', step 2) along the rows then the columns
  // (N x C x ceil(H/2) x ceil(W/2)); band = planes - upConv(lowpass) (columns then rows, 'reflect1'), the
  // expansion zero-stuffing to the output length (expand='matlab') or to an even length (expand='piq').
  m.def("laplacian_level(Tensor planes, str expand) -> (Tensor band, Tensor lowpass)");
  // IW-SSIM (iwssim.m) per pyramid band, planes N x C, float32/float64 bands in the compute dtype. Neighbourhood
  // vector Y at a position of the (H-b+1) x (W-b+1) grid: its b x b band samples (raster order) plus, with a
  // parent band, the co-located sample of iwssim.m's imenlarge2(parent) (K = b² or b² + 1 components).
  // iw_neighbour_covariance: Σ_positions Y Yᵀ / positions, N x C x K x K in the band's dtype (double partial sums
  // over fixed row chunks, combined in order).
  m.def("iw_neighbour_covariance(Tensor band, Tensor? parent, int blk_size) -> Tensor");
  // iw_pooled_cs: per plane, over the 'valid' cs map of the separable `window` (SSIM contrast-structure term with
  // c2), Σ w·cs and Σ w (float64, N x C each), w the information-content weight at the same centre:
  // Σ_j log2(1 + ((vv + (1+g²)σ²)·ss·λ_j + σ²·vv) / σ⁴), ss = Yᵀ inverse Y / K, g and vv from the b x b box
  // statistics of ref/dist, iwssim.m's tol overrides; inverse (N x C x K x K) and eigenvalues (N x C x K) of the
  // band's neighbour covariance come from the caller.
  m.def(
      "iw_pooled_cs(Tensor ref, Tensor dist, Tensor? parent, Tensor inverse, Tensor eigenvalues, int blk_size, "
      "float[] window, float c2, float sigma_nsq, float tol) -> (Tensor, Tensor)");
  // Gradient similarity of two planes (gradient_similarity.h), float32/float64 (others computed in float32): the
  // responses of the 3x3 stencil smooth (3 taps) x [-1, 0, 1] in x and y, M = scale^2 (gx^2 + gy^2) + eps, and
  // q = ((2 - alpha) sqrt(M1 M2) + c) / (M1 + M2 - alpha sqrt(M1 M2) + c); padding 'zeros' (same size) | 'valid'.
  // output 'map': q, N x C x Ho x Wo in the compute dtype; 'moments': (N, C, 2) float64 = (sum q, sum q^2) per plane
  // (GMSD's deviation pooling without an image-sized buffer).
  m.def(
      "gradient_similarity(Tensor x, Tensor y, float[] smooth, float scale, float c, float alpha, float eps, "
      "str padding, str output) -> Tensor");
  // VIFp (vifp_mscale.m) of one scale, x distorted, y reference, planes N x C x H x W: per plane the float64 sums
  // Σ log10(1 + g²σy²/(σv² + sigma_nsq)) and Σ log10(1 + σy²/sigma_nsq) over the output positions of the separable
  // `window` (normalised to sum 1; padding as ssim_stats), with the variance floor F = eps + floor_rel·E[y²]
  // (floor_rel = 0: vifp_mscale.m and piq; > 0: frame-analytics' relative floor). σy² < F: no information (both
  // terms 0); g = σxy/(σy² + F), 0 where σx² < F or g < 0; σv² = max(σx² - g σxy, F) (csrc/vifp_math.h).
  m.def(
      "vifp_stats(Tensor x, Tensor y, float[] window, float sigma_nsq, float eps, float floor_rel, str padding) "
      "-> (Tensor num, Tensor den)");
  m.def(
      "_vifp_stats_backward(Tensor grad_num, Tensor grad_den, Tensor x, Tensor y, float[] window, float sigma_nsq, "
      "float eps, float floor_rel, str padding) -> (Tensor, Tensor)");
  // 'valid' separable correlation of planes N x C x H x W (float32/float64) with the 1-D `window` (used as given,
  // not normalised) along both axes, keeping every second sample: out[i, j] = Σ_a Σ_b w[a] w[b] x[2i + a, 2j + b],
  // N x C x ((H - K) / 2 + 1) x ((W - K) / 2 + 1). VIFp's decimation between scales (vifp_mscale.m).
  m.def("decimate2(Tensor x, float[] window) -> Tensor");
  m.def("_decimate2_backward(Tensor grad, Tensor x, float[] window) -> Tensor");
  // cvvdp_band_pool: one Laplacian band of ColorVideoVDP (cvvdp 0.5.7's 'mult-mutual' masking, csrc/cvvdp_band.h),
  // test / ref band contrasts N x C x H x W (C <= 4), log_bkg the reference's log10 background luminance
  // N x 1 x H x W, float32/float64. Per pixel and channel c: S = 10^(csf_c(log_bkg)) gain_c (csf: C x L log10
  // sensitivities, linear over the uniform grid [log_l_lo, log_l_hi], clamped), T = test S, R = ref S,
  // M_c = mask_c blur13(min(|T|, |R|)) (13-tap Gaussian, sigma 3, reflect borders; not blurred when H or W <= 6),
  // masker_c = sum_k xcm[c, k] ((M_k + 1e-5)^mask_q_k - 1e-5^mask_q_k),
  // u = ((|T - R| + 1e-5)^mask_p - 1e-5^mask_p) / (1 + masker_c), D = d_max u / (d_max + u).
  // Output: N x C float64, sum over pixels of (D + 1e-5)^2 (cvvdp's lp_norm before its normalisation).
  m.def(
      "cvvdp_band_pool(Tensor test, Tensor ref, Tensor log_bkg, float[] csf, float log_l_lo, float log_l_hi, "
      "float[] gain, float[] mask_q, float[] xcm, float mask_c, float mask_p, float d_max) -> Tensor");
  m.def(
      "_cvvdp_band_pool_backward(Tensor grad, Tensor test, Tensor ref, Tensor log_bkg, float[] csf, float log_l_lo, "
      "float log_l_hi, float[] gain, float[] mask_q, float[] xcm, float mask_c, float mask_p, float d_max) "
      "-> (Tensor, Tensor, Tensor)");
  // cvvdp_pyramid_step: one level of ColorVideoVDP's decimated Laplacian pyramid (cvvdp 0.5.7 lpyr_dec, 5-tap
  // kernel a = 0.4), planes N x C x H x W (float32/float64, H, W >= 2): reduced = blur and keep every second row and
  // column (symmetric edges; the horizontal pass zero-pads the right edge and corrects the last column by
  // k3 x[-1] + k4 x[-2] for an odd H, k4 x[-1] for an even H, as cvvdp), N x C x ceil(H/2) x ceil(W/2); expanded =
  // reduced upsampled x2 back to H x W (zero insertion, 2 x kernel, replicated ends).
  m.def("cvvdp_pyramid_step(Tensor planes) -> (Tensor reduced, Tensor expanded)");
  m.def("_cvvdp_pyramid_step_backward(Tensor grad_reduced, Tensor grad_expanded, Tensor planes) -> Tensor");
  // cvvdp_srgb_to_dkl: display-encoded sRGB planes x (N x 3 x H x W, float32/float64) -> the display's light in
  // DKL: out_c = sum_k matrix[3c + k] eotf(clamp(x_k / data_range, 0, 1)) + bias[c], eotf the sRGB (IEC 61966-2-1)
  // curve; the matrix and bias carry the display model (peak, black, reflection) and RGB -> XYZ -> LMS -> DKL.
  m.def("cvvdp_srgb_to_dkl(Tensor x, float[] matrix, float[] bias, float data_range) -> Tensor");
  m.def("_cvvdp_srgb_to_dkl_backward(Tensor grad, Tensor x, float[] matrix, float[] bias, float data_range) -> Tensor");
  // cvvdp_band_difference: cvvdp_band_pool's per-pixel visible difference D itself (N x C x H x W, test's dtype; the
  // heat map's input), same arguments; no autograd (the Python side takes the PyTorch twin when a gradient is needed).
  m.def(
      "cvvdp_band_difference(Tensor test, Tensor ref, Tensor log_bkg, float[] csf, float log_l_lo, float log_l_hi, "
      "float[] gain, float[] mask_q, float[] xcm, float mask_c, float mask_p, float d_max) -> Tensor");
  // cvvdp_weber_contrast: ColorVideoVDP's Weber contrast of a pyramid band (csrc/cvvdp_weber.h): planes and their
  // expanded coarser level, 2N x C x H x W (test images, then references), float32/float64. contrast =
  // min((planes - expanded) / max(expanded[:, 0], 0.01), 1000) split into test (first N) and ref (last N), and the
  // references' log10 background luminance log10(max(expanded[N:, 0], 0.01)), N x 1 x H x W.
  m.def("cvvdp_weber_contrast(Tensor planes, Tensor expanded) -> (Tensor test, Tensor ref, Tensor log_bkg)");
  m.def(
      "_cvvdp_weber_contrast_backward(Tensor grad_test, Tensor grad_ref, Tensor grad_log_bkg, Tensor planes, "
      "Tensor expanded) -> (Tensor, Tensor)");
  // Backward of gradient_similarity: grad of the map (N x C x Ho x Wo) or of the moments ((N, C, 2), float64);
  // returns (dx, dy) in x's dtype (float32 for uint8 x).
  m.def(
      "_gradient_similarity_backward(Tensor grad, Tensor x, Tensor y, float[] smooth, float scale, float c, "
      "float alpha, float eps, str padding, str output) -> (Tensor, Tensor)");
  // grey_planes (csrc/grey_planes.h): the metrics' front end in one read of x (N x C x H x W, uint8/float):
  // R = len(coeffs) / C weighted channel sums (coeffs empty: the channels as given), times scale, rounded
  // ('none' | 'half_away' | 'half_even'), then box_downsample's f x f mean with a zeros border; and the (N, 2)
  // float64 extrema of the input (NaN for an image holding NaN/Inf; uint8: 0, 255) for the range/NaN checks.
  // Linear (the rounding passes the gradient straight through): the backward is a composite in _ops.py.
  m.def(
      "grey_planes(Tensor x, float[] coeffs, float scale, str rounding, int factor, int pad_top, int pad_left, "
      "int out_height, int out_width) -> (Tensor planes, Tensor extrema)");
  // grey_gradient_moments (csrc/grey_gradient_moments.h): grey_planes of x and of y (the first nine arguments), then
  // gradient_similarity(px, py, smooth, grad_scale, c, alpha, eps, padding, 'moments') of the two stacks, fused: one
  // read of each image, no planes written; the same bits as the two operators. Returns the moments (N, R, 2) float64
  // and the extrema of x and of y ((N, 2) float64 each, as grey_planes). CPU only, no autograd (the Python side
  // composes the two operators when a gradient is needed or on other devices).
  m.def(
      "grey_gradient_moments(Tensor x, Tensor y, float[] coeffs, float scale, str rounding, int factor, int pad_top, "
      "int pad_left, int out_height, int out_width, float[] smooth, float grad_scale, float c, float alpha, float eps, "
      "str padding) -> (Tensor, Tensor, Tensor)");
}
