"""``stakeledger.projections``: see docs/architecture.md for the layers and the direction of imports."""

# Run from a checkout, the folder also answers to a bare `import projections`; that second name
# would load every module twice (two Account classes, two topic registries). Refuse it.
if __name__ != "stakeledger.projections":
    raise ImportError(
        f"import stakeledger.projections, not {__name__}: this folder installs as stakeledger.projections"
    )
