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
