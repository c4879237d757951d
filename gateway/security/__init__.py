"""Fleet security: the CA and identities, broker authorization, bundles, signed commands."""
