"""PatchNet as the paper describes it: shapes, the sparse fast path against the dense reference,
structural zeros that survive training, the initialisations, and FLOPs."""
import numpy as np
import pytest
import torch

from patchnet_zoo.eval.flops import count_patchnet_flops
from patchnet_zoo.models.layers import SparseOffsetConv, _energy_scale_numpy, _sums_by_doubling, window_energy
from patchnet_zoo.models.patchnet import PatchNet, decode, decode_peak

VARIANTS = [
    {},
    {"fourier": False},
    {"box_regression": False},
    {"fourier": False, "box_regression": False},
    {"patches_per_side": 4},
    {"patch_size": 12},
    {"patch_size": 4},
    {"response_size": 11},
    {"input_mean": "box"},
    {"input_mean": "box", "patch_size": 4, "response_size": 9},
    {"patch_norm": "zero_mean"},
    {"patch_norm": "zero_mean", "fourier": False, "patch_size": 4, "response_size": 9},
]


def _random_pairs(m: PatchNet, n: int):
    """``n`` encoded random templates, ``n`` random search crops and the box they were searched from."""
    g = m.geometry
    t = torch.rand(n, 3, g.template_size, g.template_size) * 255
    s = torch.rand(n, 3, g.search_size, g.search_size) * 255
    with torch.no_grad():
        f = m.encode_template(t)
    return f, s, torch.tensor([[100.0, 90.0, 40.0, 30.0]]).repeat(n, 1)


def _perturbed(**kw):
    torch.manual_seed(0)
    m = PatchNet(**kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_fast_path_equals_dense_reference(kw):
    m = _perturbed(**kw)
    g = m.geometry
    t = torch.rand(3, 3, g.template_size, g.template_size) * 255
    s = torch.rand(3, 3, g.search_size, g.search_size) * 255
    score, off = m(t, s)
    rs, ro = m.forward_reference(t, s)
    assert score.shape == (3, 1, g.response_size, g.response_size)
    assert off.shape == (3, 4, g.response_size, g.response_size)
    torch.testing.assert_close(score, rs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(off, ro, rtol=1e-4, atol=1e-5)
    if not kw.get("box_regression", True):
        assert torch.count_nonzero(off) == 0


def test_paper_geometry():
    g = PatchNet().geometry
    assert (g.template_size, g.search_size, g.corr_size, g.response_size) == (64, 119, 56, 7)
    assert abs(g.search_scale - 1.859) < 1e-3


def test_batch_elements_are_independent():
    m = _perturbed()
    t = torch.rand(4, 3, 64, 64) * 255
    s = torch.rand(4, 3, 119, 119) * 255
    score, off = m(t, s)
    for i in range(4):
        si, oi = m(t[i : i + 1], s[i : i + 1])
        torch.testing.assert_close(score[i : i + 1], si, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(off[i : i + 1], oi, rtol=1e-4, atol=1e-5)


def _dense_nonzero(m):
    counts = [int(torch.count_nonzero(c.dense_kernel(c.child_idx.numel()))) for c in m.score_convs]
    if m.offset_convs is not None:
        counts += [int(torch.count_nonzero(c.dense_kernel(c.child_idx.numel()))) for c in m.offset_convs]
    return counts


def test_structural_zeros_survive_training():
    m = PatchNet()
    before = _dense_nonzero(m)
    # every parent reads 4 children at one tap each
    assert before[:3] == [16 * 4, 4 * 4, 1 * 4]
    opt = torch.optim.Adam(m.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(5):
        score, off = m(torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 3, 119, 119) * 255)
        (score.square().mean() + off.square().mean()).backward()
        opt.step()
        opt.zero_grad()
    after = _dense_nonzero(m)
    assert all(a <= b for a, b in zip(after, before)), (before, after)
    # and nothing outside the taps exists to become non-zero: the state dict holds taps only
    assert m.state_dict()["score_convs.0.weight"].shape == (16, 4)


def test_initialisations():
    m = PatchNet()
    assert torch.all(m.correlation.fourier.coef == 1)
    assert m.correlation.fourier.coef.shape == (8, 5, 2)
    assert torch.all(m.score_convs[0].weight == 0.25)
    assert all(float(p.alpha.detach()) == 1.0 for p in m.pools)
    # Fourier reweighting at init is the identity
    x = torch.rand(2, 64, 3, 8, 8)
    torch.testing.assert_close(m.correlation.fourier(x), x, rtol=1e-5, atol=1e-5)


def test_least_squares_offset_merge_is_exact_for_translation_and_scale():
    conv = SparseOffsetConv(grid_side=2)  # one parent, 4 children
    d, e = 0.6, 0.3
    # children offsets in child units; layout (H, W, B, C_in, 4) with a 5x5 window, taps at 0|4
    off = torch.zeros(5, 5, 1, 4, 4)
    # pure translation: every boundary moves by d
    off[...] = d
    out = conv(off)[0, 0, 0, 0]  # parent (x_min, y_min, x_max, y_max), parent units
    torch.testing.assert_close(out, torch.full((4,), d / 2))
    # pure scaling of the parent interval by (1 + e) about its centre along x: left child (-e, 0),
    # right child (0, +e) in child units -> parent (-e/2, +e/2) in parent units
    off.zero_()
    # child index order in channels is the tap-major order of a 2x2 grid = row-major here
    for child, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        off[:, :, :, child, 0] = -e if j == 0 else 0.0
        off[:, :, :, child, 2] = 0.0 if j == 0 else e
    out = conv(off)[0, 0, 0, 0]
    torch.testing.assert_close(out[[0, 2]], torch.tensor([-e / 2, e / 2]))


def test_decode_single_and_double_peaks():
    score = torch.zeros(2, 1, 7, 7)
    score[0, 0, 3, 5] = 1.0  # one peak at dx=+2, dy=0
    score[1, 0, 1, 1] = 1.0
    score[1, 0, 5, 5] = 1.0  # two equal peaks
    off = torch.zeros(2, 4, 7, 7)
    off[0, :, 3, 5] = torch.tensor([0.5, 0.0, 0.5, 1.0])
    prev = torch.tensor([[100.0, 50.0, 80.0, 40.0]] * 2)  # cx, cy, w, h
    d = decode(score, off, prev)
    assert d.confidence[0] == pytest.approx(1.0)
    assert d.confidence[1] == pytest.approx(0.5)
    # cell = 10 x 5 px: x shifts by 2.5 cells = 25 px, the bottom edge moves by 1 cell = 5 px
    torch.testing.assert_close(d.boxes[0], torch.tensor([60.0 + 25, 30.0, 80.0, 45.0]))


def test_flops_match_the_paper():
    r = count_patchnet_flops(PatchNet())
    assert abs(r["macs"] - 57.67e6) / 57.67e6 < 0.03
    assert r["breakdown"]["fourier_fft"] > 0  # FFTs are counted
    assert r["breakdown"]["correlation"] == 64 * 3 * 64 * 56 * 56
    assert r["macs_sparse"] < r["macs"]
    pa = count_patchnet_flops(PatchNet(fourier=False, box_regression=False))
    assert abs(pa["macs"] - 44.2e6) / 44.2e6 < 0.03  # Table 5, Patch Aggregation
    zm = count_patchnet_flops(PatchNet(patch_norm="zero_mean"))  # + the window sums of each channel
    assert zm["breakdown"]["window_energy"] == 4 * r["breakdown"]["window_energy"]
    assert zm["macs"] - r["macs"] == 3 * r["breakdown"]["window_energy"]
    assert abs(zm["macs"] - 57.7e6) / 57.7e6 < 0.03


def test_bad_constructor_arguments():
    for kw in ({"patch_size": 6}, {"patches_per_side": 6}, {"response_size": 6}, {"input_mean": "frame"},
               {"patch_norm": "zncc"}):
        with pytest.raises(ValueError):
            PatchNet(**kw)


def test_wrong_crop_sizes_are_rejected():
    m = PatchNet()
    with pytest.raises(ValueError, match="search crops"):
        m(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 120, 120))
    with pytest.raises(ValueError, match="template crops"):
        m(torch.rand(1, 3, 63, 63), torch.rand(1, 3, 119, 119))


def test_hub_mixin_round_trip(tmp_path):
    m = _perturbed(fourier=False)
    m.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    m2 = PatchNet.from_pretrained(tmp_path)
    assert m2.fourier is False
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("kw", VARIANTS + [{"patches_per_side": 2}, {"patches_per_side": 16}],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_locate_equals_full_maps_at_the_peak(kw):
    """The inference path computes offsets on the peak's tree only: same boxes as the full maps."""
    m = _perturbed(**kw)
    f, s, prev = _random_pairs(m, 5)
    with torch.no_grad():
        score, off = m.match_filters(f, s)
        located = m.locate(f, s)
    torch.testing.assert_close(located.score, score)
    full = decode(score, off, prev)
    peak = decode_peak(located.score, located.best, located.offsets, prev)
    torch.testing.assert_close(peak.boxes, full.boxes, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(peak.confidence, full.confidence)
    if m.offset_convs:  # weights cached for the tree must follow an in-place update
        with torch.no_grad():
            for conv in m.offset_convs:
                conv.weight.mul_(1.5)
                conv.bias.add_(0.3)
            score, off = m.match_filters(f, s)
            located = m.locate(f, s)
        full = decode(score, off, prev)
        peak = decode_peak(located.score, located.best, located.offsets, prev)
        torch.testing.assert_close(peak.boxes, full.boxes, rtol=1e-5, atol=1e-4)



def test_fourier_reweighting_matrix_is_the_fft_map_and_follows_training():
    """At inference the reweighting runs as one matmul; it must stay the FFT map after updates."""
    m = _perturbed()
    fr = m.correlation.fourier
    x = torch.randn(10, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fr(x), fr._reweight(x), rtol=1e-4, atol=1e-4)
        fr.coef.mul_(torch.linspace(0.5, 1.5, fr.coef.numel()).view_as(fr.coef))  # an optimizer step
        torch.testing.assert_close(fr(x), fr._reweight(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"patch_size": 4}, {"patch_size": 12}, {"patch_size": 16}, {"response_size": 13},
                                {"patch_norm": "zero_mean"}, {"patch_norm": "zero_mean", "patch_size": 12}])
def test_inference_path_equals_the_training_path(kw):
    """Inference sums window energies by doubling and weights score taps in one pass; training keeps
    the operations the shipped weights were trained with. Both must give the same maps."""
    m = _perturbed(**kw).eval()
    torch.manual_seed(1)
    t = torch.rand(3, 3, m.template_size, m.template_size) * 255
    s = torch.rand(3, 3, m.search_size, m.search_size) * 255
    s[1, :, :, : m.search_size // 3] = 0.0  # a flat part: energies near zero
    with torch.enable_grad():
        train_score, train_off = m(t, s)
    with torch.inference_mode():
        score, off = m(t, s)
    torch.testing.assert_close(score, train_score.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(off, train_off.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,stride", [(2, 1), (4, 1), (8, 2), (16, 4), (8, 3)])
def test_window_sums_by_doubling_equal_average_pooling_on_tensors_and_arrays(k, stride):
    """The inference window sums (torch off the CPU, numpy on it) against the training pooling."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 37, 41) * 255 - 120
    want = torch.nn.functional.avg_pool2d(x, k, stride) * (k * k)
    torch.testing.assert_close(_sums_by_doubling(x, k, stride), want, rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(torch.from_numpy(_sums_by_doubling(x.numpy(), k, stride)), want, rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize("zero_mean", [False, True])
def test_numpy_normalisation_equals_the_torch_one(zero_mean):
    """The CPU inference path computes the correlation's normalisation in numpy: same scale as the
    torch operations (including a flat part, whose energy is near zero)."""
    torch.manual_seed(2)
    x = torch.rand(3, 3, 67, 67) * 255 - 120
    x[1, :, :, :20] = 7.0
    energy = window_energy(x, 4, 1, zero_mean)
    eps = 0.1 * energy.flatten(1).std(1).view(3, 1, 1, 1) + 1e-9
    want = (0.01 * torch.rsqrt(energy + eps)).permute(2, 3, 0, 1)
    got = torch.from_numpy(_energy_scale_numpy(x.numpy(), 4, 1, zero_mean))
    assert got.shape == want.shape == (64, 64, 3, 1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("kw", [{}, {"patch_size": 4}, {"response_size": 9}], ids=["default", "k4", "r9"])
def test_rigid_placement_finds_the_template_where_it_was_pasted(kw):
    """Without Fourier reweighting each patch correlates best with itself, so the rigid sum peaks
    exactly where the template was pasted into the search crop; every paste position a whole number
    of correlation steps away, up to the edge of the window, comes back as that centre shift (the
    peak cell is the one the pasted template lies in)."""
    m = _perturbed(fourier=False, **kw)
    with torch.no_grad():
        for conv in m.score_convs:  # positive path weights (the trained ones are)
            conv.weight.abs_()
    g = m.geometry
    gen = torch.Generator().manual_seed(1)
    template = torch.rand(1, 3, g.template_size, g.template_size, generator=gen) * 255
    stride, free = g.corr_stride, g.search_size - g.template_size
    cell_px = g.template_size / g.patches_per_side
    for top, left in ((0, 0), (free // 2 // stride * stride, 6 * stride), (free - free % stride, 2 * stride)):
        search = torch.rand(1, 3, g.search_size, g.search_size, generator=gen) * 255
        search[:, :, top:top + g.template_size, left:left + g.template_size] = template
        with torch.no_grad():
            located = m.locate(m.encode_template(template), search, rigid=True)
        centre = (g.search_size - 1) / 2 - (g.template_size - 1) / 2
        expected = torch.tensor([[(left - centre) / cell_px, (top - centre) / cell_px]])
        torch.testing.assert_close(located.rigid_shift, expected, atol=0.02, rtol=0)


@pytest.mark.parametrize("kw", [{}, {"patch_size": 4}], ids=["default", "k4"])
def test_one_box_rigid_shift_is_the_batched_one_bit_for_bit(kw):
    """A single box takes a plain-float path through the rigid placement (a tracker's every frame);
    on the same placement sums it must give the vectorised path's shift to the last bit, parabola
    steps, ties, flat cells and NaN included."""
    from patchnet_zoo.models.patchnet import _rigid_shift_batch, _rigid_shift_one

    g = PatchNet(**kw).with_response_size(9).geometry
    pooled = 1 << (g.levels - 1)
    rng = np.random.default_rng(0)
    for trial in range(3000):
        sums = (rng.standard_normal((1, pooled, pooled)) * rng.choice([1e-3, 1.0, 1e3])).astype(np.float32)
        if trial % 3 == 0:
            sums = np.round(sums, 1)  # ties and flat neighbourhoods
        if trial % 7 == 0:
            sums[0, rng.integers(pooled), rng.integers(pooled)] = np.nan
        if trial % 11 == 0:
            sums[:] = 1.0  # a flat cell
        peak = rng.integers(0, g.response_size, (1, 2))
        one = _rigid_shift_one(sums.reshape(-1), peak[0], pooled, g)
        assert one.dtype == np.float32 and one.shape == (1, 2)
        np.testing.assert_array_equal(one, _rigid_shift_batch(sums, peak, pooled, g))


def test_rigid_centre_replaces_the_centre_and_keeps_the_regressed_size():
    m = _perturbed()
    f, s, prev = _random_pairs(m, 4)
    with torch.no_grad():
        located = m.locate(f, s, rigid=True)
        assert m.locate(f, s).rigid_shift is None
    assert located.rigid_shift.shape == (4, 2) and torch.isfinite(located.rigid_shift).all()
    r = m.geometry.response_size
    cell = torch.stack([located.best % r - r // 2, located.best // r - r // 2], 1).float()
    assert ((located.rigid_shift - cell).abs() <= 0.5).all()  # inside the peak cell
    plain = decode_peak(located.score, located.best, located.offsets, prev)
    rigid = decode_peak(located.score, located.best, located.offsets, prev, centre_shift=located.rigid_shift)
    torch.testing.assert_close(rigid.boxes[:, :2] + rigid.boxes[:, 2:] / 2,
                               prev[:, :2] + located.rigid_shift * prev[:, 2:] / 8)
    torch.testing.assert_close(rigid.boxes[:, 2:], plain.boxes[:, 2:])
    torch.testing.assert_close(rigid.confidence, plain.confidence)


def test_select_alpha_overrides_the_learned_temperatures_and_centre_gain_scales_the_sub_cell_shift():
    m = _perturbed()
    f, s, prev = _random_pairs(m, 4)
    with torch.no_grad():
        given = m.locate(f, s, select_alpha=7.0)
        for pool in m.pools:
            pool.alpha.fill_(7.0)
        learned = m.locate(f, s)
    torch.testing.assert_close(given.offsets, learned.offsets)
    assert not torch.allclose(given.offsets, m.locate(f, s, select_alpha=0.5).offsets)
    plain = decode_peak(learned.score, learned.best, learned.offsets, prev)
    gained = decode_peak(learned.score, learned.best, learned.offsets, prev, centre_gain=1.5)
    cell_centre = prev[:, :2] + plain.cell * prev[:, 2:] / 8

    def centre(b):
        return b[:, :2] + b[:, 2:] / 2

    torch.testing.assert_close(centre(gained.boxes) - cell_centre, 1.5 * (centre(plain.boxes) - cell_centre))
    torch.testing.assert_close(gained.boxes[:, 2:], plain.boxes[:, 2:])
    torch.testing.assert_close(gained.confidence, plain.confidence)


def _real_crops(m: PatchNet, seq_dir, search_t: int, gain: float = 1.0) -> list[torch.Tensor]:
    """Template crop of frame 0's ground-truth box and the search crop of frame ``search_t`` around
    it, from real frames scaled by ``gain``, for model ``m``."""
    import numpy as np

    from patchnet_zoo.data.readers import read_folder_sequence
    from patchnet_zoo.geometry import crop_windows, xywh_to_cxcywh

    seq = read_folder_sequence(seq_dir)
    c = xywh_to_cxcywh(torch.as_tensor(np.asarray(seq.boxes[0], dtype=np.float32)).view(1, 4))
    crops = []
    for t, scale, size in ((0, 1.0, m.template_size), (search_t, m.geometry.search_scale, m.search_size)):
        frame = torch.from_numpy(np.ascontiguousarray(seq.frame(t))).permute(2, 0, 1).float() * gain
        crops.append(crop_windows(frame, c[:, :2], c[:, 2:] * scale, size, m.pixel_mean.view(3)))
    return crops


@pytest.mark.parametrize("fix", [{"input_mean": "box"}, {"patch_norm": "zero_mean"}], ids=["box-mean", "zero-mean"])
def test_centring_keeps_the_match_of_a_dark_video(data_root, fix):
    """Real frames, darkened to a third of their brightness: with the paper's fixed mean every crop
    sits far below it, one constant dominates every patch correlation and the score map goes flat;
    centred on the box's own mean colour, or with every patch correlation taken about its own
    means, the map keeps its shape (only its scale changes, as the template's contrast does)."""
    results = {}
    for name, kw in (("dataset", {}), ("fixed", fix)):
        m = _perturbed(**kw).eval()
        per_gain = {}
        for gain in (1.0, 1 / 3):
            crops = _real_crops(m, data_root / "sot" / "boat5", 1, gain)
            with torch.inference_mode():
                score, _ = m(*crops)
            per_gain[gain] = score.flatten()
        results[name] = per_gain
    fixed = results["fixed"]
    torch.testing.assert_close(fixed[1 / 3], fixed[1.0] / 3, rtol=1e-3, atol=1e-4)  # same map, a third the scale
    dataset = results["dataset"]
    spread = {g: float((v.max() - v.min()) / v.abs().max()) for g, v in dataset.items()}
    assert spread[1 / 3] < 0.5 * spread[1.0]  # the paper's centring flattens the darkened map


def test_zero_mean_patches_ignore_a_colour_offset_of_either_crop(data_root):
    """A zero-mean patch correlation sees texture, not colour: adding a constant colour to the
    template or the search crop of real frames leaves the score map and the offsets as they were
    (the paper's normalisation does not: its map changes)."""
    shift = torch.tensor([40.0, -25.0, 60.0]).view(1, 3, 1, 1)
    changed = {}
    for norm in ("energy", "zero_mean"):
        m = _perturbed(patch_norm=norm).eval()
        t, s = _real_crops(m, data_root / "sot" / "bag", 5)
        with torch.inference_mode():
            base = m(t, s)
            moved = [m(t + shift, s), m(t, s - shift)]
        if norm == "zero_mean":
            for score, off in moved:
                torch.testing.assert_close(score, base[0], rtol=1e-3, atol=1e-5)
                torch.testing.assert_close(off, base[1], rtol=1e-3, atol=1e-4)
        changed[norm] = max(float((score - base[0]).abs().max()) for score, _ in moved)
    assert changed["energy"] > 100 * changed["zero_mean"]
