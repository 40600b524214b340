"""The real moral graph, read in place from ../shared (never copied into the project).

`shared_dir` (tests/conftest.py) skips with a clear reason when ../shared is absent.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from constituencies.moral_graph import MoralGraph, load_moral_graph

REAL_GRAPH = Path("data") / "moral-graph" / "moral-graph-prolific-run.json"
REAL_EDGES = 67  # the file's edge count; test_real_graph_imports checks it


@lru_cache(maxsize=2)
def _load(path: Path) -> MoralGraph:
    return load_moral_graph(path)


@pytest.fixture
def real_graph_path(shared_dir: Path) -> Path:
    return shared_dir / REAL_GRAPH


@pytest.fixture
def real_graph(real_graph_path: Path) -> MoralGraph:
    """MAI's DFT prolific-run graph (frozen models, so one load serves every test)."""
    return _load(real_graph_path)
