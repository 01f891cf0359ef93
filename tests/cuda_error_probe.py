"""Bad arguments to every CUDA operator must raise RuntimeError, not crash the process.

Run as a script (tests/test_cuda.py runs it in a subprocess; bench/gpu_check.sh reruns it under cuda-gdb when it
crashes): prints one 'raised' line per case and exits 0.
"""
import torch

from turboiqa import _ops


def cases(dev):
    x = torch.rand(1, 2, 7, 9, dtype=torch.float64, device=dev)
    img = torch.rand(1, 3, 8, 8, device=dev)
    ops = torch.ops.turboiqa
    yield "box_downsample reads past", lambda: ops.box_downsample(x, 2, 0, 0, 5, 5, "zeros")
    yield "box_downsample border", lambda: ops.box_downsample(x, 2, 0, 0, 3, 3, "reflect")
    yield "box_downsample autograd", lambda: _ops.box_downsample(x.requires_grad_(), 2, 0, 0, 5, 5, "zeros")
    yield "ssim_stats shapes", lambda: ops.ssim_stats(img, img[:, :, :4], [1.0], 0.1, 0.1, "valid", 1.0)
    yield "ssim_stats window", lambda: ops.ssim_stats(img, img, [1.0] * 11, 0.1, 0.1, "valid", 1.0)
    yield "squared_error_sum shapes", lambda: ops.squared_error_sum(img, img[:, :2])
    yield "luma channels", lambda: ops.luma(img[:, :2], [0.3, 0.6, 0.1], 0.0, False)
    eo = torch.rand(1, 1, 2, 2, 4, 4, 2, device=dev)
    yield "pc_energy threshold", lambda: ops.pc_energy(eo, torch.rand(1, 1, 3, device=dev), 1e-4, 1e-4)
    taps = [1.0, 1.0, 1.0]
    yield "gradient_similarity padding", lambda: ops.gradient_similarity(x, x, taps, 1.0, 1.0, 0.0, 0.0, "bogus", "map")
    yield "gradient_similarity too small", lambda: ops.gradient_similarity(x[..., :2, :], x[..., :2, :], taps, 1.0,
                                                                           1.0, 0.0, 0.0, "valid", "map")
    yield "gradient_similarity backward grad", lambda: ops._gradient_similarity_backward(
        x[..., :3], x, x, taps, 1.0, 1.0, 0.0, 0.0, "zeros", "map")
    yield "gradient_similarity devices", lambda: ops.gradient_similarity(x, x.cpu(), taps, 1.0, 1.0, 0.0, 0.0,
                                                                         "zeros", "map")
    yield "decimate2 window", lambda: ops.decimate2(x, [0.5, 0.5])
    yield "decimate2 dtype", lambda: ops.decimate2(x.half(), [0.25, 0.5, 0.25])
    yield "decimate2 backward grad", lambda: ops._decimate2_backward(x, x, [0.25, 0.5, 0.25])
    # cvvdp: 7 channels, a CSF table beyond the CUDA parameter table, mixed devices, bad pyramid / sRGB shapes
    lb = x[:, :1]
    x7 = x.repeat(1, 4, 1, 1)[:, :7]
    yield "cvvdp_band_pool channels", lambda: ops.cvvdp_band_pool(x7, x7, lb, [0.0] * 14, -2.0, 4.0, [1.0] * 7,
                                                                  [1.0] * 7, [1.0] * 49, 1.0, 2.0, 1.0)
    yield "cvvdp_band_pool csf", lambda: ops.cvvdp_band_pool(x, x, lb, [0.0] * 600, -2.0, 4.0, [1.0] * 2, [1.0] * 2,
                                                             [1.0] * 4, 1.0, 2.0, 1.0)
    yield "cvvdp_band_pool devices", lambda: ops.cvvdp_band_pool(x, x.cpu(), lb, [0.0] * 4, -2.0, 4.0, [1.0] * 2,
                                                                 [1.0] * 2, [1.0] * 4, 1.0, 2.0, 1.0)
    yield "cvvdp_band_pool backward grad", lambda: ops._cvvdp_band_pool_backward(
        x[0, 0, 0], x, x, lb, [0.0] * 4, -2.0, 4.0, [1.0] * 2, [1.0] * 2, [1.0] * 4, 1.0, 2.0, 1.0)
    yield "cvvdp_pyramid_step size", lambda: ops.cvvdp_pyramid_step(x[..., :1, :])
    yield "cvvdp_pyramid_step backward grad", lambda: ops._cvvdp_pyramid_step_backward(x, x, x)
    yield "cvvdp_srgb_to_dkl channels", lambda: ops.cvvdp_srgb_to_dkl(x, [1.0] * 9, [0.0] * 3, 1.0)
    yield "cvvdp_srgb_to_dkl backward grad", lambda: ops._cvvdp_srgb_to_dkl_backward(
        img[..., :4], img, [1.0] * 9, [0.0] * 3, 1.0)


def main(dev="cuda"):
    for name, fn in cases(dev):
        try:
            fn()
        except RuntimeError as e:
            print(f"raised {name}: {str(e).splitlines()[0]}", flush=True)
        else:
            raise SystemExit(f"no error for {name}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else "cuda")
