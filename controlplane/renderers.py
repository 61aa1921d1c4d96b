"""The API's JSON renderer, robust to text that is not valid Unicode.

A lone surrogate cannot be encoded as UTF-8: DRF's renderer (``ensure_ascii=False``) then
raises, and one such row stored before ingest refused them (the embedded SQLite keeps them in
JSON as ``\\ud800``) turned every listing that included it into a 500. Such a response is
rendered again with ASCII escapes: the same JSON, with the surrogate as ``"\\ud800"``.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils import encoders


class SafeJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return json.dumps(
                data,
                cls=encoders.JSONEncoder,
                ensure_ascii=True,
                allow_nan=not self.strict,
                separators=(",", ":"),
            ).encode("ascii")
