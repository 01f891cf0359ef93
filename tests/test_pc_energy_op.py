"""The fused phase-congruency energy op against its PyTorch twin, and phase_congruency end to end."""
import pytest
import torch
from turboiqa import _ops
from turboiqa.reference import phase_congruency as pc

pytestmark = pytest.mark.skipif(not _ops.HAVE_NATIVE, reason="compiled extension not available")


def responses(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    eo = torch.randn(*shape, 2, generator=g, dtype=torch.float64).to(dtype).to(device)
    threshold = (torch.rand(*shape[:3], generator=g, dtype=torch.float64) * 0.5).to(dtype).to(device)
    return eo, threshold


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1, 4, 4, 7, 9), (2, 1, 4, 4, 33, 40), (1, 2, 6, 3, 5, 5)])
@pytest.mark.parametrize("eps", [(1e-4, 0.0), (2.2e-16, 2.2e-16)])
def test_forward_matches_reference(device, dtype, shape, eps):
    eo, threshold = responses(shape, dtype, device)
    got = _ops.pc_energy(eo, threshold, *eps)
    want = pc.pc_energy(eo, threshold, *eps)
    assert got.shape == (shape[0], shape[1], shape[4], shape[5]) and got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)


def test_backward_and_registration(device):
    eo, threshold = responses((1, 1, 2, 3, 5, 6), torch.float64, device, seed=1)
    eo.requires_grad_()
    threshold.requires_grad_()
    assert torch.autograd.gradcheck(lambda e, t: _ops.pc_energy(e, t, 1e-4, 0.0), (eo, threshold))
    torch.library.opcheck(torch.ops.turboiqa.pc_energy.default, (eo, threshold, 1e-4, 0.0))


def test_phase_congruency_native_equals_reference(device):
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(2, 1, 64, 71, generator=g, dtype=torch.float64) * 255).to(device)
    torch.testing.assert_close(pc.phase_congruency(y, backend="native"), pc.phase_congruency(y, backend="reference"),
                               rtol=1e-10, atol=1e-12)


def test_errors():
    eo, threshold = responses((1, 1, 4, 4, 5, 5), torch.float32, "cpu")
    with pytest.raises(RuntimeError, match="view_as_real"):
        torch.ops.turboiqa.pc_energy(eo[..., 0], threshold, 1e-4, 0.0)
    with pytest.raises(RuntimeError, match="threshold must be N x C x O"):
        torch.ops.turboiqa.pc_energy(eo, threshold[:, :, :2], 1e-4, 0.0)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_no_response_gives_a_number(device, backend):
    """Pixels without any filter response (a flat image): EnergyAll = AnAll = 0, where phasecong2 divides 0 by 0.
    PC is 0 there without pc_eps (the limit of Kovesi's EnergyAll / (AnAll + ε)) and pc_eps / pc_eps = 1 with it;
    the other pixels are untouched and the gradient stays finite."""
    eo, threshold = responses((1, 2, 4, 3, 6, 7), torch.float64, device, seed=3)
    eo[:, 0, :, :, 2:4, 3:5] = 0  # silent pixels in a plane that responds elsewhere
    eo[:, 1] = 0  # a silent plane
    silent = torch.zeros(1, 2, 6, 7, dtype=torch.bool, device=device)
    silent[:, 0, 2:4, 3:5] = True
    silent[:, 1] = True
    for pc_eps, value in ((0.0, 0.0), (2.2e-16, 1.0)):
        x = eo.clone().requires_grad_()
        out = _ops.pc_energy(x, threshold, 1e-4, pc_eps, backend)
        assert torch.isfinite(out).all()
        assert (out[silent] == value).all()
        torch.testing.assert_close(out[~silent], pc.pc_energy(eo, threshold, 1e-4, pc_eps)[~silent])
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
