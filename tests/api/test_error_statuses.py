"""Every refusal code the ledger can raise has one HTTP status, kept in api/ alone."""

import importlib
import pkgutil

import stakeledger.adapters
import stakeledger.api
import stakeledger.domain
from stakeledger.api.errors import STATUS_BY_CODE, http_status_for
from stakeledger.domain.errors import FrozenError, HoldPeriodError, LedgerError, UnknownAccountError
from stakeledger.domain.model.apikeys import UnauthenticatedError


def every_ledger_error() -> set[type[LedgerError]]:
    for package in (stakeledger.domain, stakeledger.adapters, stakeledger.api):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    found, todo = set(), [LedgerError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_status_table_when_every_error_class_is_walked_then_each_code_has_a_status():
    codes = {cls.code for cls in every_ledger_error()}
    assert len(codes) > 25
    assert codes - set(STATUS_BY_CODE) == set()


def test_errors_when_read_outside_api_then_none_carries_an_http_status():
    outside_api = [cls for cls in every_ledger_error() if not cls.__module__.startswith("stakeledger.api")]
    assert len(outside_api) > 25
    assert [cls.__name__ for cls in outside_api if "http_status" in vars(cls)] == []


def test_http_status_when_asked_for_known_refusals_then_the_table_answers():
    assert http_status_for(FrozenError("x")) == 409
    assert http_status_for(HoldPeriodError("x")) == 409
    assert http_status_for(UnknownAccountError("x")) == 404
    assert http_status_for(UnauthenticatedError("x")) == 401
