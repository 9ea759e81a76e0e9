"""The docstring examples of the impact modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["impact.topology", "impact.csr", "impact.graph", "impact.change", "impact.propagation",
           "impact.limits", "impact.windows"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))

    assert result.failed == 0
