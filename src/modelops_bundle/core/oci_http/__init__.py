"""Talking OCI: digests and verified blob files (shared by every backend) and the distribution-spec client.

``digests`` has no network imports and is what the OCI-layout backend uses; the HTTP modules (``client``,
``transfer``) import ``requests``, so only the ``oci-distribution`` backend loads them, and only
when it is constructed.
"""
