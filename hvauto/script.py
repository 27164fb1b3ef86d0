"""A rendered template: its PowerShell text for one Windows version and the values for its param() block.

Rendering produces a :class:`Script`; a transport runs one. Nothing here knows a transport:
PSRP binds ``params`` as parameters, and the text form (:meth:`Script.as_text`, used by
pywinrm and ``--render``) carries them in a base64 JSON envelope that a fixed prologue decodes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The prologue is fixed text: it never changes with the values, so a value can never become code.
# It decodes the envelope, turns the JSON object into a hashtable and splats it onto the
# script block's param() block, which binds and converts each value by its declared type.
ENVELOPE_PROLOGUE = """\
# hvauto: self-contained form. The values travel in the base64 JSON envelope below and are bound
# to the param() block of the script block that follows; they are never part of the code.
$hvautoEnvelope = '{envelope}'
$hvautoJson = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($hvautoEnvelope))
$hvautoValues = ConvertFrom-Json -InputObject $hvautoJson
$hvautoParams = @{{}}
foreach ($hvautoProperty in $hvautoValues.PSObject.Properties) {{
    $hvautoParams[$hvautoProperty.Name] = $hvautoProperty.Value
}}
& {{
{body}
}} @hvautoParams
"""


@dataclass(frozen=True)
class Script:
    """A rendered template for one Windows Server version, and the values for its param() block."""

    template: str
    version: str
    body: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Re-sending after a lost answer can do no harm (the step inspects before it acts, or changes nothing).
    safe_to_resend: bool = True
    #: The step changes nothing on the host.
    read_only: bool = False
    #: The JSON Schema its ``result`` must match (the template's declared output); None: unchecked.
    output: Mapping[str, Any] | None = field(default=None, compare=False)

    def envelope(self) -> str:
        """The values as base64 of UTF-8 JSON: only [A-Za-z0-9+/=], safe inside single quotes."""
        raw = json.dumps(dict(self.params), ensure_ascii=False, separators=(",", ":"))
        return base64.b64encode(raw.encode("utf-8")).decode("ascii")

    def as_text(self) -> str:
        """The exact self-contained PowerShell that pywinrm sends and ``--render`` prints."""
        return ENVELOPE_PROLOGUE.format(envelope=self.envelope(), body=self.body.rstrip("\n"))


__all__ = ["ENVELOPE_PROLOGUE", "Script"]
