"""imcea.REASONS, the one table of reasons, against DESIGN §2.4 as tests/expected.py writes it
down, and what derives from it: the case format's reason/action pairs and the policy
server's enhanced status codes."""

from __future__ import annotations

import re

import pytest
from expected import REASONS_TABLE

import imcea
from imcea import REASONS, Action, Reason
from imcea.cases import REASON_ACTION
from imcea.reasons import ReasonInfo

# RFC 3463: class 2 for success, 5 for a permanent failure; subject.detail.
ENHANCED_STATUS = re.compile(r"[25]\.[0-7]\.[0-9]{1,3}")


def test_every_reason_has_one_row() -> None:
    assert set(REASONS) == set(Reason)
    assert all(isinstance(info, ReasonInfo) for info in REASONS.values())
    with pytest.raises(TypeError):
        REASONS[Reason.POSTMASTER] = REASONS[Reason.NO_GATEWAY]  # type: ignore[index]


@pytest.mark.parametrize("reason", list(Reason))
def test_each_row_says_what_design_says(reason: Reason) -> None:
    action, code, ndr = REASONS_TABLE[reason]
    info = REASONS[reason]
    assert info.action is action
    assert info.ndr == ndr
    assert info.reply.startswith(f"{code} ")
    assert info.refused is (code != 250)
    # refused at RCPT, or accepted and then returned by NDR: never both
    if info.action is Action.RETURN:
        assert info.refused is (info.ndr is None)
    else:
        assert not info.refused and info.ndr is None


@pytest.mark.parametrize("reason", list(Reason))
def test_status_codes_follow_the_outcome(reason: Reason) -> None:
    info = REASONS[reason]
    assert ENHANCED_STATUS.fullmatch(info.status), info.status
    assert info.status[0] == ("5" if info.action is Action.RETURN else "2")


STATUS = {  # RFC 3463 subjects and details as chosen for each returned reason
    Reason.UNKNOWN_RECIPIENT: "5.1.1",
    Reason.REROUTING_DISABLED: "5.1.1",
    Reason.MALFORMED_ENCAPSULATION: "5.1.1",
    Reason.ENCAPSULATION_TOO_DEEP: "5.1.1",
    Reason.ENCAPSULATED_NOT_REROUTED: "5.7.1",
    Reason.NO_GATEWAY: "5.4.4",
    Reason.RELAY_DENIED: "5.7.1",
    Reason.DENIED_HOST: "5.7.1",
    Reason.ENCAPSULATED_RELAY_DENIED: "5.7.1",
    Reason.MALFORMED_ADDRESS: "5.1.3",
}


@pytest.mark.parametrize(("reason", "status"), STATUS.items())
def test_the_status_of_each_returned_reason(reason: Reason, status: str) -> None:
    assert REASONS[reason].status == status


@pytest.mark.parametrize(
    ("reason", "reply"),
    [
        (Reason.LOCAL_RECIPIENT, "250 OK - Recipient <a@b.example>"),
        (Reason.UNKNOWN_RECIPIENT, "250 OK - Recipient <a@b.example>"),
        (Reason.RELAY_DENIED, "550 Relaying is prohibited"),
        (Reason.MALFORMED_ADDRESS, "553 malformed address: <a@b.example>"),
    ],
)
def test_replies_echo_the_recipient_where_the_ims_did(reason: Reason, reply: str) -> None:
    assert REASONS[reason].reply_to("a@b.example") == reply


def test_the_case_format_takes_its_actions_from_the_table() -> None:
    assert {reason: info.action for reason, info in REASONS.items()} == REASON_ACTION


def test_decisions_are_built_from_the_table() -> None:
    """One recipient per reason that a plain settings value can give: the decision's
    action, reply and NDR are those of its reason's row."""
    settings = imcea.Settings(
        reroute=True,
        routing=[imcea.Route("contoso.com", "inbound"), imcea.Route("always.example", "relay")],
        restrictions=imcea.Restrictions(allow=["10.0.0.0/8"], deny=["10.9.9.9"]),
        gateways=["X400"],
        directory=["known@contoso.com"],
    )
    recipients = [
        "known@contoso.com",
        "nobody@contoso.com",
        "Postmaster",
        "<>",
        "x@always.example",
        "x@elsewhere.example",
        imcea.encode("MS", "NET/PO/USER", "contoso.com"),
        imcea.encode("X400", "c=US;a= ;p=MS;o=PARIS;s=user;", "contoso.com"),
        imcea.encode("INVALID", "whatever", "contoso.com"),
        imcea.encode("SMTP", "x@elsewhere.example", "contoso.com"),
    ]
    seen = set()
    for ip in ("10.0.0.1", "192.0.2.1", "10.9.9.9"):
        for decision in imcea.decide(imcea.Envelope("s@x.example", recipients), ip, settings):
            info = REASONS[decision.reason]
            assert decision.action is info.action
            assert decision.ndr == info.ndr
            echoed = decision.recipient.strip().removeprefix("<").removesuffix(">")
            assert decision.reply == info.reply_to(echoed)
            seen.add(decision.reason)
    assert len(seen) >= 12, seen
