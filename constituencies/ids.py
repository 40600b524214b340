"""Identifier types shared by every layer.

Ids appear in topics, file paths and log lines, so they are restricted to a
conservative alphabet that is safe in all three.
"""

from typing import Annotated

from pydantic import StringConstraints

Id = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
    ),
]
