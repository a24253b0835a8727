"""The long-format results table: filters, per-seed reads, and its versioned JSON form."""

from __future__ import annotations

import json
import math

import pytest

from kag.experiments.table import COLUMNS, TABLE_VERSION, ResultTable, Row


def _row(seed=0, layer="L1", k=3, observable="pr_ratio", role="trained", value=1.5, condition=None):
    return Row(64, seed, "standard", "clean", layer, k, "global", condition, role, observable, value)


TABLE = ResultTable([_row(s, layer, k, value=1 + s + k / 10 + (layer == "L2"))
                     for s in (2, 0, 1) for layer in ("L1", "L2") for k in (1, 3)]
                    + [_row(0, observable="kl", value=math.nan)])


def test_columns_are_the_documented_long_format():
    assert COLUMNS == ("width", "seed", "regime", "eval_images", "layer", "k", "analysis", "condition", "role",
                       "observable", "value")


def test_select_filters_on_values_and_sets():
    assert len(TABLE.select(layer="L1", k=3, observable="pr_ratio")) == 3
    assert len(TABLE.select(layer={"L1", "L2"}, k=3, observable="pr_ratio")) == 6
    assert TABLE.select(layer="L3").rows == ()
    assert TABLE.unique("layer") == ["L1", "L2"]


def test_by_seed_orders_seeds_and_refuses_ambiguous_filters():
    assert TABLE.by_seed(layer="L2", k=1, observable="pr_ratio") == {0: pytest.approx(2.1), 1: pytest.approx(3.1),
                                                                      2: pytest.approx(4.1)}
    assert TABLE.seed_values((2, 0), layer="L1", k=3, observable="pr_ratio") == [pytest.approx(3.3), pytest.approx(1.3)]
    with pytest.raises(ValueError, match="several rows for seed"):
        TABLE.by_seed(observable="pr_ratio")
    with pytest.raises(LookupError, match="no value for seed 7"):
        TABLE.seed_values((0, 7), layer="L1", k=3, observable="pr_ratio")


def test_value_needs_exactly_one_row():
    assert TABLE.value(seed=1, layer="L1", k=1, observable="pr_ratio") == pytest.approx(2.1)
    with pytest.raises(LookupError, match="4 rows match"):
        TABLE.value(seed=1, observable="pr_ratio")


def test_unknown_column_is_a_one_line_error():
    with pytest.raises(ValueError, match="column 'width_px' is unknown"):
        TABLE.select(width_px=64)


def test_json_round_trip_is_strict_and_keeps_nan():
    data = json.loads(json.dumps(TABLE.to_json(), allow_nan=False))
    assert data["schema"] == TABLE_VERSION and data["columns"] == list(COLUMNS)
    back = ResultTable.from_json(data)
    assert back == TABLE and math.isnan(back.value(observable="kl"))


def test_a_table_of_another_schema_is_refused():
    data = TABLE.to_json()
    with pytest.raises(ValueError, match="cannot be read"):
        ResultTable.from_json({**data, "schema": TABLE_VERSION + 1})
