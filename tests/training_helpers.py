"""A few optimizer steps of a training module on one batch, for tests that check an objective can be learned."""
import torch


def train_on(module: torch.nn.Module, batch, steps: int, lr: float) -> list[tuple[torch.Tensor, dict]]:
    """Adam on ``module``'s trainable parameters; the (loss, metrics) of every step, the first from the initial weights."""
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    history = []
    for _ in range(steps):
        loss, metrics = module(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((loss, metrics))
    return history


def assert_learns_fresh_masks_with_a_frozen_readout(module: torch.nn.Module, batch) -> None:
    """A masking objective trained on ``batch`` recovers freshly drawn masks (loss under half the initial one, so
    not a memorized choice of atoms) while the encoder's ``feat_lin`` and projection head stay frozen and unchanged."""
    frozen = {n: p.clone() for n, p in module.named_parameters() if n.startswith(("encoder.feat_lin", "encoder.head"))}
    assert frozen and not any(p.requires_grad for n, p in module.named_parameters() if n in frozen)
    first = train_on(module, batch, steps=80, lr=1e-2)[0][0].item()
    module.eval()
    with torch.no_grad():
        losses = [module(batch)[0].item() for _ in range(5)]
    assert sum(losses) / len(losses) < 0.5 * first
    assert all(torch.equal(p, frozen[n]) for n, p in module.named_parameters() if n in frozen)
