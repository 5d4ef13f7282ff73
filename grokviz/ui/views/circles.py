"""The Circles tab's data: each key frequency's tokens, as projected by ``grokviz.analysis.circle``,
shaped into the points and the joining path the chart draws, with (a, b) and the answer marked."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def circle_frames(drawn, marks: Mapping[str, int | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A :class:`grokviz.analysis.circle.Circle` -> (points: token, x, y, order; marked: token, x, y, role).

    ``marks``: role ("a", "b", "answer") -> token; tokens not on the circle (0 in log order) and
    None are skipped. a = b is one mark.
    """
    xy = drawn.xy.numpy()
    points = pd.DataFrame({"token": drawn.tokens.numpy(), "x": xy[:, 0], "y": xy[:, 1], "order": np.arange(len(xy))})
    where = {int(t): i for i, t in enumerate(drawn.tokens.tolist())}
    rows = []
    if marks.get("a") is not None and marks.get("a") == marks.get("b"):
        marks = {"a = b": marks["a"], **{k: v for k, v in marks.items() if k not in ("a", "b")}}
    for role, token in marks.items():
        if token is not None and int(token) in where:
            i = where[int(token)]
            rows.append({"token": int(token), "x": xy[i, 0], "y": xy[i, 1], "role": role})
    return points, pd.DataFrame(rows, columns=["token", "x", "y", "role"])
