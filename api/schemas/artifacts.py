"""A search's artifacts (trained weights, ONNX) as the API lists them; the content is a separate download."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from nas.service.artifacts import ArtifactRecord


class ArtifactPublic(BaseModel):
    name: str = Field(description="e.g. best.onnx, best.pt, checkpoints/trial-00003.pt")
    media_type: str
    size: int = Field(description="Bytes.")
    sha256: str
    created_at: datetime
    url: str = Field(description="Where to download it (same token).")

    @classmethod
    def of(cls, search_id: str, a: ArtifactRecord) -> ArtifactPublic:
        return cls(name=a.name, media_type=a.media_type, size=a.size, sha256=a.sha256, created_at=a.created_at,
                   url=f"/searches/{search_id}/artifacts/{a.name}")


class ArtifactsPublic(BaseModel):
    data: list[ArtifactPublic]
    count: int
