"""Search spaces a spec can name."""

from __future__ import annotations

from pydantic import BaseModel

from nas.spaces import SearchSpace


class SpacePublic(BaseModel):
    name: str
    description: str
    resolution: list[int]
    width: list[float]
    stages: int
    dimensions: int

    @classmethod
    def of(cls, name: str, space: SearchSpace) -> SpacePublic:
        """``name`` is what a spec's ``space`` field takes (the file name), not the document's own name."""
        d = space.definition
        return cls(name=name, description=d.description, resolution=list(d.resolution), width=list(d.width),
                   stages=len(d.stages), dimensions=len(space.dimensions()))


class SpacesPublic(BaseModel):
    data: list[SpacePublic]
    count: int
