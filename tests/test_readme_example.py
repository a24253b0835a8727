"""The README's "Measure KAG on your own network" runs as written, and its measurement block runs
on other networks: a 3-layer ReLU MLP and a small CNN, on 28×28×1 and 32×32×3 images."""

import copy
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import kag

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Measure KAG on your own network"
SHAPES = {"28x28x1": (1, 28, 28), "32x32x3": (3, 32, 32)}


def _blocks() -> list[str]:
    """The python code blocks of the section: [set-up, measurement]."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


class ReluMLP(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(math.prod(shape), width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


class SmallCNN(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        c, h, w = shape
        self.conv = nn.Conv2d(c, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc1 = nn.Linear(4 * (h // 4) * (w // 4), 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.pool(torch.relu(self.conv(x))).flatten(1))))


def test_the_section_has_a_setup_block_and_a_measurement_block():
    setup, measurement = _blocks()
    assert "copy.deepcopy(model)" in setup
    assert "kag.compare_to_init(model, init, x" in measurement and "kag.ImageGrid(" in measurement
    assert not re.search(r"^(class|def) ", measurement, flags=re.M)  # it only uses model, init and x


def test_the_readme_example_runs_as_written(capsys):
    namespace: dict = {"__name__": "readme_example"}
    for block in _blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 (the README's own code)
    printed = capsys.readouterr().out
    assert "Jacobian: (16, 10, 3072)" in printed and "PR ratio of 2-minors" in printed
    assert [row.k for row in namespace["table"]] == [1, 2, 3]
    assert all(math.isfinite(row.pr_ratio) and math.isfinite(row.kl) for row in namespace["table"])
    assert {(r.layer, r.k) for r in namespace["result"].select(observable="pr_ratio")} == {
        (layer, k) for layer in ("fc1", "fc2") for k in (1, 2)}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("network", [ReluMLP, SmallCNN], ids=["relu-mlp", "cnn"])
def test_the_measurement_block_runs_on_other_networks(network, shape, capsys):
    torch.manual_seed(0)
    init = network(shape)
    model = copy.deepcopy(init)
    with torch.no_grad():  # a stand-in for training
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    namespace = {"torch": torch, "kag": kag, "model": model, "init": init, "x": torch.randn(8, *shape)}
    exec(compile(_blocks()[1], str(README), "exec"), namespace)  # noqa: S102
    assert namespace["J"].shape == (8, 10, math.prod(shape))
    assert namespace["grid"] == kag.ImageGrid(shape[1], shape[2], channels=shape[0])
    assert all(math.isfinite(row.pr_ratio) for row in namespace["table"])
    assert "PR ratio of 2-minors" in capsys.readouterr().out
