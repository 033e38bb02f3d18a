"""Outside services: the credential vault, and the adapters that give the engine's nodes their
stored credentials and usage recording (:mod:`flowloom.integrations.credentials`,
:mod:`flowloom.integrations.usage`, which import storage and so are not imported here)."""

from flowloom.integrations.vault import Sealed, Vault, VaultError

__all__ = ["Sealed", "Vault", "VaultError"]
