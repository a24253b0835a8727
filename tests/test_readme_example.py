"""The README's "Measure KAG on your own network" runs as written: a CNN, a deeper ReLU MLP and a
tiny ViT, many layers each in one call, a plot and a table (issue 18 items 6 and 8)."""

import math
import re

import pytest
from pathlib import Path


import kag

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Measure KAG on your own network"
NETWORKS = {"SmallCNN": ("conv", "fc1"), "DeepMLP": ("fc1", "fc2", "fc3"), "TinyViT": ("embed", "block", "head")}


def _blocks() -> list[str]:
    """The python code blocks of the section: [set-up, measurement]."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_a_setup_block_and_a_measurement_block():
    setup, measurement = _blocks()
    assert "copy.deepcopy(model)" in setup and all(f"class {name}" in setup for name in NETWORKS)
    assert "kag.measure(" in measurement and "kag.compare_to_init(" in measurement
    assert "kag.plot_measurement(" in measurement and "kag.ImageGrid(" in measurement
    assert not re.search(r"^(class|def) ", measurement, flags=re.M)  # it only uses the networks and x


@pytest.mark.slow
def test_the_readme_example_runs_as_written(mnist, tmp_path, monkeypatch, capsys):
    """A CNN (with a conv layer), a deeper ReLU MLP and a tiny ViT, trained briefly on MNIST, many
    layers each in one call, a plot, a CSV, compare_to_init and spatial minors: as written."""
    monkeypatch.chdir(tmp_path)  # the example saves a figure and a table in the working directory
    namespace: dict = {"__name__": "readme_example"}
    for block in _blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 (the README's own code)
    printed = capsys.readouterr().out
    assert "Jacobian of TinyViT's block: (16, 512, 784)" in printed and "PR ratio of 2-minors" in printed
    results = namespace["results"]
    assert set(results) == set(NETWORKS)
    for name, layers in NETWORKS.items():
        rows = results[name].select(observable="pr_ratio")
        assert {(r.layer, r.k) for r in rows} == {(layer, k) for layer in layers for k in (1, 2, 3)}
        assert all(math.isfinite(r.value) and math.isfinite(r.se) and r.n_defined == 16 for r in rows)
        assert all(math.isfinite(r.value) for r in results[name].select(observable="rr_ratio"))
        assert f"{name:8s} {layers[0]:5s} k=1: PR ratio" in printed
    conv = results["SmallCNN"].select(layer="conv", observable="pr")
    assert max(r.zero_fraction for r in conv) < 0.05  # support sampling: a conv layer's minors are not all 0
    assert [row.k for row in namespace["table"]] == [1, 2, 3]
    assert all(math.isfinite(row.pr_ratio) and math.isfinite(row.kl) and math.isfinite(row.rr_ratio)
               for row in namespace["table"])
    assert (tmp_path / "pr-ratio.png").stat().st_size > 10_000
    assert (tmp_path / "deep-mlp.csv").read_text().splitlines()[0] == ",".join(kag.measurement.FIELDS)
