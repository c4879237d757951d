"""Building blocks shared by every config section."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A coordinate normalised to the frame: 0 is the left/top edge, 1 the right/bottom.
Norm = Annotated[float, Field(ge=0.0, le=1.0)]
# An identifier that is safe inside an MQTT topic level and an InfluxDB tag.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
