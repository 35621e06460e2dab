import torch

from patchnet_zoo.losses import box_offset_loss, localisation_margin_loss, search_targets


def test_margin_loss_zero_when_gt_dominates_and_positive_otherwise():
    score = torch.zeros(1, 1, 7, 7)
    score[0, 0, 3, 4] = 10.0
    assert localisation_margin_loss(score, torch.tensor([[1, 0]])) == 0
    # the wrong cell: the true peak violates the margin
    assert localisation_margin_loss(score, torch.tensor([[0, 0]])) > 0


def test_margin_loss_uses_each_samples_own_cell():
    torch.manual_seed(0)
    score = torch.randn(3, 1, 7, 7)
    cells = torch.tensor([[0, 0], [2, -1], [-3, 3]])
    batch = localisation_margin_loss(score, cells)
    single = torch.stack([localisation_margin_loss(score[i : i + 1], cells[i : i + 1]) for i in range(3)]).mean()
    torch.testing.assert_close(batch, single)
    off = torch.randn(3, 4, 7, 7)
    tgt = torch.randn(3, 4)
    b = box_offset_loss(off, cells, tgt)
    s = torch.stack([box_offset_loss(off[i : i + 1], cells[i : i + 1], tgt[i : i + 1]) for i in range(3)]).mean()
    torch.testing.assert_close(b, s)


def test_margin_is_capped_at_two():
    score = torch.zeros(1, 1, 7, 7)  # flat map: every cell pays min(D, 2)
    loss = localisation_margin_loss(score, torch.tensor([[0, 0]]))
    d = torch.tensor([[abs(i - 3) + abs(j - 3) for j in range(7)] for i in range(7)]).clamp(max=2).sum()
    torch.testing.assert_close(loss, d.float() / (49 / 4))


def test_search_targets_shift_and_offsets():
    base = torch.tensor([[100.0, 100.0, 80.0, 80.0]])  # cell = 10 px
    same = torch.tensor([[60.0, 60.0, 80.0, 80.0]])
    c, cell, off = search_targets(base, same)
    assert cell.tolist() == [[0, 0]] and torch.allclose(off, torch.zeros(4)) and torch.equal(c, base[:, :2])
    far = torch.tensor([[110.0, 60.0, 80.0, 80.0]])  # +5 cells in x -> window moves 4 cells
    c, cell, off = search_targets(base, far)
    assert cell.tolist() == [[1, 0]]
    torch.testing.assert_close(c, torch.tensor([[140.0, 100.0]]))
    torch.testing.assert_close(off, torch.zeros(1, 4))
    bigger = torch.tensor([[55.0, 60.0, 90.0, 80.0]])  # left edge -0.5 cell, right edge +0.5 cell
    _, cell, off = search_targets(base, bigger)
    torch.testing.assert_close(off, torch.tensor([[-0.5, 0.0, 0.5, 0.0]]))
