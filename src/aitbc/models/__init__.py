"""ORM models, one module per table. Importing this package registers every table."""

from aitbc.models.api_key import ApiKey
from aitbc.models.base import Base
from aitbc.models.gpu import Gpu, GpuAiModel
from aitbc.models.miner import Miner

__all__ = ["ApiKey", "Base", "Gpu", "GpuAiModel", "Miner"]
