"""Schemas of the EU DCC Gateway formats HoSo serves."""

import marshmallow as ma

MAX_RESUME_TOKEN = 2**63 - 1


class GatewayTrustListEntrySchema(ma.Schema):
    """One entry of the EU DCC Gateway's trust list (its field names)."""

    kid = ma.fields.String(required=True, metadata={"description": "base64 of the first 8 bytes of the SHA-256 "
                                                                   "of the DER"})
    timestamp = ma.fields.String(required=True, metadata={"description": "when the entry joined the list (ISO 8601)"})
    country = ma.fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2", "example": "VN"})
    certificateType = ma.fields.String(required=True, metadata={"description": "`DSC`", "example": "DSC"})  # noqa: N815
    thumbprint = ma.fields.String(required=True, metadata={"description": "SHA-256 of the DER, hex"})
    signature = ma.fields.String(required=True, metadata={
        "description": "base64 detached CMS SignedData over the DER, signed by the country's upload certificate "
                       "(empty when HoSo has no upload certificate configured)"})
    rawData = ma.fields.String(required=True, metadata={"description": "base64 DER of the certificate"})  # noqa: N815


class ResumeTokenHeadersSchema(ma.Schema):
    """The national-backend paging header."""

    class Meta:
        unknown = ma.EXCLUDE  # every other request header

    resume_token = ma.fields.Integer(
        data_key="X-RESUME-TOKEN", required=False, strict=False,
        validate=ma.validate.Range(min=0, max=MAX_RESUME_TOKEN),
        metadata={"description": "The `X-RESUME-TOKEN` of the last certificate received; absent on the first call"})
