"""Portfolio risk rules, one rule per module (seeds 001 and 002, SPEC "Portfolio and risk").

Every function here is pure: it takes the state it needs and returns a decision. It
imports no persistence and reads no clock, so the application records each decision as
an event and a replay reaches the same decision. No float is used: outputs feed events.
Amounts are ``int`` base units (``*_units``); prices and beliefs are probabilities scaled
by ``WAD`` (``*_wad``); percentages are ``Decimal`` percent (``*_pct``).
"""
