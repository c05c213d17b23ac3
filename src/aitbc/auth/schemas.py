from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aitbc.kit.types import RequestModel

Role = Literal["client", "miner", "admin"]
OwnerId = str


class ApiKeyCreate(RequestModel):
    role: Role
    owner_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")


class ApiKeyPublic(BaseModel):
    key_id: str
    prefix: str
    role: Role
    owner_id: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    key: str = Field(description="The secret. Shown once; store it now.")
    key_id: str
    role: Role
    owner_id: str


class Me(BaseModel):
    owner_id: str
    role: Role
    key_id: str | None
