"""Each ProvisioningPolicy body validated once per resourceVersion (:class:`PolicyModels`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from litellm_operator.models import ProvisioningPolicy


class PolicyModels:
    """Each policy validated once per resourceVersion, not once per user reconciled against it.

    A policy that does not validate is handed on as its body: the reconcile reports why.
    """

    def __init__(self) -> None:
        self._models: dict[str, tuple[str, ProvisioningPolicy | None]] = {}

    def of(self, body: Mapping[str, Any] | None) -> ProvisioningPolicy | Mapping[str, Any] | None:
        if body is None:
            return None
        meta = body.get("metadata") or {}
        key, version = str(meta.get("uid") or meta.get("name")), str(meta.get("resourceVersion"))
        cached = self._models.get(key)
        if cached is None or cached[0] != version:
            try:
                cached = (version, ProvisioningPolicy.model_validate(body))
            except ValidationError:
                cached = (version, None)
            self._models[key] = cached
        return cached[1] or body
