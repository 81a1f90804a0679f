"""The factory edge: a LiteRT-only runtime on K3s sites, the model store on the device, signed
versions, device profiles, and the ways a version reaches a site (direct, GitOps, air-gapped
bundle, or a local fleet on one laptop).

Import-light on purpose: the runtime process imports only what serving needs (numpy, LiteRT,
an ASGI stack, prometheus_client, cryptography), so nothing heavy is imported here.
"""
