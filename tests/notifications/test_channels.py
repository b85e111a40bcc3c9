"""OutgoingMessage checks, delivery errors, and the in-memory fake channel."""

from __future__ import annotations

import pytest

from notifications import (
    Channel,
    DeliveryError,
    HttpProviderChannel,
    InMemoryChannel,
    OutgoingMessage,
    PermanentFailure,
    SmtpChannel,
    TemporaryFailure,
)


def message(channel: str = "sms", message_id: str = "m-1") -> OutgoingMessage:
    return OutgoingMessage(message_id, channel, "+84901234567", "Mã kích hoạt HoSo", "Mã: ABCDE-FGHJK", "vi")


def test_repr_leaves_out_body_and_recipient():
    text = repr(message())
    assert "ABCDE-FGHJK" not in text and "+8490" not in text and "m-1" in text


@pytest.mark.parametrize("message_id", ["", "has space", "line\nbreak", "mã", "x" * 201])
def test_message_id_must_be_header_safe(message_id):
    with pytest.raises(ValueError):
        message(message_id=message_id)


def test_channel_must_be_known():
    with pytest.raises(ValueError):
        message(channel="fax")


def test_failures_are_delivery_errors():
    assert issubclass(PermanentFailure, DeliveryError) and issubclass(TemporaryFailure, DeliveryError)
    assert not issubclass(PermanentFailure, TemporaryFailure)
    assert TemporaryFailure("x").retry_after is None


def test_in_memory_channel_records_messages():
    fake = InMemoryChannel("sms")
    fake.send(message())
    assert fake.sent == [message()]


def test_in_memory_channel_raises_scripted_failures_in_order():
    fake = InMemoryChannel("sms")
    fake.fail_next(TemporaryFailure("busy", retry_after=5), PermanentFailure("no"))
    with pytest.raises(TemporaryFailure):
        fake.send(message())
    with pytest.raises(PermanentFailure):
        fake.send(message())
    fake.send(message())
    assert len(fake.sent) == 1


def test_in_memory_channel_refuses_other_channels():
    with pytest.raises(PermanentFailure):
        InMemoryChannel("push").send(message("sms"))


def test_every_channel_fits_the_protocol():
    channels: list[Channel] = [
        InMemoryChannel("push"),
        SmtpChannel("127.0.0.1", 25, "no-reply@hoso.example.vn"),
        HttpProviderChannel("sms", "https://provider.example/send", "token"),
    ]
    assert [channel.name for channel in channels] == ["push", "email", "sms"]
