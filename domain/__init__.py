"""``stakeledger.domain``: see docs/architecture.md for the layers and the direction of imports."""

# Run from a checkout, the folder also answers to a bare `import domain`; that second name
# would load every module twice (two Account classes, two topic registries). Refuse it.
if __name__ != "stakeledger.domain":
    raise ImportError(f"import stakeledger.domain, not {__name__}: this folder installs as stakeledger.domain")
