// The page's words in Vietnamese and English.

export const LANGUAGES = ['vi', 'en']

export const TEXT = {
  vi: {
    title: 'Kiểm tra hộ chiếu vắc xin',
    subtitle: 'Dành cho nhân viên kiểm soát: quét mã QR hoặc dán nội dung HC1:',
    scan: 'Quét bằng camera',
    photo: 'Chọn ảnh mã QR',
    pasteLabel: 'Hoặc dán nội dung HC1:',
    pastePlaceholder: 'HC1:...',
    verify: 'Kiểm tra',
    clear: 'Kiểm tra mã khác',
    stopCamera: 'Dừng camera',
    cameraHint: 'Đưa mã QR vào khung hình',
    cameraError: 'Không mở được camera: {error}. Hãy chọn ảnh hoặc dán nội dung.',
    noQrInPhoto: 'Không tìm thấy mã QR trong ảnh. Hãy chụp lại gần hơn, đủ sáng.',
    checking: 'Đang kiểm tra…',
    valid: 'HỢP LỆ',
    invalid: 'KHÔNG HỢP LỆ',
    validNote: 'Chữ ký, thời hạn và danh sách thu hồi đều đạt.',
    invalidNote: 'Không chấp nhận giấy chứng nhận này:',
    compareId: 'Đối chiếu họ tên và ngày sinh với giấy tờ tùy thân (CCCD, hộ chiếu).',
    name: 'Họ và tên',
    nameLatin: 'Tên không dấu (như trên hộ chiếu)',
    dob: 'Ngày sinh',
    vaccine: 'Vắc xin',
    dose: 'Mũi',
    date: 'Ngày tiêm',
    country: 'Nước cấp',
    testResult: 'Kết quả xét nghiệm',
    testDate: 'Ngày lấy mẫu',
    recoveryDate: 'Ngày dương tính lần đầu',
    validUntil: 'Hiệu lực đến',
    type: { vaccination: 'Chứng nhận tiêm chủng', test: 'Chứng nhận xét nghiệm', recovery: 'Chứng nhận khỏi bệnh' },
    details: 'Chi tiết kỹ thuật',
    trustUpdated: 'Danh sách khóa tin cậy cập nhật lúc {time}',
    trustKeys: 'khóa ký: {n}',
    revoked: 'đã thu hồi: {n}',
    trustNone: 'Chưa có danh sách khóa tin cậy: cần kết nối mạng một lần để tải về.',
    trustStale: 'Danh sách đã cũ hơn 24 giờ: hãy kết nối mạng để cập nhật.',
    trustError: 'Không đọc được danh sách khóa tin cậy: {error}',
    offline: 'Ngoại tuyến: dùng bản đã lưu',
    online: 'Trực tuyến',
    refresh: 'Cập nhật danh sách',
    refreshing: 'Đang cập nhật…',
    clockOverride: 'Chế độ thử: kiểm tra theo thời điểm {time}',
    privacy: 'Việc kiểm tra diễn ra ngay trên máy này; nội dung giấy chứng nhận không được gửi đi đâu.',
    status: { ok: 'đạt', failed: 'không đạt', skipped: 'bỏ qua' },
    checks: {
      qr: 'Không đọc được mã QR',
      prefix: 'Không phải mã HC1',
      base45: 'Mã bị hỏng (Base45)',
      zlib: 'Mã bị hỏng (nén)',
      cose: 'Cấu trúc chữ ký hỏng',
      algorithm: 'Thuật toán ký không được chấp nhận',
      kid: 'Khóa ký không có trong danh sách tin cậy',
      signature: 'Chữ ký không hợp lệ (có thể đã bị sửa)',
      claims: 'Không đọc được nội dung',
      issued_at: 'Ngày cấp ở tương lai',
      expiry: 'Đã hết hạn',
      dsc_validity: 'Khóa ký hết hiệu lực',
      key_usage: 'Khóa ký không được phép ký loại chứng nhận này',
      schema: 'Nội dung không đúng định dạng DCC',
      revocation: 'Đã bị thu hồi',
      internal: 'Lỗi khi kiểm tra'
    }
  },
  en: {
    title: 'Vaccine passport check',
    subtitle: 'For border and venue staff: scan the QR code or paste the HC1: text',
    scan: 'Scan with camera',
    photo: 'Pick a photo of the QR',
    pasteLabel: 'Or paste the HC1: text',
    pastePlaceholder: 'HC1:...',
    verify: 'Verify',
    clear: 'Check another',
    stopCamera: 'Stop camera',
    cameraHint: 'Hold the QR code inside the frame',
    cameraError: 'Cannot open the camera: {error}. Pick a photo or paste the text instead.',
    noQrInPhoto: 'No QR code found in the photo. Take it closer, with more light.',
    checking: 'Checking…',
    valid: 'VALID',
    invalid: 'NOT VALID',
    validNote: 'Signature, validity period and revocation list all pass.',
    invalidNote: 'Do not accept this certificate:',
    compareId: 'Compare the name and date of birth with an ID document (ID card, passport).',
    name: 'Name',
    nameLatin: 'Name as in the passport (transliterated)',
    dob: 'Date of birth',
    vaccine: 'Vaccine',
    dose: 'Dose',
    date: 'Date of vaccination',
    country: 'Issuing country',
    testResult: 'Test result',
    testDate: 'Sample taken',
    recoveryDate: 'First positive test',
    validUntil: 'Valid until',
    type: { vaccination: 'Vaccination certificate', test: 'Test certificate', recovery: 'Recovery certificate' },
    details: 'Technical details',
    trustUpdated: 'Trust list updated {time}',
    trustKeys: 'signing keys: {n}',
    revoked: 'revoked: {n}',
    trustNone: 'No trust list yet: connect to the network once to download it.',
    trustStale: 'The lists are more than 24 hours old: connect to update them.',
    trustError: 'Cannot read the trust list: {error}',
    offline: 'Offline: using the saved copy',
    online: 'Online',
    refresh: 'Update lists',
    refreshing: 'Updating…',
    clockOverride: 'Test mode: verifying as of {time}',
    privacy: 'Verification happens on this device; the certificate is not sent anywhere.',
    status: { ok: 'pass', failed: 'fail', skipped: 'not run' },
    checks: {
      qr: 'The QR code cannot be read',
      prefix: 'Not an HC1 code',
      base45: 'Damaged code (Base45)',
      zlib: 'Damaged code (compression)',
      cose: 'Damaged signature structure',
      algorithm: 'Signature algorithm not accepted',
      kid: 'Signing key not in the trust list',
      signature: 'Invalid signature (the certificate may have been altered)',
      claims: 'The content cannot be read',
      issued_at: 'Issued in the future',
      expiry: 'Expired',
      dsc_validity: 'The signing key is outside its validity',
      key_usage: 'The signing key may not sign this kind of certificate',
      schema: 'The content is not a valid DCC',
      revocation: 'Revoked',
      internal: 'Error while verifying'
    }
  }
}

/** Fill {name} placeholders. */
export function format (template, values = {}) {
  return template.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match))
}

export function chooseLanguage (requested, stored, preferred) {
  if (LANGUAGES.includes(requested)) return requested
  if (LANGUAGES.includes(stored)) return stored
  for (const language of preferred || []) {
    const short = String(language).slice(0, 2).toLowerCase()
    if (LANGUAGES.includes(short)) return short
  }
  return 'vi'
}
