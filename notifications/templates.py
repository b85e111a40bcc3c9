"""Message texts in Vietnamese and English.

Texts that leave the app (SMS, e-mail, push) carry no health data: no diagnosis, no drug, no code
except an activation code meant for that person, inserted at send time in place of
``SECRET_PLACEHOLDER`` and never stored in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

SECRET_PLACEHOLDER = "{secret}"

# Security messages cannot be turned off by preferences.
SECURITY_KINDS = frozenset(
    {
        "activation_code_issued",
        "activation_code_delivery",
        "account_activated",
        "new_device_login",
        "refresh_reuse_detected",
        "access_reset",
        "account_locked",
        "account_unlocked",
        "contact_changed",
    }
)

_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    # Callers still pass ``facility``; it is accepted and left out, because a facility's name can
    # reveal a condition (a mental-health or HIV clinic) to whoever reads the SMS or e-mail.
    "activation_code_issued": {
        "vi": ("Mã bảo mật HoSo",
               "Một cơ sở y tế vừa cấp mã bảo mật để kích hoạt tài khoản HoSo của bạn. "
               "Nếu bạn không yêu cầu, hãy liên hệ bộ phận hỗ trợ."),
        "en": ("HoSo security code",
               "A health facility issued a security code to activate your HoSo account. "
               "If you did not ask for it, contact support."),
    },
    "activation_code_delivery": {
        "vi": ("Mã kích hoạt HoSo",
               "Mã kích hoạt HoSo của bạn: " + SECRET_PLACEHOLDER + ". Mã dùng một lần, hết hạn "
               "sau {hours} giờ. Không chia sẻ mã này với bất kỳ ai."),
        "en": ("Your HoSo activation code",
               "Your HoSo activation code: " + SECRET_PLACEHOLDER + ". It works once and expires "
               "in {hours} hours. Never share it with anyone."),
    },
    "account_activated": {
        "vi": ("Tài khoản HoSo đã kích hoạt", "Tài khoản HoSo của bạn đã được kích hoạt."),
        "en": ("HoSo account activated", "Your HoSo account is now active."),
    },
    "new_device_login": {
        "vi": ("Đăng nhập từ thiết bị mới",
               "Tài khoản HoSo của bạn vừa đăng nhập trên một thiết bị mới. Nếu không phải bạn, "
               "hãy mở ứng dụng để kết thúc phiên đó và liên hệ hỗ trợ."),
        "en": ("New sign-in",
               "Your HoSo account was just used on a new device. If this was not you, open the "
               "app to end that session and contact support."),
    },
    "refresh_reuse_detected": {
        "vi": ("Cảnh báo bảo mật",
               "Một phiên đăng nhập HoSo của bạn có dấu hiệu bị sao chép và đã bị kết thúc. "
               "Hãy đăng nhập lại trong ứng dụng."),
        "en": ("Security alert",
               "One of your HoSo sessions looked copied and has been ended. Sign in again in "
               "the app."),
    },
    "access_reset": {
        "vi": ("Đặt lại quyền truy cập",
               "Quyền truy cập tài khoản HoSo của bạn đã được đặt lại theo yêu cầu hỗ trợ. "
               "Bạn sẽ nhận mã kích hoạt mới trong một tin nhắn riêng."),
        "en": ("Access reset",
               "Access to your HoSo account was reset by support. A new activation code follows "
               "in a separate message."),
    },
    "account_locked": {
        "vi": ("Tài khoản bị khóa",
               "Tài khoản HoSo của bạn đã bị khóa. Hãy liên hệ bộ phận hỗ trợ."),
        "en": ("Account locked", "Your HoSo account has been locked. Contact support."),
    },
    "record_added": {
        "vi": ("Hồ sơ sức khỏe mới",
               "Một cơ sở y tế vừa thêm thông tin vào hồ sơ sức khỏe của bạn. Mở ứng dụng HoSo để xem."),
        "en": ("New health record",
               "A health facility added information to your health record. Open the HoSo app to see it."),
    },
    "contact_changed": {
        "vi": ("Thông tin liên hệ đã thay đổi",
               "Thông tin liên hệ của tài khoản HoSo vừa được thay đổi. Nếu không phải bạn, "
               "hãy liên hệ bộ phận hỗ trợ."),
        "en": ("Contact details changed",
               "The contact details of your HoSo account were changed. If this was not you, "
               "contact support."),
    },
    "share_opened": {
        "vi": ("Hồ sơ được chia sẻ đã được mở",
               "Một phần hồ sơ bạn chia sẻ vừa được mở. Mở ứng dụng HoSo để xem ai đã xem."),
        "en": ("Shared record opened",
               "A part of your record that you shared was just opened. Open the HoSo app to see who."),
    },
    "reaction_recorded": {
        "vi": ("Đã lưu báo cáo", "Cảm ơn bạn. Báo cáo của bạn đã được lưu trong ứng dụng HoSo."),
        "en": ("Report saved", "Thank you. Your report was saved in the HoSo app."),
    },
    "passport_issued": {
        "vi": ("Hộ chiếu vắc xin mới", "Hộ chiếu vắc xin mới của bạn đã sẵn sàng trong ứng dụng HoSo."),
        "en": ("New vaccine passport", "Your new vaccine passport is ready in the HoSo app."),
    },
    "passport_revoked": {
        "vi": ("Hộ chiếu vắc xin bị thu hồi",
               "Một hộ chiếu vắc xin của bạn đã bị thu hồi. Mở ứng dụng HoSo để xem chi tiết."),
        "en": ("Vaccine passport revoked",
               "One of your vaccine passports was revoked. Open the HoSo app for details."),
    },
    "passport_expiring": {
        "vi": ("Hộ chiếu vắc xin sắp hết hạn",
               "Hộ chiếu vắc xin của bạn sẽ hết hạn trong vòng 30 ngày. Mở ứng dụng HoSo để xem."),
        "en": ("Vaccine passport expiring",
               "Your vaccine passport expires within 30 days. Open the HoSo app to see it."),
    },
    "account_unlocked": {
        "vi": ("Tài khoản đã mở khóa", "Tài khoản HoSo của bạn đã được mở khóa."),
        "en": ("Account unlocked", "Your HoSo account has been unlocked."),
    },
    # Reminders say only "open the app": naming the vaccine, the disease or the facility would tell
    # anyone who sees the phone's lock screen about the person's health.
    "next_dose_reminder": {
        "vi": ("Lời nhắc từ HoSo",
               "Bạn có một lời nhắc mới trong ứng dụng HoSo. Mở ứng dụng để xem chi tiết."),
        "en": ("A reminder from HoSo",
               "You have a new reminder in the HoSo app. Open the app to see the details."),
    },
    "follow_up_reminder": {
        "vi": ("Nhắc lịch hẹn HoSo",
               "Bạn có một lịch hẹn sắp tới. Mở ứng dụng HoSo để xem chi tiết."),
        "en": ("HoSo appointment reminder",
               "You have an upcoming appointment. Open the HoSo app to see the details."),
    },
}


class UnknownTemplate(KeyError):
    """No template for this kind of message."""


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to store: subject and body in one language."""

    subject: str
    body: str
    language: str


def render(kind: str, language: str, **params: str) -> RenderedMessage:
    """Render ``kind`` in ``language`` (``vi`` by default when unknown).

    Raises:
        UnknownTemplate: when ``kind`` has no template.
    """
    try:
        by_language = _TEMPLATES[kind]
    except KeyError:
        raise UnknownTemplate(kind) from None
    language = language if language in by_language else "vi"
    subject, body = by_language[language]
    safe = {key: str(value) for key, value in params.items()}
    safe["secret"] = SECRET_PLACEHOLDER  # keeps the placeholder for the worker to fill
    return RenderedMessage(subject.format(**safe), body.format(**safe), language)
