import numpy as np
import pytest
import torch

from patchnet_zoo.geometry import (as_boxes, box_iou, check_boxes, clip_boxes, crop_windows, cxcywh_to_xywh,
                                   to_frame_tensor, xywh_to_cxcywh, xywh_to_xyxy, xyxy_to_xywh)


def test_box_conversions_round_trip():
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.5, 1.5, 2.0, 3.0]])
    torch.testing.assert_close(xyxy_to_xywh(xywh_to_xyxy(b)), b)
    torch.testing.assert_close(cxcywh_to_xywh(xywh_to_cxcywh(b)), b)
    assert xywh_to_xyxy(b)[0].tolist() == [10, 20, 40, 60]
    assert xywh_to_cxcywh(b)[0].tolist() == [25, 40, 30, 40]


def test_iou_without_plus_one():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]).item() == pytest.approx(1.0)
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]).item() == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [10, 0, 10, 10]).item() == 0.0


def test_check_boxes_messages():
    with pytest.raises(ValueError, match="NaN"):
        check_boxes(as_boxes([1, 2, float("nan"), 4]))
    with pytest.raises(ValueError, match="positive width"):
        check_boxes(as_boxes([1, 2, 0, 4]))
    with pytest.raises(ValueError, match="positive width"):
        check_boxes(as_boxes([1, 2, -3, 4]))
    with pytest.raises(ValueError, match="wholly outside"):
        check_boxes(as_boxes([200, 2, 10, 10]), (100, 100))
    check_boxes(as_boxes([95, -5, 10, 10]), (100, 100))  # partly outside is fine
    with pytest.raises(ValueError, match="shape"):
        as_boxes([1, 2, 3])


def test_crop_is_exact_for_pixel_aligned_windows():
    img = torch.arange(3 * 20 * 30, dtype=torch.float32).view(3, 20, 30)
    # an 8x8 window at integer position, resampled to 8x8, is a plain slice
    out = crop_windows(img, torch.tensor([[14.0, 9.0]]), torch.tensor([[8.0, 8.0]]), 8, (0, 0, 0))
    torch.testing.assert_close(out[0], img[:, 5:13, 10:18])


def test_crop_many_boxes_in_one_call_and_fill_outside():
    img = torch.full((3, 50, 60), 200, dtype=torch.uint8)
    centers = torch.tensor([[30.0, 25.0], [-100.0, -100.0], [59.0, 25.0]])
    sizes = torch.tensor([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
    out = crop_windows(img, centers, sizes, 16, (1.0, 2.0, 3.0))
    assert out.shape == (3, 3, 16, 16)
    torch.testing.assert_close(out[0], torch.full_like(out[0], 200.0))  # bilinear rounding only
    torch.testing.assert_close(out[1], torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).expand(3, 16, 16))
    # the third window is half outside: left half image, right half fill
    torch.testing.assert_close(out[2, 0, :, :9], torch.full_like(out[2, 0, :, :9], 200.0))
    torch.testing.assert_close(out[2, 0, :, 10:], torch.full_like(out[2, 0, :, 10:], 1.0))


def test_crop_samples_the_float32_points_training_used():
    """The window geometry is computed in numpy; the shipped weights were trained on crops whose
    sample points torch computed in float32. Both must give the same crops, bit for bit, or the
    recipes would no longer reproduce the shipped weights."""
    import torch.nn.functional as F

    def torch_grid_crop(frame, centers, sizes, out_size, fill):
        fill_t = torch.as_tensor(fill, dtype=torch.float32).view(3, 1, 1)
        lo, hi = centers - sizes / 2, centers + sizes / 2
        _, h, w = frame.shape
        x0 = int(max(0, min(w - 1, float(lo[:, 0].min()) - 1)))
        y0 = int(max(0, min(h - 1, float(lo[:, 1].min()) - 1)))
        x1 = int(min(w, max(x0 + 1, float(hi[:, 0].max()) + 2)))
        y1 = int(min(h, max(y0 + 1, float(hi[:, 1].max()) + 2)))
        roi = torch.zeros(3, y1 - y0 + 2, x1 - x0 + 2)
        roi[:, 1:-1, 1:-1] = frame[:, y0:y1, x0:x1] - fill_t
        origin = lo.new_tensor([x0 - 1, y0 - 1])
        roi_wh = lo.new_tensor([roi.shape[2], roi.shape[1]])
        steps = (torch.arange(out_size, dtype=torch.float32) + 0.5) / out_size
        norm = ((lo - origin)[:, :, None] + (hi - lo)[:, :, None] * steps) * (2 / roi_wh)[:, None] - 1
        b = centers.shape[0]
        grid = torch.stack([norm[:, None, 0, :].expand(b, out_size, out_size),
                            norm[:, 1, :, None].expand(b, out_size, out_size)], -1)
        return F.grid_sample(roi.unsqueeze(0).expand(b, -1, -1, -1), grid, align_corners=False) + fill_t

    gen = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (3, 90, 130), dtype=torch.uint8, generator=gen)
    fill = (123.675, 116.28, 103.53)
    for b in (1, 5, 16):
        centers = torch.rand(b, 2, generator=gen) * torch.tensor([160.0, 120.0]) - 15
        sizes = torch.rand(b, 2, generator=gen) * 70 + 0.7
        for out_size in (32, 64, 67):
            assert torch.equal(crop_windows(frame, centers, sizes, out_size, fill),
                               torch_grid_crop(frame, centers, sizes, out_size, fill))


def test_frame_formats_agree():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ref = to_frame_tensor(rgb)
    assert ref.shape == (3, 24, 32) and ref.dtype == torch.uint8
    rgba = np.concatenate([rgb, np.full((24, 32, 1), 255, np.uint8)], -1)
    assert torch.equal(to_frame_tensor(rgba), ref)
    torch.testing.assert_close(to_frame_tensor(rgb.astype(np.float32) / 255), ref.float(), atol=1e-3, rtol=0)
    torch.testing.assert_close(to_frame_tensor(rgb.astype(np.float64)), ref.float())
    torch.testing.assert_close(to_frame_tensor(torch.from_numpy(rgb).permute(2, 0, 1)), ref)
    gray = rgb[..., 0]
    g = to_frame_tensor(gray)
    assert g.shape == (3, 24, 32) and torch.equal(g[0], g[2])
    assert torch.equal(to_frame_tensor(gray[..., None]), g)
    flipped = rgb[:, ::-1]  # non-contiguous view
    assert torch.equal(to_frame_tensor(flipped), ref.flip(-1))
    with pytest.raises(ValueError, match="NaN"):
        to_frame_tensor(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError):
        to_frame_tensor(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError):
        to_frame_tensor("frame.jpg")


def test_clip_boxes():
    b = clip_boxes(torch.tensor([[-5.0, 10.0, 20.0, 20.0], [90.0, 90.0, 20.0, 20.0]]), (100, 100))
    assert b.tolist() == [[0, 10, 15, 20], [90, 90, 10, 10]]


def test_cxcywh_conversion_same_on_every_path():
    """The numpy path (CPU, no grad) gives torch's numbers and dtype; autograd and integer boxes
    still go through torch."""
    b = torch.rand(5, 4, dtype=torch.float64) * 100
    out = xywh_to_cxcywh(b)
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.cat([b[:, :2] + b[:, 2:] / 2, b[:, 2:]], -1))
    g = b.float().requires_grad_()
    xywh_to_cxcywh(g)[:, 0].sum().backward()
    assert g.grad[:, 0].tolist() == [1.0] * 5 and g.grad[:, 2].tolist() == [0.5] * 5
    assert xywh_to_cxcywh(torch.tensor([[1, 2, 3, 4]])).tolist() == [[2.5, 4.0, 3.0, 4.0]]


def test_one_box_check_agrees_with_the_batched_check():
    """``check_boxes`` takes a plain-float path for a single box; whether a box passes must not
    depend on it (the same box twice in a batch goes through the vectorised check)."""
    frame_hw = (90, 130)
    f32 = np.float32
    boxes = [[10, 10, 20, 20], [np.nan, 1, 2, 2], [1, 1, np.inf, 2], [1, 1, 0, 2], [1, 1, 2, -1],
             [-20, 5, 20, 5], [-20, 5, 20.5, 5], [129.9, 89.9, 5, 5], [130, 10, 5, 5], [10, 90, 5, 5],
             [-1e8, 0, float(f32(1e8) + f32(4)), 3], [float(-f32(16777217.0)), 1, 16777216.0, 2]]
    for box in boxes:
        for hw in (frame_hw, None):
            one = torch.tensor([box], dtype=torch.float32)

            def raises(b):
                try:
                    check_boxes(b, hw)
                except ValueError:
                    return True
                return False

            assert raises(one) == raises(one.repeat(2, 1)), (box, hw)


def test_one_window_crop_equals_the_batched_crop():
    """``crop_windows`` with one window (a tracker's every frame) takes a scalar path of its own:
    it must give the batched path's crop bit for bit, windows partly or wholly outside included."""
    gen = torch.Generator().manual_seed(1)
    frame = torch.randint(0, 256, (3, 70, 110), dtype=torch.uint8, generator=gen)
    fill = (123.675, 116.28, 103.53)
    centers = torch.rand(40, 2, generator=gen) * torch.tensor([180.0, 130.0]) - 35
    sizes = torch.rand(40, 2, generator=gen) * 90 + 0.3
    for frame_ in (frame, frame.float() * 0.7):
        for i in range(len(centers)):
            # the same window twice takes the batched path over the same region of interest
            twice = crop_windows(frame_, centers[[i, i]], sizes[[i, i]], 67, fill)
            one = crop_windows(frame_, centers[i:i + 1], sizes[i:i + 1].numpy(), 67, fill)
            assert torch.equal(one, twice[:1]), i
